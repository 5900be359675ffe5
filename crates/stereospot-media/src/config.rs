//! Configuration of the media layer and the [`Media`] handle everything hangs off.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::error::{Result, Tool};
use crate::process::{FFMPEG_COMMON, Invocation, StdoutMode, run};

/// Demuxers accepted for untrusted input (ffmpeg's `-format_whitelist`). Playlist and scripting
/// demuxers (hls, dash, concat, image2 patterns, tee, ...) are deliberately absent: they open other
/// files or URLs named inside the file. Audio-only demuxers are present so that an audio upload
/// gets the precise `no_video_stream` error rather than `unsupported_container`.
pub const DEFAULT_DEMUXERS: &[&str] = &[
    // mov/mp4 family (one demuxer; its name lists the aliases)
    "mov",
    "mp4",
    "m4a",
    "3gp",
    "3g2",
    "mj2", // Matroska / WebM
    "matroska",
    "webm", // others a phone, camera or screen recorder produces
    "avi",
    "flv",
    "mpegts",
    "mpeg",
    "asf",
    "ogg",
    "mxf",
    "nut",
    "ivf",
    "yuv4mpegpipe",
    "h264",
    "hevc",
    "m4v",
    "dv",
    "gif", // audio-only containers (rejected later, with a precise error)
    "mp3",
    "wav",
    "flac",
    "aac",
    "w64",
];

/// Limits that protect a small server from uploads it cannot finish.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Longest side in pixels after rotation (default 3840: 4K UHD).
    pub max_long_side: u32,
    /// Shortest side in pixels after rotation (default 2160).
    pub max_short_side: u32,
    /// Longest accepted duration (default 3 hours).
    pub max_duration: Duration,
    /// Highest accepted frame rate (default 240 fps).
    pub max_frame_rate: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_long_side: 3840,
            max_short_side: 2160,
            max_duration: Duration::from_secs(3 * 3600),
            max_frame_rate: 240.0,
        }
    }
}

/// Time limits for child processes. Work on a whole file gets `work_base` plus a budget per second
/// of media, so a 3-hour film is not killed by a limit sized for a 10-second clip.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeouts {
    /// ffprobe on a file's headers.
    pub probe: Duration,
    /// Fixed part of every whole-file operation.
    pub work_base: Duration,
    /// Budget per second of media for stream copies and packet scans.
    pub copy_per_media_second: Duration,
    /// Budget per second of media for decoding and re-encoding.
    pub encode_per_media_second: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            probe: Duration::from_secs(60),
            work_base: Duration::from_secs(120),
            copy_per_media_second: Duration::from_millis(500),
            encode_per_media_second: Duration::from_secs(6),
        }
    }
}

impl Timeouts {
    /// Limit for a stream copy or a packet scan of `media` seconds.
    pub fn for_copy(&self, media: Duration) -> Duration {
        self.work_base + self.copy_per_media_second.mul_f64(media.as_secs_f64())
    }

    /// Limit for a decode or re-encode of `media` seconds.
    pub fn for_encode(&self, media: Duration) -> Duration {
        self.work_base + self.encode_per_media_second.mul_f64(media.as_secs_f64())
    }
}

/// Everything the media layer needs to know about its environment.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The ffmpeg program (default `ffmpeg`, looked up on PATH).
    pub ffmpeg: PathBuf,
    /// The ffprobe program (default `ffprobe`).
    pub ffprobe: PathBuf,
    /// Where temporary directories are created (default: the system temp dir). Every operation
    /// removes what it created here, on success and on failure.
    pub temp_root: PathBuf,
    /// Size and duration limits applied by validation.
    pub limits: Limits,
    /// Process time limits.
    pub timeouts: Timeouts,
    /// Demuxers accepted for untrusted input (see [`DEFAULT_DEMUXERS`]).
    pub allowed_demuxers: Vec<String>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            ffmpeg: PathBuf::from("ffmpeg"),
            ffprobe: PathBuf::from("ffprobe"),
            temp_root: std::env::temp_dir(),
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            allowed_demuxers: DEFAULT_DEMUXERS.iter().map(|s| (*s).to_string()).collect(),
        }
    }
}

/// A handle on the media layer: cheap to clone, share it between tasks and threads.
#[derive(Debug, Clone)]
pub struct Media {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: MediaConfig,
    has_zscale: OnceCell<bool>,
    decoders: OnceCell<std::collections::HashSet<String>>,
}

impl Default for Media {
    fn default() -> Self {
        Media::new(MediaConfig::default())
    }
}

impl Media {
    /// Creates the handle. Nothing is checked until first use (a missing ffmpeg shows up as
    /// [`crate::MediaError::ToolMissing`] on the first call).
    pub fn new(config: MediaConfig) -> Self {
        Media {
            inner: Arc::new(Inner {
                config,
                has_zscale: OnceCell::new(),
                decoders: OnceCell::new(),
            }),
        }
    }

