//! Opening results in an external 3D player: the launch pages (`pot3d://` links), M3U
//! playlists of presigned URLs, and the Windows 3D Linker (a `.reg` file that registers
//! `pot3d://` for the current user, and a PowerShell handler generated for this server).
//!
//! The handler script is the one place where text from a request could end up in code: it
//! embeds this server's base URL. That URL comes from configuration, or from the `Host` header
//! only when it is a plain `host[:port]` ([`crate::text::safe_base_url`]); anything else falls
//! back to the listening address. The handler itself accepts exactly `pot3d://job/<job id>`
//! and `pot3d://all` and builds the playlist URL from its embedded base, so a hostile page
//! cannot make it open anything else.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use stereospot_core::platform::{JobListKind, PageRequest, PresignOptions};
use stereospot_core::{Job, JobStatus, ObjectKey};

use crate::error::WebError;
use crate::pages::{load_job, parse_id};
use crate::security::is_https;
use crate::text::{content_disposition, m3u_line, safe_authority, safe_base_url};
use crate::views::{JobView, LaunchPage, Nav, SetupPage, render};
use crate::{AppState, PLAYBACK_URL_TTL};

/// Most jobs in the all-jobs playlist.
const MAX_PLAYLIST_JOBS: usize = 500;

async fn completed_jobs(state: &AppState, max: usize) -> Result<Vec<Job>, WebError> {
    let mut jobs = Vec::new();
    let mut cursor = None;
    loop {
        let page = state
            .platform
            .jobs
            .list(JobListKind::Completed, PageRequest { limit: 100, cursor })
            .await?;
        jobs.extend(page.items);
        match page.next_cursor {
            Some(c) if jobs.len() < max => cursor = Some(c),
            _ => break,
        }
    }
    jobs.truncate(max);
    Ok(jobs)
}

async fn completed_job(state: &AppState, raw: &str) -> Result<Job, WebError> {
    let job = load_job(state, parse_id(raw)?).await?;
    if job.status != JobStatus::Completed {
        return Err(WebError::new(
            axum::http::StatusCode::NOT_FOUND,
            "This job has no video yet",
        ));
    }
    Ok(job)
}

pub(crate) async fn launch_all(State(state): State<AppState>) -> Result<Response, WebError> {
    let jobs = completed_jobs(&state, 100).await?;
    let page = LaunchPage {
        nav: Nav::from_platform(&state.platform),
        job: None,
        jobs: JobView::list(&jobs),
        pot3d_url: "pot3d://all".into(),
        playlist_url: "/playlist.m3u".into(),
    };
    Ok(Html(render(&page)?).into_response())
}

