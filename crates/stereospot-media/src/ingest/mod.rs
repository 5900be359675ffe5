//! URL ingest: a video page or file URL becomes a local file, downloaded by yt-dlp.
//!
//! ```no_run
//! # async fn demo() -> Result<(), stereospot_media::ingest::IngestError> {
//! use stereospot_media::ingest::{IngestOptions, download};
//! let got = download(&IngestOptions::default(), "https://example.com/v", "/tmp/work".as_ref()).await?;
//! println!("{:?} {} bytes at {}", got.title, got.size, got.path.display());
//! # Ok(()) }
//! ```
//!
//! # Safety
//!
//! A URL comes from a user, and yt-dlp follows whatever the pages it reads point to, so:
//!
//! 1. [`check_url`] refuses anything but `http:` and `https:` URLs with a host (no `file:`,
//!    `ftp:`, `data:`, credentials), before any process starts.
//! 2. The URL's host is resolved and checked against the [`AddressPolicy`] before yt-dlp starts
//!    (a clear error for the common case).
//! 3. yt-dlp runs through a [`FilterProxy`] of our own, started for this download on
//!    `127.0.0.1:0`, that resolves and checks every host yt-dlp connects to (redirects,
//!    manifests, fragments, CDNs) and connects only to addresses it checked. Loopback, private,
//!    link-local, metadata and other non-global addresses are refused (see [`address`]).
//! 4. yt-dlp cannot go around the proxy: `--proxy` and the proxy environment variables point at
//!    it, the environment is otherwise empty (no `NO_PROXY`, no user config, `HOME` is the work
//!    directory), `--downloader native` keeps ffmpeg and other external downloaders out of the
//!    network path, formats are restricted to http(s), HLS and DASH-over-http protocols, and
//!    `--ignore-config --no-config-locations --no-plugin-dirs --no-exec --no-remote-components`
//!    keep local configuration, plugins, commands and remote code out. yt-dlp refuses `file://`
//!    URLs itself unless told otherwise. One residual path: when its native HLS downloader meets
//!    a stream feature it cannot handle it hands the stream to ffmpeg, which reads the proxy
//!    environment variables and so still goes through the proxy.
//!
//! # Limits
//!
//! - Height: the best format at most [`IngestOptions::max_height`] pixels high
//!   (`MAX_VIDEO_HEIGHT`, default 1080) is chosen; formats of unknown height (a direct file
//!   link) are taken as they are and validated by chunking like an upload.
//! - Duration and size: checked on the metadata before the download
//!   ([`IngestError::TooLong`], [`IngestError::TooLarge`]) when the site reports them, by
//!   `--max-filesize`, by the proxy's byte budget (size limit plus a margin for pages and
//!   manifests: a download that hides its size is cut), and on the file afterwards.
//! - Time: [`IngestOptions::timeout`] for the whole download (the process is killed).
//!
//! # Errors
//!
//! [`IngestError::code`] is stable and stored on failed jobs; [`IngestError::is_input_error`]
//! separates the user's URL (`invalid_url`, `forbidden_address`, `host_not_found`,
//! `video_unavailable`, `unsupported_url`, `playlist_not_supported`, `live_not_supported`,
//! `no_suitable_format`, `too_large`, `too_long`: fail the job at once) from the machine's
//! trouble (`download_failed`, `timeout`, `yt_dlp_missing`, `io`: retry).

pub mod address;
pub mod proxy;
mod ytdlp;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use address::{AddressPolicy, Forbidden};
pub use proxy::{FilterProxy, ProxyOptions, ProxyStats, Refusal};
pub use ytdlp::{TOOLS_PROGRAM, download, find_yt_dlp};

use crate::MediaError;

/// Settings of URL ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOptions {
    /// The yt-dlp program (`YT_DLP_PATH`); `None`: [`find_yt_dlp`]'s search.
    pub yt_dlp: Option<PathBuf>,
    /// Highest video format chosen, in pixels (`MAX_VIDEO_HEIGHT`, default 1080).
    pub max_height: u32,
    /// Largest download in bytes (`INGEST_MAX_FILE_SIZE_MB`, default 4000 MB).
    pub max_file_size: u64,
    /// Longest video (`INGEST_MAX_DURATION_SECONDS`, default 3 hours, the media layer's limit).
    pub max_duration: Duration,
    /// Time limit of the whole download (`INGEST_TIMEOUT_SECONDS`, default 30 minutes).
    pub timeout: Duration,
    /// Addresses the download may reach (`INGEST_ALLOW_LOOPBACK` allows loopback, for tests).
    pub policy: AddressPolicy,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            yt_dlp: None,
            max_height: 1080,
            max_file_size: 4_000_000_000,
            max_duration: Duration::from_secs(3 * 3600),
            timeout: Duration::from_secs(30 * 60),
            policy: AddressPolicy::strict(),
        }
    }
}

