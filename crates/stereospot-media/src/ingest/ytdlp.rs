//! Running yt-dlp: finding the program, the arguments, and reading its failures.
//!
//! Two runs per download, both through the same [`FilterProxy`]: `-J` reads the metadata (with
//! our format selection), which is checked (playlist, live, duration, size) before a byte of
//! video moves; then `--load-info-json` downloads exactly what was checked, without extracting
//! the page again.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::proxy::{ResolveError, resolve_checked};
use super::{
    Downloaded, FilterProxy, IngestError, IngestOptions, ProxyOptions, ProxyStats, Refusal,
    check_url, clean_title, ensure_dir,
};
use crate::MediaError;
use crate::error::Tool;
use crate::process::{Finished, Invocation, StdoutMode, run};

/// Where scripts/deps.sh installs yt-dlp, relative to the repository root.
pub const TOOLS_PROGRAM: &str = ".tools/yt-dlp/bin/yt-dlp";

/// Longest metadata JSON read from `-J` (YouTube's is a few MB).
const INFO_JSON_LIMIT: usize = 64 << 20;
/// Time limit of the metadata step (within the download's own limit).
const INFO_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Protocols a chosen format may use: all of them go through yt-dlp's own HTTP client (and so
/// through the proxy). RTMP, RTSP, MMS, F4M... need external programs and are never chosen.
const PROTOCOLS: &str = "[protocol~='^(https?|m3u8(_native)?|http_dash_segments(_generator)?)$']";

/// The yt-dlp program to run: `explicit` (`YT_DLP_PATH`) when given; else `.tools/yt-dlp/`
/// (where scripts/deps.sh installs it) in the workspace this crate was built from, the current
/// directory and its ancestors, or the executable's directory and its ancestors; else `yt-dlp`
/// on `PATH`. A program that does not exist shows up as
/// [`MediaError::ToolMissing`] when it is run, with what to install.
pub fn find_yt_dlp(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit.filter(|p| !p.as_os_str().is_empty()) {
        return p.to_path_buf();
    }
    let mut roots = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")];
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Some(exe) = std::env::current_exe()
        .ok()
        .as_deref()
        .and_then(Path::parent)
    {
        roots.extend(exe.ancestors().map(Path::to_path_buf));
    }
    roots
        .into_iter()
        .map(|r| r.join(TOOLS_PROGRAM))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("yt-dlp"))
}

/// The format selector: the best video (with or without audio) at most `max_height` high plus
/// the best audio, or the best combined format; only over [`PROTOCOLS`].
fn format_selector(max_height: u32) -> String {
    let h = format!("[height<=?{max_height}]");
    format!("bv*{h}{PROTOCOLS}+ba{PROTOCOLS}/b{h}{PROTOCOLS}")
}

