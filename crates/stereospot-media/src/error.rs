//! The crate's error type. Every variant has a stable machine code ([`MediaError::code`]) that
//! workers store on a failed job and the web UI maps to help text, plus a message a user can read
//! (the `Display` impl, lower case, no trailing period).

use std::path::PathBuf;
use std::time::Duration;

/// Which external program a process error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    /// `ffmpeg`
    Ffmpeg,
    /// `ffprobe`
    Ffprobe,
    /// `yt-dlp` (URL ingest)
    YtDlp,
}

impl Tool {
    /// The program's conventional name.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Ffmpeg => "ffmpeg",
            Tool::Ffprobe => "ffprobe",
            Tool::YtDlp => "yt-dlp",
        }
    }

    /// How to install the program, for error messages.
    pub fn install_hint(self) -> &'static str {
        match self {
            Tool::Ffmpeg | Tool::Ffprobe => "install it with apt-get install ffmpeg",
            Tool::YtDlp => {
                "install it with scripts/deps.sh runtime (pinned, into .tools/yt-dlp/), or set \
                 YT_DLP_PATH to a yt-dlp program"
            }
        }
    }
}

impl std::fmt::Display for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong in the media layer.
///
/// Variants for which [`MediaError::is_input_error`] is true describe the user's file (fail the job
/// with the message); the others describe the machine (retry, alert an operator).
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The file has zero bytes.
    #[error("the file is empty")]
    EmptyFile,

    /// ffprobe could not recognise the file as audio or video at all.
    #[error("the file is not a video file: {detail}")]
    NotMedia {
        /// What was recognised instead, or ffprobe's complaint.
        detail: String,
    },

    /// The container was recognised but is not on the list of accepted demuxers.
    #[error("the file's container format is not accepted (accepted: {accepted})")]
    UnsupportedContainer {
        /// A short list of what is accepted, for the message.
        accepted: String,
    },

    /// A playlist or script (HLS `.m3u8`, ffconcat) that would make ffmpeg open other files or URLs.
    #[error("the file is a {kind} that refers to other files or URLs, which is not accepted")]
    ForbiddenReference {
        /// "HLS playlist", "ffconcat script", ...
        kind: String,
    },

    /// The file has no video stream (an audio file, or subtitles only).
    #[error("the file has no video stream{}", if *.has_audio { " (it is an audio-only file)" } else { "" })]
    NoVideoStream {
        /// Whether an audio stream was found.
        has_audio: bool,
    },

    /// The file is truncated or damaged: it cannot be read to the end.
    #[error("the file is truncated or corrupt: {detail}")]
    Corrupt {
        /// What was found wrong.
        detail: String,
    },

    /// Width or height above the configured limit.
    #[error(
        "the video is {width}x{height}, above the limit of {max_long}x{max_short} (either orientation)"
    )]
    TooLargeResolution {
        /// Displayed width.
        width: u32,
        /// Displayed height.
        height: u32,
        /// Limit on the longer side.
        max_long: u32,
        /// Limit on the shorter side.
        max_short: u32,
    },

    /// Duration above the configured limit.
    #[error("the video lasts {}, above the limit of {}", fmt_hms(*.duration), fmt_hms(*.max))]
    TooLong {
        /// The file's duration.
        duration: Duration,
        /// The limit.
        max: Duration,
    },

    /// Frame rate above the configured limit (or none that can be determined).
    #[error("the video's frame rate ({fps:.2} fps) is not supported (maximum {max:.0} fps)")]
    UnsupportedFrameRate {
        /// Frames per second found (0 when unknown).
        fps: f64,
        /// The limit.
        max: f64,
    },

    /// The decoder's pixel format is unknown or cannot be converted (e.g. HDR without the zscale
    /// filter in this ffmpeg build).
    #[error("the video's pixel format {pix_fmt} is not supported{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    UnsupportedPixelFormat {
        /// The pixel format ffprobe reported ("unknown" when none).
        pix_fmt: String,
        /// Why, when there is more to say.
        reason: Option<String>,
    },

    /// ffmpeg has no decoder for the video codec.
    #[error("the video codec {codec} is not supported")]
    UnsupportedCodec {
        /// Codec name ("unknown" when ffprobe gave none).
        codec: String,
    },

    /// An external program ran past its time limit and was killed.
    #[error("{tool} took longer than {}s and was stopped", .after.as_secs_f64())]
    Timeout {
        /// The program.
        tool: Tool,
        /// The limit it ran into.
        after: Duration,
    },

    /// The program could not be started because it is not installed.
    #[error("{tool} not found: {} (looked for {})", .tool.install_hint(), .program.display())]
    ToolMissing {
        /// The program.
        tool: Tool,
        /// What we tried to run.
        program: PathBuf,
    },

    /// The program ran and failed on a file this crate produced or on arguments it built: an
    /// internal problem rather than the user's file.
    #[error("{tool} failed ({status}): {stderr_tail}")]
    ProcessFailed {
        /// The program.
        tool: Tool,
        /// Exit status as text ("exit status: 1", "signal: 9").
        status: String,
        /// The last lines ffmpeg wrote to stderr.
        stderr_tail: String,
    },

    /// A consistency check on our own outputs failed (e.g. segment frame counts do not add up).
    #[error("internal media check failed: {0}")]
    Internal(String),

    /// The caller passed something unusable (frame of the wrong size, no segments to join, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl MediaError {
    /// Stable machine code: never change one once shipped, clients match on them.
    pub fn code(&self) -> &'static str {
        match self {
            MediaError::EmptyFile => "empty_file",
            MediaError::NotMedia { .. } => "not_media",
            MediaError::UnsupportedContainer { .. } => "unsupported_container",
            MediaError::ForbiddenReference { .. } => "forbidden_reference",
            MediaError::NoVideoStream { .. } => "no_video_stream",
            MediaError::Corrupt { .. } => "corrupt",
            MediaError::TooLargeResolution { .. } => "too_large_resolution",
            MediaError::TooLong { .. } => "too_long",
            MediaError::UnsupportedFrameRate { .. } => "unsupported_frame_rate",
            MediaError::UnsupportedPixelFormat { .. } => "unsupported_pixel_format",
            MediaError::UnsupportedCodec { .. } => "unsupported_codec",
            MediaError::Timeout { .. } => "timeout",
            MediaError::ToolMissing {
                tool: Tool::Ffmpeg, ..
            } => "ffmpeg_missing",
            MediaError::ToolMissing {
                tool: Tool::Ffprobe,
                ..
            } => "ffprobe_missing",
            MediaError::ToolMissing {
                tool: Tool::YtDlp, ..
            } => "yt_dlp_missing",
            MediaError::ProcessFailed {
                tool: Tool::Ffmpeg, ..
            } => "ffmpeg_failed",
            MediaError::ProcessFailed {
                tool: Tool::Ffprobe,
                ..
            } => "ffprobe_failed",
            MediaError::ProcessFailed {
                tool: Tool::YtDlp, ..
            } => "yt_dlp_failed",
            MediaError::Internal(_) => "internal",
            MediaError::InvalidArgument(_) => "invalid_argument",
            MediaError::Io { .. } => "io",
        }
    }

    /// True when the error is about the user's file (fail the job, show the message); false when
    /// it is about this machine or this code (retry, or alert an operator).
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            MediaError::EmptyFile
                | MediaError::NotMedia { .. }
                | MediaError::UnsupportedContainer { .. }
                | MediaError::ForbiddenReference { .. }
                | MediaError::NoVideoStream { .. }
                | MediaError::Corrupt { .. }
                | MediaError::TooLargeResolution { .. }
                | MediaError::TooLong { .. }
                | MediaError::UnsupportedFrameRate { .. }
                | MediaError::UnsupportedPixelFormat { .. }
                | MediaError::UnsupportedCodec { .. }
        )
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        MediaError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = MediaError> = std::result::Result<T, E>;