/// A downloaded video.
#[derive(Debug, Clone, PartialEq)]
pub struct Downloaded {
    /// The file, inside the directory given to [`download`].
    pub path: PathBuf,
    /// The video's title as the site gives it (control characters removed, at most 200
    /// characters).
    pub title: Option<String>,
    /// File size in bytes.
    pub size: u64,
    /// Duration, when the site reports it.
    pub duration: Option<Duration>,
    /// Which yt-dlp extractor read the URL (`youtube`, `generic`, ...).
    pub extractor: Option<String>,
}

/// Why a URL could not be ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Not an http(s) URL with a host.
    #[error("the URL is not accepted: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The URL, or one it led to, points to an address that may not be reached.
    #[error(
        "the URL leads to {host}, a {reason} address ({address}), which downloads may not reach"
    )]
    ForbiddenAddress {
        /// The host as written in the URL that led there.
        host: String,
        /// The address it resolved to.
        address: std::net::IpAddr,
        /// Which kind of address.
        reason: Forbidden,
    },
    /// A host name that does not resolve.
    #[error("the host {host} was not found")]
    HostNotFound {
        /// The host.
        host: String,
    },
    /// The site says the video cannot be had (removed, private, 404, region-locked, ...).
    #[error("the video cannot be downloaded: {detail}")]
    Unavailable {
        /// yt-dlp's explanation.
        detail: String,
    },
    /// No video was found at the URL.
    #[error("no video was found at the URL: {detail}")]
    Unsupported {
        /// yt-dlp's explanation.
        detail: String,
    },
    /// The URL is a playlist or channel, not one video.
    #[error("the URL is a playlist; give the URL of one video")]
    Playlist,
    /// A live stream or an upcoming premiere.
    #[error("live streams and upcoming premieres cannot be converted")]
    Live,
    /// No format at or below the height limit (or only formats over protocols we do not use).
    #[error("the video has no downloadable format at or below {max_height} pixels high")]
    NoSuitableFormat {
        /// The height limit.
        max_height: u32,
    },
    /// The video is larger than the size limit.
    #[error("the video is larger than the limit of {}", fmt_size(*.max))]
    TooLarge {
        /// The size limit in bytes.
        max: u64,
    },
    /// The video is longer than the duration limit.
    #[error("the video lasts {}, above the limit of {}", fmt_hms(*.duration), fmt_hms(*.max))]
    TooLong {
        /// The video's duration.
        duration: Duration,
        /// The limit.
        max: Duration,
    },
    /// yt-dlp failed in a way that may pass on a retry (network trouble, a site's hiccup).
    #[error("the download failed: {detail}")]
    DownloadFailed {
        /// yt-dlp's last error line, or what else went wrong.
        detail: String,
    },
    /// Starting or running yt-dlp failed (missing program, timeout, I/O).
    #[error(transparent)]
    Media(#[from] MediaError),
}

impl IngestError {
    /// Stable machine code: never change one once shipped.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::InvalidUrl { .. } => "invalid_url",
            IngestError::ForbiddenAddress { .. } => "forbidden_address",
            IngestError::HostNotFound { .. } => "host_not_found",
            IngestError::Unavailable { .. } => "video_unavailable",
            IngestError::Unsupported { .. } => "unsupported_url",
            IngestError::Playlist => "playlist_not_supported",
            IngestError::Live => "live_not_supported",
            IngestError::NoSuitableFormat { .. } => "no_suitable_format",
            IngestError::TooLarge { .. } => "too_large",
            IngestError::TooLong { .. } => "too_long",
            IngestError::DownloadFailed { .. } => "download_failed",
            IngestError::Media(e) => e.code(),
        }
    }

    /// True when the URL is at fault (fail the job with the message); false when the machine or
    /// the network may be (retry).
    pub fn is_input_error(&self) -> bool {
        !matches!(
            self,
            IngestError::DownloadFailed { .. } | IngestError::Media(_)
        )
    }

    fn invalid(reason: impl Into<String>) -> Self {
        IngestError::InvalidUrl {
            reason: reason.into(),
        }
    }
}

fn fmt_hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