/// Arguments shared by both runs.
fn common_args(options: &IngestOptions, proxy: &str, dir: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = [
        "--ignore-config",
        "--no-config-locations",
        "--no-plugin-dirs",
        "--no-remote-components",
        "--no-exec",
        "--no-cache-dir",
        "--no-playlist",
        "--no-progress",
        "--color",
        "never",
        "--downloader",
        "native",
        "--socket-timeout",
        "30",
        "--retries",
        "3",
        "--fragment-retries",
        "3",
        "--abort-on-unavailable-fragments",
        "--extractor-retries",
        "1",
        "--merge-output-format",
        "mp4/mkv",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    a.push("--proxy".into());
    a.push(proxy.into());
    a.push("--max-filesize".into());
    a.push(options.max_file_size.to_string().into());
    a.push("-f".into());
    a.push(format_selector(options.max_height).into());
    a.push("-P".into());
    a.push(dir.as_os_str().to_os_string());
    a.push("-o".into());
    a.push("source.%(ext)s".into());
    a
}

/// The child's whole environment: the proxy everywhere, nothing of ours (no `NO_PROXY`, no user
/// configuration: `HOME` is the work directory).
fn child_env(proxy: &str, dir: &Path) -> Vec<(OsString, OsString)> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut env: Vec<(OsString, OsString)> = vec![
        ("PATH".into(), path),
        ("HOME".into(), dir.as_os_str().into()),
        ("TMPDIR".into(), dir.as_os_str().into()),
        ("LC_ALL".into(), "C.UTF-8".into()),
        ("PYTHONIOENCODING".into(), "utf-8".into()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ("NO_COLOR".into(), "1".into()),
    ];
    for name in [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        env.push((name.into(), proxy.into()));
    }
    env
}

/// What `-J` says about a URL (the fields we use).
#[derive(Debug, Default, Deserialize)]
struct Info {
    #[serde(rename = "_type")]
    kind: Option<String>,
    title: Option<String>,
    duration: Option<f64>,
    is_live: Option<bool>,
    live_status: Option<String>,
    extractor: Option<String>,
    filesize: Option<f64>,
    filesize_approx: Option<f64>,
    requested_formats: Option<Vec<FormatInfo>>,
}

#[derive(Debug, Default, Deserialize)]
struct FormatInfo {
    filesize: Option<f64>,
    filesize_approx: Option<f64>,
}

impl Info {
    /// The size of what will be downloaded, when the site says.
    fn expected_size(&self) -> Option<u64> {
        let one = |exact: Option<f64>, approx: Option<f64>| exact.or(approx).map(|v| v as u64);
        match &self.requested_formats {
            Some(formats) if !formats.is_empty() => formats
                .iter()
                .map(|f| one(f.filesize, f.filesize_approx))
                .sum::<Option<u64>>(),
            _ => one(self.filesize, self.filesize_approx),
        }
    }

    /// Refuses what must not be downloaded.
    fn check(&self, options: &IngestOptions) -> Result<(), IngestError> {
        match self.kind.as_deref() {
            Some("playlist" | "multi_video") => return Err(IngestError::Playlist),
            Some("video") | None => {}
            Some(other) => {
                return Err(IngestError::Unsupported {
                    detail: format!("yt-dlp returned a {other} result"),
                });
            }
        }
        if self.is_live == Some(true)
            || matches!(
                self.live_status.as_deref(),
                Some("is_live" | "is_upcoming" | "post_live")
            )
        {
            return Err(IngestError::Live);
        }
        if let Some(d) = self.duration.filter(|d| d.is_finite() && *d >= 0.0) {
            let duration = Duration::from_secs_f64(d);
            if duration > options.max_duration {
                return Err(IngestError::TooLong {
                    duration,
                    max: options.max_duration,
                });
            }
        }
        if self
            .expected_size()
            .is_some_and(|s| s > options.max_file_size)
        {
            return Err(IngestError::TooLarge {
                max: options.max_file_size,
            });
        }
        Ok(())
    }
}

/// Downloads the video at `url` into `dir` (created if needed); see the module docs for the
/// safety rules and limits.
pub async fn download(
    options: &IngestOptions,
    url: &str,
    dir: &Path,
) -> Result<Downloaded, IngestError> {
    let url = check_url(url)?;
    let started = Instant::now();
    // The first host is checked here too: a clear error without starting anything.
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    match resolve_checked(&host, port, &options.policy, Duration::from_secs(15)).await {
        Ok(_) => {}
        Err(ResolveError::Refused(r)) => return Err(refusal_error(r)),
        Err(ResolveError::Timeout) => {
            return Err(IngestError::DownloadFailed {
                detail: format!("resolving {host} timed out"),
            });
        }
    }
    ensure_dir(dir)?;
    let proxy = FilterProxy::start(ProxyOptions {
        policy: options.policy.clone(),
        byte_budget: Some(byte_budget(options.max_file_size)),
        ..ProxyOptions::default()
    })
    .await
    .map_err(|e| MediaError::io("starting the ingest proxy", e))?;
    let proxy_url = proxy.url();
    let program = find_yt_dlp(options.yt_dlp.as_deref());
    let remaining = |limit: Duration| options.timeout.saturating_sub(started.elapsed()).min(limit);

    // 1. Metadata.
    let mut inv = invocation(&program, remaining(INFO_TIMEOUT), &proxy_url, dir);
    inv.args(common_args(options, &proxy_url, dir));
    inv.args(["--flat-playlist", "-J", "--"]).arg(url.as_str());
    let fin = run(
        &inv,
        StdoutMode::Collect {
            limit: INFO_JSON_LIMIT,
        },
    )
    .await?;
    if !fin.status.success() {
        return Err(classify_failure(&fin, proxy.stats(), options));
    }
    let info: Info =
        serde_json::from_slice(&fin.stdout).map_err(|e| IngestError::DownloadFailed {
            detail: format!("yt-dlp's metadata is not JSON: {e}"),
        })?;
    info.check(options)?;
    let info_path = dir.join("info.json");
    tokio::fs::write(&info_path, &fin.stdout)
        .await
        .map_err(|e| MediaError::io(format!("writing {}", info_path.display()), e))?;
    tracing::info!(
        title = info.title.as_deref().unwrap_or(""),
        extractor = info.extractor.as_deref().unwrap_or(""),
        duration = info.duration,
        expected_bytes = info.expected_size(),
        "video found; downloading"
    );

    // 2. The download of what was checked.
    let mut inv = invocation(&program, remaining(options.timeout), &proxy_url, dir);
    inv.args(common_args(options, &proxy_url, dir));
    inv.arg("--load-info-json").arg(&info_path);
    // `--print` would silence the messages that explain a skipped download; write the path to
    // a file instead.
    let path_file = dir.join("filepath.txt");
    inv.args(["--print-to-file", "after_move:%(filepath)j"])
        .arg(&path_file);
    let fin = run(&inv, StdoutMode::Collect { limit: 4 << 20 }).await?;
    if !fin.status.success() {
        return Err(classify_failure(&fin, proxy.stats(), options));
    }
    let printed = tokio::fs::read(&path_file).await.unwrap_or_default();
    let path = downloaded_path(&printed, dir).ok_or_else(|| {
        let stdout = String::from_utf8_lossy(&fin.stdout);
        if proxy.stats().budget_exceeded() || stdout.contains("larger than max-filesize") {
            IngestError::TooLarge {
                max: options.max_file_size,
            }
        } else {
            IngestError::DownloadFailed {
                detail: format!(
                    "yt-dlp wrote no file: {}",
                    stdout
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("no message")
                ),
            }
        }
    })?;
    let size = tokio::fs::metadata(&path)
        .await
        .map_err(|e| MediaError::io(format!("reading {}", path.display()), e))?
        .len();
    if size > options.max_file_size {
        return Err(IngestError::TooLarge {
            max: options.max_file_size,
        });
    }
    if size == 0 {
        return Err(IngestError::Unsupported {
            detail: "the download is empty".into(),
        });
    }
    tracing::info!(
        bytes = size,
        relayed = proxy.stats().bytes_down(),
        seconds = started.elapsed().as_secs_f64(),
        "download finished"
    );
    Ok(Downloaded {
        path,
        title: info.title.as_deref().and_then(clean_title),
        size,
        duration: info
            .duration
            .filter(|d| d.is_finite() && *d >= 0.0)
            .map(Duration::from_secs_f64),
        extractor: info.extractor,
    })
}

/// The proxy's budget: the size limit plus room for pages, manifests and retries.
fn byte_budget(max_file_size: u64) -> u64 {
    max_file_size.saturating_add((max_file_size / 4).max(64 << 20))
}

fn invocation(program: &Path, timeout: Duration, proxy: &str, dir: &Path) -> Invocation {
    let mut inv = Invocation::new(Tool::YtDlp, program, timeout);
    inv.env = Some(child_env(proxy, dir));
    inv.current_dir = Some(dir.to_path_buf());
    inv
}

/// The file `after_move:%(filepath)j` named, if it is a file inside `dir`.
fn downloaded_path(stdout: &[u8], dir: &Path) -> Option<PathBuf> {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().rev().find(|l| l.starts_with('"'))?;
    let path = PathBuf::from(serde_json::from_str::<String>(line).ok()?);
    let real = path.canonicalize().ok()?;
    let dir = dir.canonicalize().ok()?;
    (real.starts_with(&dir) && real.is_file()).then_some(real)
}

fn refusal_error(r: Refusal) -> IngestError {
    match r {
        Refusal::Forbidden {
            host,
            address,
            reason,
        } => IngestError::ForbiddenAddress {
            host,
            address,
            reason,
        },
        Refusal::Unresolvable { host } => IngestError::HostNotFound { host },
    }
}

/// Explains a failed run: what the proxy refused first, then yt-dlp's own error line.
fn classify_failure(fin: &Finished, stats: &ProxyStats, options: &IngestOptions) -> IngestError {
    if stats.budget_exceeded() {
        return IngestError::TooLarge {
            max: options.max_file_size,
        };
    }
    let refusals = stats.refusals();
    if let Some(r) = refusals
        .iter()
        .find(|r| matches!(r, Refusal::Forbidden { .. }))
        .or_else(|| refusals.first())
    {
        return refusal_error(r.clone());
    }
    let text = fin.stderr.text();
    classify_stderr(&text, options.max_height).unwrap_or_else(|| IngestError::DownloadFailed {
        detail: format!("yt-dlp failed ({}): {}", fin.status, error_line(&text)),
    })
}

/// yt-dlp's last `ERROR:` line without the prefix (or the last line).
fn error_line(stderr: &str) -> String {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("ERROR:"))
        .or_else(|| stderr.lines().last())
        .unwrap_or("no message");
    let line = line.strip_prefix("ERROR:").unwrap_or(line).trim();
    // "[generic] abc: Unable to ..." -> "Unable to ..."
    let line = match line.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((_, rest)) => rest.split_once(": ").map_or(rest, |(_, msg)| msg),
        None => line,
    };
    line.trim_end_matches('.').to_string()
}