fn fmt_hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<MediaError> {
        vec![
            MediaError::EmptyFile,
            MediaError::NotMedia { detail: "x".into() },
            MediaError::UnsupportedContainer {
                accepted: "mp4".into(),
            },
            MediaError::ForbiddenReference {
                kind: "HLS playlist".into(),
            },
            MediaError::NoVideoStream { has_audio: true },
            MediaError::Corrupt { detail: "x".into() },
            MediaError::TooLargeResolution {
                width: 1,
                height: 1,
                max_long: 1,
                max_short: 1,
            },
            MediaError::TooLong {
                duration: Duration::from_secs(3 * 3600 + 61),
                max: Duration::from_secs(3 * 3600),
            },
            MediaError::UnsupportedFrameRate { fps: 1.0, max: 1.0 },
            MediaError::UnsupportedPixelFormat {
                pix_fmt: "x".into(),
                reason: None,
            },
            MediaError::UnsupportedCodec { codec: "x".into() },
            MediaError::Timeout {
                tool: Tool::Ffmpeg,
                after: Duration::from_secs(1),
            },
            MediaError::ToolMissing {
                tool: Tool::Ffmpeg,
                program: "ffmpeg".into(),
            },
            MediaError::ToolMissing {
                tool: Tool::Ffprobe,
                program: "ffprobe".into(),
            },
            MediaError::ToolMissing {
                tool: Tool::YtDlp,
                program: "yt-dlp".into(),
            },
            MediaError::ProcessFailed {
                tool: Tool::Ffmpeg,
                status: "exit status: 1".into(),
                stderr_tail: "x".into(),
            },
            MediaError::ProcessFailed {
                tool: Tool::Ffprobe,
                status: "exit status: 1".into(),
                stderr_tail: "x".into(),
            },
            MediaError::ProcessFailed {
                tool: Tool::YtDlp,
                status: "exit status: 1".into(),
                stderr_tail: "x".into(),
            },
            MediaError::Internal("x".into()),
            MediaError::InvalidArgument("x".into()),
            MediaError::io("reading x", std::io::Error::other("boom")),
        ]
    }

    #[test]
    fn codes_are_unique_snake_case_and_messages_have_no_trailing_period() {
        let errors = all();
        let mut codes: Vec<&str> = errors.iter().map(MediaError::code).collect();
        for code in &codes {
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
        }
        codes.sort_unstable();
        let before = codes.len();
        codes.dedup();
        assert_eq!(before, codes.len(), "duplicate error codes");
        for e in &errors {
            let msg = e.to_string();
            assert!(!msg.ends_with('.'), "{msg}");
            assert!(!msg.is_empty());
        }
    }

    #[test]
    fn messages_read_well() {
        assert_eq!(
            MediaError::NoVideoStream { has_audio: true }.to_string(),
            "the file has no video stream (it is an audio-only file)"
        );
        assert_eq!(
            MediaError::TooLong {
                duration: Duration::from_secs(3 * 3600 + 61),
                max: Duration::from_secs(3 * 3600)
            }
            .to_string(),
            "the video lasts 3:01:01, above the limit of 3:00:00"
        );
        assert_eq!(
            MediaError::ToolMissing {
                tool: Tool::Ffmpeg,
                program: "ffmpeg".into()
            }
            .to_string(),
            "ffmpeg not found: install it with apt-get install ffmpeg (looked for ffmpeg)"
        );
    }

    #[test]
    fn input_errors_are_the_users_and_the_rest_are_ours() {
        assert!(MediaError::EmptyFile.is_input_error());
        assert!(MediaError::Corrupt { detail: "x".into() }.is_input_error());
        assert!(
            !MediaError::Timeout {
                tool: Tool::Ffmpeg,
                after: Duration::from_secs(1)
            }
            .is_input_error()
        );
        assert!(!MediaError::Internal("x".into()).is_input_error());
    }
}