pub(crate) async fn launch_job(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, WebError> {
    let job = completed_job(&state, &raw).await?;
    let id = job.job_id;
    let page = LaunchPage {
        nav: Nav::from_platform(&state.platform),
        job: Some(JobView::new(&job, 0, None, crate::now())),
        jobs: Vec::new(),
        pot3d_url: format!("pot3d://job/{id}"),
        playlist_url: format!("/playlist/{id}.m3u"),
    };
    Ok(Html(render(&page)?).into_response())
}

async fn playlist_entry(state: &AppState, job: &Job) -> Result<String, WebError> {
    let url = state
        .platform
        .storage
        .presign_get(
            &state.platform.buckets.output,
            &ObjectKey::final_output(job.job_id).to_string(),
            &PresignOptions {
                content_type: Some("video/mp4".into()),
                ..PresignOptions::expires_in(PLAYBACK_URL_TTL)
            },
        )
        .await?;
    let view = JobView::new(job, 0, None, 0);
    let title = m3u_line(&format!("{} ({})", view.display_title(), view.mode_short()));
    Ok(format!("#EXTINF:-1,{title}\n{}\n", m3u_line(&url)))
}

fn m3u(body: String, file_name: &str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("audio/x-mpegurl; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&content_disposition("attachment", file_name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

pub(crate) async fn playlist_all(State(state): State<AppState>) -> Result<Response, WebError> {
    let jobs = completed_jobs(&state, MAX_PLAYLIST_JOBS).await?;
    let mut body = String::from("#EXTM3U\n");
    for job in &jobs {
        body.push_str(&playlist_entry(&state, job).await?);
    }
    Ok(m3u(body, "stereospot.m3u"))
}

pub(crate) async fn playlist_job(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, WebError> {
    let raw = file.strip_suffix(".m3u").ok_or_else(WebError::not_found)?;
    let job = completed_job(&state, raw).await?;
    let mut body = String::from("#EXTM3U\n");
    body.push_str(&playlist_entry(&state, &job).await?);
    let name = crate::text::download_file_name(job.title.as_deref(), &job.job_id.to_string());
    let name = name.trim_end_matches(".mp4").to_string() + ".m3u";
    Ok(m3u(body, &name))
}

/// The base URL the handler script embeds (see the module docs).
pub fn script_base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = state
        .config
        .public_base_url
        .as_deref()
        .and_then(safe_base_url)
    {
        return url;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| safe_authority(h));
    if let Some(host) = host {
        let scheme = if is_https(headers) { "https" } else { "http" };
        return format!("{scheme}://{host}");
    }
    safe_base_url(&state.config.fallback_base_url)
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_string())
}

pub(crate) async fn setup_windows(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let page = SetupPage {
        nav: Nav::from_platform(&state.platform),
        base_url: script_base_url(&state, &headers),
    };
    Ok(Html(render(&page)?).into_response())
}

/// The handler's install path, as the `.reg` file's command refers to it.
const HANDLER_PATH: &str = r"%LOCALAPPDATA%\StereoSpot\pot3d-handler.ps1";

/// The PowerShell handler for `base_url` (already validated by [`safe_base_url`]: no quotes,
/// spaces, `$` or backticks can be in it).
pub fn handler_script(base_url: &str) -> String {
    let lines = [
        "# StereoSpot 3D Linker: opens pot3d:// links in PotPlayer.".to_string(),
        format!("# Generated for the StereoSpot server at {base_url}"),
        "# Save as %LOCALAPPDATA%\\StereoSpot\\pot3d-handler.ps1, then open pot3d.reg.".into(),
        "# Only pot3d://job/<job id> and pot3d://all are accepted; the playlist URL is built".into(),
        "# from the server address below, never from the link.".into(),
        "param([Parameter(Position = 0)][string]$Link = '')".into(),
        "$ErrorActionPreference = 'Stop'".into(),
        format!("$Base = '{base_url}'"),
        "$JobLink = '^pot3d://job/([0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})/?$'".into(),
        "if ($Link -cmatch $JobLink) { $Playlist = \"$Base/playlist/$($Matches[1]).m3u\" }".into(),
        "elseif ($Link -cmatch '^pot3d://all/?$') { $Playlist = \"$Base/playlist.m3u\" }".into(),
        "else { exit 2 }".into(),
        "$Candidates = @(".into(),
        "  (Join-Path $env:ProgramFiles 'DAUM\\PotPlayer\\PotPlayerMini64.exe'),".into(),
        "  (Join-Path ${env:ProgramFiles(x86)} 'DAUM\\PotPlayer\\PotPlayerMini.exe')".into(),
        ")".into(),
        "$Player = $Candidates | Where-Object { $_ -and (Test-Path -LiteralPath $_) } | Select-Object -First 1".into(),
        "# Anaglyph jobs are already red/cyan; for side-by-side ones choose the 3D mode of PotPlayer".into(),
        "# with Dubois anaglyph output (Video > 3D Video Mode) once; PotPlayer remembers it.".into(),
        "if ($Player) { Start-Process -FilePath $Player -ArgumentList @($Playlist) }".into(),
        "else { Start-Process -FilePath $Playlist }".into(),
    ];
    let mut out = lines.join("\r\n");
    out.push_str("\r\n");
    out
}

/// REG_EXPAND_SZ as a `.reg` file writes it: UTF-16LE bytes in hex, NUL-terminated.
fn reg_expand_sz(value: &str) -> String {
    let hex: Vec<String> = value
        .encode_utf16()
        .chain(std::iter::once(0))
        .flat_map(|u| u.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("hex(2):{}", hex.join(","))
}

/// The `.reg` file registering `pot3d://` for the current user (no administrator rights).
pub fn reg_file() -> String {
    let command = format!(
        "powershell.exe -NoProfile -ExecutionPolicy Bypass -WindowStyle Hidden -File \"{HANDLER_PATH}\" \"%1\""
    );
    [
        "Windows Registry Editor Version 5.00",
        "",
        "[HKEY_CURRENT_USER\\Software\\Classes\\pot3d]",
        "@=\"URL:StereoSpot 3D player link\"",
        "\"URL Protocol\"=\"\"",
        "",
        "[HKEY_CURRENT_USER\\Software\\Classes\\pot3d\\shell\\open\\command]",
        &format!("@={}", reg_expand_sz(&command)),
        "",
    ]
    .join("\r\n")
}

pub(crate) async fn setup_windows_file(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let (body, content_type) = match file.as_str() {
        "pot3d-handler.ps1" => (
            handler_script(&script_base_url(&state, &headers)),
            "text/plain; charset=utf-8",
        ),
        "pot3d.reg" => (reg_file(), "text/plain; charset=utf-8"),
        _ => return Err(WebError::page_not_found()),
    };
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&content_disposition("attachment", &file)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reg_file_expands_the_handler_path() {
        let reg = reg_file();
        assert!(reg.starts_with("Windows Registry Editor Version 5.00\r\n"));
        // "%L" in UTF-16LE.
        assert!(reg.contains("25,00,4c,00"));
        assert!(reg.ends_with("00,00\r\n"));
    }

    #[test]
    fn handler_embeds_only_the_base_url() {
        let s = handler_script("http://127.0.0.1:8080");
        assert!(s.contains("$Base = 'http://127.0.0.1:8080'"));
        assert_eq!(s.matches('\'').count() % 2, 0);
    }
}