/// Input errors recognised in yt-dlp's stderr.
fn classify_stderr(stderr: &str, max_height: u32) -> Option<IngestError> {
    let line = error_line(stderr);
    let lower = line.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    if any(&[
        "unsupported url",
        "no video formats found",
        "no video could be found",
    ]) {
        return Some(IngestError::Unsupported { detail: line });
    }
    if any(&["requested format is not available", "no suitable format"]) {
        return Some(IngestError::NoSuitableFormat { max_height });
    }
    if any(&["file:// urls are disabled"]) {
        return Some(IngestError::InvalidUrl { reason: line });
    }
    if any(&[
        "http error 404",
        "http error 410",
        "http error 401",
        "http error 451",
        "video unavailable",
        "is not available",
        "private video",
        "has been removed",
        "been terminated",
        "sign in to confirm",
        "login required",
        "requires authentication",
        "members-only",
        "geo restrict",
        "not available in your country",
        "drm protected",
        "premieres in",
    ]) {
        return Some(IngestError::Unavailable { detail: line });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_selector_caps_the_height_and_the_protocols() {
        let f = format_selector(720);
        assert!(f.starts_with("bv*[height<=?720][protocol~="), "{f}");
        assert_eq!(f.matches("[height<=?720]").count(), 2);
        assert_eq!(f.matches("[protocol~=").count(), 3);
        assert!(!f.contains("rtmp"));
    }

    #[test]
    fn arguments_keep_config_plugins_and_external_downloaders_out() {
        let dir = Path::new("/w");
        let args: Vec<String> = common_args(&IngestOptions::default(), "http://127.0.0.1:9", dir)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        for flag in [
            "--ignore-config",
            "--no-config-locations",
            "--no-plugin-dirs",
            "--no-exec",
            "--no-remote-components",
            "--no-playlist",
        ] {
            assert!(args.iter().any(|a| a == flag), "{flag} in {args:?}");
        }
        let pair = |k: &str| {
            args.iter()
                .position(|a| a == k)
                .map(|i| args[i + 1].clone())
        };
        assert_eq!(pair("--downloader").as_deref(), Some("native"));
        assert_eq!(pair("--proxy").as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(pair("--max-filesize").as_deref(), Some("4000000000"));
        assert!(!args.iter().any(|a| a == "--enable-file-urls"));
        let env = child_env("http://127.0.0.1:9", dir);
        assert!(
            env.iter()
                .any(|(k, v)| k == "https_proxy" && v == "http://127.0.0.1:9")
        );
        assert!(env.iter().any(|(k, v)| k == "HOME" && v == "/w"));
        assert!(
            !env.iter()
                .any(|(k, _)| k.to_string_lossy().to_lowercase() == "no_proxy")
        );
    }

    #[test]
    fn metadata_is_checked_before_downloading() {
        let opts = IngestOptions {
            max_file_size: 1000,
            max_duration: Duration::from_secs(60),
            ..IngestOptions::default()
        };
        let info = |json: &str| serde_json::from_str::<Info>(json).unwrap().check(&opts);
        assert!(info(r#"{"_type":"video","title":"t","duration":59.5}"#).is_ok());
        assert!(info(r#"{"title":"t"}"#).is_ok());
        assert_eq!(
            info(r#"{"_type":"playlist","entries":[]}"#)
                .unwrap_err()
                .code(),
            "playlist_not_supported"
        );
        assert_eq!(
            info(r#"{"_type":"video","is_live":true}"#)
                .unwrap_err()
                .code(),
            "live_not_supported"
        );
        assert_eq!(
            info(r#"{"_type":"video","live_status":"is_upcoming"}"#)
                .unwrap_err()
                .code(),
            "live_not_supported"
        );
        let e = info(r#"{"_type":"video","duration":3600}"#).unwrap_err();
        assert_eq!(e.code(), "too_long");
        assert_eq!(
            e.to_string(),
            "the video lasts 1:00:00, above the limit of 0:01:00"
        );
        assert_eq!(
            info(r#"{"_type":"video","filesize_approx":1001}"#)
                .unwrap_err()
                .code(),
            "too_large"
        );
        assert_eq!(
            info(r#"{"requested_formats":[{"filesize":600},{"filesize_approx":500}]}"#)
                .unwrap_err()
                .code(),
            "too_large"
        );
        // One part of unknown size: the total is unknown, the proxy budget and the final
        // check still apply.
        assert!(info(r#"{"requested_formats":[{"filesize":600},{}]}"#).is_ok());
    }

    #[test]
    fn yt_dlp_errors_become_readable_reasons() {
        let c = |s: &str| classify_stderr(s, 1080).map(|e| (e.code(), e.to_string()));
        assert_eq!(
            c(
                "WARNING: [generic] Falling back on generic information extractor\nERROR: Unsupported URL: http://h/page.html\n"
            ),
            Some((
                "unsupported_url",
                "no video was found at the URL: Unsupported URL: http://h/page.html".into()
            ))
        );
        assert_eq!(
            c("ERROR: [generic] missing: Unable to download webpage: HTTP Error 404: File not found (caused by <HTTPError 404: File not found>)").unwrap().0,
            "video_unavailable"
        );
        assert_eq!(
            c("ERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader").unwrap(),
            ("video_unavailable", "the video cannot be downloaded: Video unavailable. This video has been removed by the uploader".into())
        );
        assert_eq!(
            c("ERROR: [youtube] abc: Requested format is not available. Use --list-formats for a list of available formats").unwrap().0,
            "no_suitable_format"
        );
        assert_eq!(
            c("ERROR: file:// URLs are disabled by default in yt-dlp for security reasons")
                .unwrap()
                .0,
            "invalid_url"
        );
        // Network trouble is not the URL's fault: retried.
        assert!(
            c("ERROR: [generic] x: Unable to download webpage: [Errno 111] Connection refused")
                .is_none()
        );
        assert_eq!(
            error_line("ERROR: [generic] x: Unable to download webpage: timed out."),
            "Unable to download webpage: timed out"
        );
    }

    #[test]
    fn the_budget_leaves_room_for_pages() {
        assert_eq!(byte_budget(1000), 1000 + (64 << 20));
        assert_eq!(byte_budget(4_000_000_000), 5_000_000_000);
    }

    #[test]
    fn a_missing_program_falls_back_to_path() {
        assert_eq!(
            find_yt_dlp(Some(Path::new("/opt/y/yt-dlp"))),
            PathBuf::from("/opt/y/yt-dlp")
        );
        let found = find_yt_dlp(None);
        assert!(found == Path::new("yt-dlp") || found.ends_with(TOOLS_PROGRAM));
    }
}