fn fmt_size(bytes: u64) -> String {
    if bytes >= 1_000_000 && bytes.is_multiple_of(100_000) {
        format!("{} MB", bytes as f64 / 1e6)
    } else if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{bytes} bytes")
    }
}

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 4096;

/// Checks a URL's syntax without touching the network: `http` or `https`, a host, no
/// credentials. Returns the normalised URL.
pub fn check_url(raw: &str) -> Result<url::Url, IngestError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(IngestError::invalid("it is empty"));
    }
    if raw.len() > MAX_URL_LEN {
        return Err(IngestError::invalid(format!(
            "it is longer than {MAX_URL_LEN} characters"
        )));
    }
    let url = url::Url::parse(raw).map_err(|e| IngestError::invalid(e.to_string()))?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(IngestError::invalid(format!(
                "only http and https URLs can be downloaded, not {other}:"
            )));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(IngestError::invalid("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(IngestError::invalid(
            "URLs with credentials are not accepted",
        ));
    }
    Ok(url)
}

/// A title fit to store and show: control characters removed, whitespace collapsed, at most
/// 200 characters.
pub(crate) fn clean_title(raw: &str) -> Option<String> {
    let words: Vec<&str> = raw
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    let joined = words.join(" ");
    let title: String = joined.chars().take(200).collect();
    (!title.is_empty()).then_some(title)
}

/// The directory a download writes into must exist.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), IngestError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| MediaError::io(format!("creating {}", dir.display()), e).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_with_a_host_pass() {
        assert_eq!(
            check_url(" https://Example.com/watch?v=1 ")
                .unwrap()
                .as_str(),
            "https://example.com/watch?v=1"
        );
        assert!(check_url("http://127.0.0.1:8080/v.mp4").is_ok());
        for bad in [
            "",
            "file:///etc/passwd",
            "FILE:///etc/passwd",
            "ftp://example.com/v.mp4",
            "data:video/mp4;base64,AAAA",
            "javascript:alert(1)",
            "gopher://example.com/",
            "rtmp://example.com/live",
            "ytsearch:cats",
            "example.com/v.mp4",
            "/etc/passwd",
            "https://user:pw@example.com/",
            "http://",
            "-o/etc/passwd",
        ] {
            let e = check_url(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_url", "{bad}");
            assert!(e.is_input_error());
        }
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(MAX_URL_LEN))).is_err());
        let msg = check_url("file:///etc/passwd").unwrap_err().to_string();
        assert_eq!(
            msg,
            "the URL is not accepted: only http and https URLs can be downloaded, not file:"
        );
    }

    #[test]
    fn titles_are_cleaned() {
        assert_eq!(
            clean_title("  A\u{7}  film\n\tabout\r\ncats  ").as_deref(),
            Some("A film about cats")
        );
        assert_eq!(clean_title(" \n "), None);
        assert_eq!(clean_title(&"é".repeat(500)).unwrap().chars().count(), 200);
    }

    #[test]
    fn codes_are_stable_and_messages_have_no_trailing_period() {
        let all = [
            IngestError::invalid("x"),
            IngestError::ForbiddenAddress {
                host: "h".into(),
                address: "127.0.0.1".parse().unwrap(),
                reason: Forbidden::Loopback,
            },
            IngestError::HostNotFound { host: "h".into() },
            IngestError::Unavailable { detail: "x".into() },
            IngestError::Unsupported { detail: "x".into() },
            IngestError::Playlist,
            IngestError::Live,
            IngestError::NoSuitableFormat { max_height: 1080 },
            IngestError::TooLarge { max: 1 },
            IngestError::TooLong {
                duration: Duration::from_secs(2),
                max: Duration::from_secs(1),
            },
            IngestError::DownloadFailed { detail: "x".into() },
        ];
        let mut codes: Vec<_> = all.iter().map(IngestError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        for e in &all {
            assert!(!e.to_string().ends_with('.'), "{e}");
        }
        assert_eq!(
            all[1].to_string(),
            "the URL leads to h, a loopback address (127.0.0.1), which downloads may not reach"
        );
        assert!(!IngestError::DownloadFailed { detail: "x".into() }.is_input_error());
        let size = |max| IngestError::TooLarge { max }.to_string();
        assert_eq!(
            size(4_000_000_000),
            "the video is larger than the limit of 4000 MB"
        );
        assert_eq!(
            size(2_500_000),
            "the video is larger than the limit of 2.5 MB"
        );
        assert_eq!(
            size(1_234_567),
            "the video is larger than the limit of 1.2 MB"
        );
        assert_eq!(
            size(10_000),
            "the video is larger than the limit of 10000 bytes"
        );
    }
}