    /// The configuration this handle was built with.
    pub fn config(&self) -> &MediaConfig {
        &self.inner.config
    }

    pub(crate) fn ffmpeg(&self, timeout: Duration) -> Invocation {
        let mut inv = Invocation::new(Tool::Ffmpeg, &self.inner.config.ffmpeg, timeout);
        inv.args(FFMPEG_COMMON);
        inv
    }

    pub(crate) fn ffprobe(&self, timeout: Duration) -> Invocation {
        let mut inv = Invocation::new(Tool::Ffprobe, &self.inner.config.ffprobe, timeout);
        inv.args(["-hide_banner", "-loglevel", "error"]);
        inv
    }

    /// Input options for a file we did not write ourselves, followed by `-i file:<path>`:
    /// only the `file` and `pipe` protocols, only the accepted demuxers, and a `file:` URL so a
    /// name such as `http:x.mp4` can never be read as a URL.
    pub(crate) fn untrusted_input(&self, inv: &mut Invocation, path: &Path) -> Result<()> {
        inv.args(["-protocol_whitelist", "file,pipe"]);
        inv.arg("-format_whitelist")
            .arg(self.inner.config.allowed_demuxers.join(","));
        inv.arg("-i").arg(file_url(path)?);
        Ok(())
    }

    /// Whether this ffmpeg has the zscale filter (needed to tone-map HDR).
    pub async fn has_zscale(&self) -> Result<bool> {
        self.inner
            .has_zscale
            .get_or_try_init(|| async {
                let mut inv = self.ffmpeg(self.inner.config.timeouts.probe);
                inv.args(["-h", "filter=zscale"]);
                let fin = run(&inv, StdoutMode::Collect { limit: 1 << 20 }).await?;
                let text = String::from_utf8_lossy(&fin.stdout);
                Ok(fin.status.success() && text.contains("Filter zscale"))
            })
            .await
            .copied()
    }
}

impl Media {
    /// Whether this ffmpeg can decode `codec` (an ffprobe `codec_name`).
    pub async fn can_decode(&self, codec: &str) -> Result<bool> {
        let set = self
            .inner
            .decoders
            .get_or_try_init(|| async {
                let mut inv = self.ffmpeg(self.inner.config.timeouts.probe);
                inv.arg("-codecs");
                let fin = run(&inv, StdoutMode::Collect { limit: 4 << 20 })
                    .await?
                    .check(Tool::Ffmpeg)?;
                Ok::<_, crate::MediaError>(parse_decodable_codecs(&String::from_utf8_lossy(
                    &fin.stdout,
                )))
            })
            .await?;
        Ok(set.contains(codec))
    }
}

/// Codec names with decoding support from `ffmpeg -codecs` (" DEV.LS h264  H.264 ...").
pub(crate) fn parse_decodable_codecs(text: &str) -> std::collections::HashSet<String> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let flags = parts.next()?;
            let name = parts.next()?;
            (flags.len() == 6 && flags.starts_with('D') && !name.contains('='))
                .then(|| name.to_string())
        })
        .collect()
}

/// `file:` + absolute path, as an ffmpeg URL.
pub(crate) fn file_url(path: &Path) -> Result<OsString> {
    let abs = std::path::absolute(path)
        .map_err(|e| crate::MediaError::io(format!("resolving {}", path.display()), e))?;
    let mut url = OsString::from("file:");
    url.push(abs.as_os_str());
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_are_absolute_and_prefixed() {
        let url = file_url(Path::new("http:evil.mp4")).expect("absolute");
        let s = url.to_string_lossy();
        assert!(s.starts_with("file:/"), "{s}");
        assert!(s.ends_with("/http:evil.mp4"), "{s}");
    }

    #[test]
    fn decodable_codecs_are_parsed_from_the_codec_list() {
        let text = " D..... = Decoding supported\n -------\n DEV.LS h264   H.264\n .EV.L. foo   encode only\n D.VI.S 012v  Uncompressed\n";
        let set = parse_decodable_codecs(text);
        assert!(set.contains("h264") && set.contains("012v"));
        assert!(!set.contains("foo"));
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn default_demuxers_exclude_playlists_and_scripts() {
        for bad in [
            "hls", "concat", "dash", "image2", "tee", "lavfi", "sdp", "rtsp",
        ] {
            assert!(!DEFAULT_DEMUXERS.contains(&bad), "{bad}");
        }
    }

    #[test]
    fn timeouts_scale_with_media_duration() {
        let t = Timeouts::default();
        assert!(t.for_copy(Duration::from_secs(3600)) > t.for_copy(Duration::from_secs(10)));
        assert!(t.for_encode(Duration::from_secs(10)) > t.for_copy(Duration::from_secs(10)));
    }
}
