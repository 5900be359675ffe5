//! Dashboard, job list, and the job routes (create, detail, patch, play, download, delete,
//! ingest from a URL).

use axum::Json;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use stereospot_core::payload::{DeletionPayload, IngestPayload, IngestSource, encode};
use stereospot_core::platform::{JobListKind, PageRequest, PresignOptions};
use stereospot_core::{Job, JobId, JobStatus, JobUpdate, ObjectKey, PlatformError, StereoMode};

use crate::error::WebError;
use crate::security::{is_https, wants_json};
use crate::text::{clean_title, content_disposition, download_file_name, title_from_file_name};
use crate::views::{self, DashboardPage, JobPage, JobView, JobsPage, Nav, render};
use crate::{AppState, PLAYBACK_URL_TTL, UPLOAD_URL_TTL};

/// The message after a removal (the spec's words).
pub const REMOVED_NOTICE: &str = "Job removed. Cleanup in progress.";
const INGEST_NOTICE: &str = "Download queued: the video is fetched from the URL, then converted.";
const MAX_CURSOR_LEN: usize = 512;
const MAX_URL_LEN: usize = 2048;

/// Parses a job id from a path; anything but a canonical id is a 404 before any store is read.
pub(crate) fn parse_id(raw: &str) -> Result<JobId, WebError> {
    JobId::parse(raw).map_err(|_| WebError::not_found())
}

/// A job that exists and is not deleted (deleted jobs are as absent as unknown ones).
pub(crate) async fn load_job(state: &AppState, id: JobId) -> Result<Job, WebError> {
    match state.platform.jobs.get(id).await? {
        Some(job) if job.status != JobStatus::Deleted => Ok(job),
        _ => Err(WebError::not_found()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NoticeQuery {
    notice: Option<String>,
}

fn notice(q: &NoticeQuery) -> Option<&'static str> {
    match q.notice.as_deref() {
        Some("removed") => Some(REMOVED_NOTICE),
        Some("ingest") => Some(INGEST_NOTICE),
        _ => None,
    }
}

/// Reads a JSON or form body, as its `Content-Type` says.
async fn parse_body<T: DeserializeOwned>(request: Request) -> Result<T, WebError> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().starts_with("application/json"));
    if is_json {
        Json::<T>::from_request(request, &())
            .await
            .map(|Json(v)| v)
            .map_err(|e| WebError::new(e.status(), e.body_text()))
    } else {
        axum::Form::<T>::from_request(request, &())
            .await
            .map(|axum::Form(v)| v)
            .map_err(|e| WebError::new(e.status(), e.body_text()))
    }
}

fn html(page: String) -> Response {
    Html(page).into_response()
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) async fn not_found() -> WebError {
    WebError::page_not_found()
}

pub(crate) async fn dashboard(
    State(state): State<AppState>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let jobs = &state.platform.jobs;
    let (in_progress, completed, failed) = futures::try_join!(
        jobs.list(JobListKind::InProgress, PageRequest::first(10)),
        jobs.list(JobListKind::Completed, PageRequest::first(10)),
        jobs.list(JobListKind::Failed, PageRequest::first(5)),
    )?;
    let mut finished: Vec<Job> = completed.items.into_iter().chain(failed.items).collect();
    finished.sort_by_key(|j| std::cmp::Reverse(j.completed_at.unwrap_or(j.created_at)));
    finished.truncate(10);
    let page = DashboardPage {
        nav: Nav::from_platform(&state.platform),
        modes: views::mode_choices(),
        in_progress: JobView::list(&in_progress.items),
        finished: JobView::list(&finished),
        notice: notice(&q),
    };
    Ok(no_store(html(render(&page)?)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct JobsQuery {
    /// The `next_cursor` of the previous page of completed jobs.
    completed_cursor: Option<String>,
    notice: Option<String>,
}

pub(crate) async fn jobs_list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<JobsQuery>,
) -> Result<Response, WebError> {
    const PAGE: u32 = 20;
    let cursor = q.completed_cursor.filter(|c| !c.is_empty());
    if cursor.as_ref().is_some_and(|c| c.len() > MAX_CURSOR_LEN) {
        return Err(WebError::bad_request("malformed page cursor"));
    }
    let first_page = cursor.is_none();
    let jobs = &state.platform.jobs;
    let completed = jobs
        .list(
            JobListKind::Completed,
            PageRequest {
                limit: PAGE,
                cursor,
            },
        )
        .await?;
    let (in_progress, failed) = if first_page {
        let (a, b) = futures::try_join!(
            jobs.list(JobListKind::InProgress, PageRequest::first(100)),
            jobs.list(JobListKind::Failed, PageRequest::first(PAGE)),
        )?;
        (a.items, b.items)
    } else {
        (Vec::new(), Vec::new())
    };
    if wants_json(&headers) {
        let body = serde_json::json!({
            "in_progress": JobView::list(&in_progress),
            "completed": JobView::list(&completed.items),
            "failed": JobView::list(&failed),
            "next_completed_cursor": completed.next_cursor,
        });
        return Ok(no_store(Json(body).into_response()));
    }
    let older_url = completed.next_cursor.map(|c| {
        format!(
            "/jobs?completed_cursor={}",
            percent_encoding::utf8_percent_encode(&c, percent_encoding::NON_ALPHANUMERIC)
        )
    });
    let page = JobsPage {
        nav: Nav::from_platform(&state.platform),
        in_progress: JobView::list(&in_progress),
        completed: JobView::list(&completed.items),
        failed: JobView::list(&failed),
        older_url,
        is_first_page: first_page,
        notice: notice(&NoticeQuery { notice: q.notice }),
    };
    Ok(no_store(html(render(&page)?)))
}

#[derive(Debug, Deserialize)]
struct CreateJob {
    mode: Option<String>,
    title: Option<String>,
}

async fn presign_upload(state: &AppState, id: JobId) -> Result<String, WebError> {
    Ok(state
        .platform
        .storage
        .presign_put(
            &state.platform.buckets.input,
            &ObjectKey::source(id).to_string(),
            &PresignOptions::expires_in(UPLOAD_URL_TTL),
        )
        .await?)
}

pub(crate) async fn create_job(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, WebError> {
    let json = wants_json(request.headers());
    let body: CreateJob = parse_body(request).await?;
    let mode: StereoMode = body
        .mode
        .as_deref()
        .ok_or_else(|| WebError::bad_request("mode is required: anaglyph, sbs, hsbs or tab"))?
        .parse()
        .map_err(|e: stereospot_core::job::UnknownMode| WebError::bad_request(e.to_string()))?;
    let id = JobId::from_parts(crate::now_millis(), rand::random());
    let mut job = Job::new(id, mode, crate::now());
    job.title = body.title.as_deref().and_then(clean_title);
    state.platform.jobs.create(&job).await?;
    tracing::info!(job_id = %id, %mode, "job created");
    let location = format!("/jobs/{id}");
    if json {
        let upload_url = presign_upload(&state, id).await?;
        let mut response = (
            StatusCode::CREATED,
            Json(serde_json::json!({ "job_id": id, "upload_url": upload_url })),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, v);
        }
        Ok(response)
    } else {
        Ok(Redirect::to(&location).into_response())
    }
}

pub(crate) async fn job_detail(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let id = parse_id(&raw)?;
    let job = load_job(&state, id).await?;
    let mut view = JobView::load(&state, &job).await?;
    let upload_url = if view.awaits_source() {
        Some(presign_upload(&state, id).await?)
    } else {
        None
    };
    if wants_json(&headers) {
        if view.is_completed() {
            view.playback_url = Some(presign_final(&state, &job, None).await?);
        }
        let mut body = serde_json::to_value(&view)
            .map_err(|e| WebError::internal("serialising a job failed", &e))?;
        if let (Some(url), Some(obj)) = (upload_url, body.as_object_mut()) {
            obj.insert("upload_url".into(), url.into());
        }
        return Ok(no_store(Json(body).into_response()));
    }
    let page = JobPage {
        nav: Nav::from_platform(&state.platform),
        download_name: download_file_name(job.title.as_deref(), &view.job_id),
        job: view,
        upload_url,
        max_upload_bytes: state.config.max_upload_bytes,
        max_upload_text: size_text(state.config.max_upload_bytes),
        ingest_enabled: state.config.ingest_enabled,
        push_available: state.config.vapid.is_some() && is_https(&headers),
        notice: notice(&q),
    };
    Ok(no_store(html(render(&page)?)))
}

/// "5 GiB", "200 MiB".
fn size_text(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else if bytes >= MIB {
        format!("{:.0} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchJob {
    /// An explicit title (replaces the current one).
    title: Option<String>,
    /// The uploaded file's name: becomes the title when the job has none.
    file_name: Option<String>,
    /// Marks the upload done; the server records its own clock, not the client's.
    uploaded_at: Option<serde_json::Value>,
    source_file_size_bytes: Option<u64>,
}

pub(crate) async fn patch_job(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    request: Request,
) -> Result<Response, WebError> {
    let id = parse_id(&raw)?;
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().starts_with("application/json"));
    if !is_json {
        return Err(WebError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "PATCH takes a JSON body (Content-Type: application/json)",
        ));
    }
    let body: PatchJob = parse_body(request).await?;
    let job = load_job(&state, id).await?;
    let max = state.config.max_upload_bytes;
    if body.source_file_size_bytes.is_some_and(|s| s > max) {
        return Err(WebError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("uploads are limited to {}", size_text(max)),
        ));
    }
    let mut update = JobUpdate::edit();
    if let Some(t) = body.title.as_deref() {
        update.title = clean_title(t);
    } else if job.title.is_none() {
        update.title = body.file_name.as_deref().and_then(title_from_file_name);
    }
    let uploaded = body.uploaded_at.is_some() || body.source_file_size_bytes.is_some();
    if uploaded && job.uploaded_at.is_none() {
        update.uploaded_at = Some(crate::now());
        // The stored object's size when it is there; the client's word otherwise.
        let stored = state
            .platform
            .storage
            .head(
                &state.platform.buckets.input,
                &ObjectKey::source(id).to_string(),
            )
            .await?;
        update.source_file_size_bytes = stored.map(|m| m.size).or(body.source_file_size_bytes);
    }
    let job = match state.platform.jobs.update(id, &update).await {
        Ok(job) => job,
        Err(PlatformError::Transition(_)) | Err(PlatformError::NotFound(_)) => {
            return Err(WebError::not_found());
        }
        Err(e) => return Err(e.into()),
    };
    let view = JobView::load(&state, &job).await?;
    Ok(no_store(Json(view).into_response()))
}

/// A presigned GET of a completed job's final file; `disposition` for downloads.
async fn presign_final(
    state: &AppState,
    job: &Job,
    disposition: Option<String>,
) -> Result<String, WebError> {
    Ok(state
        .platform
        .storage
        .presign_get(
            &state.platform.buckets.output,
            &ObjectKey::final_output(job.job_id).to_string(),
            &PresignOptions {
                expires_in: PLAYBACK_URL_TTL,
                content_disposition: disposition,
                content_type: Some("video/mp4".into()),
            },
        )
        .await?)
}

async fn completed_job(state: &AppState, raw: &str) -> Result<Job, WebError> {
    let job = load_job(state, parse_id(raw)?).await?;
    if job.status != JobStatus::Completed {
        return Err(WebError::new(
            StatusCode::NOT_FOUND,
            "This job has no video yet",
        ));
    }
    Ok(job)
}

/// 303 to a presigned playback URL (4 hours).
pub(crate) async fn play(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, WebError> {
    let job = completed_job(&state, &raw).await?;
    let url = presign_final(&state, &job, None).await?;
    Ok(no_store(Redirect::to(&url).into_response()))
}

/// 303 to a presigned download URL whose response suggests `{title}3d.mp4`.
pub(crate) async fn download(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, WebError> {
    let job = completed_job(&state, &raw).await?;
    let name = download_file_name(job.title.as_deref(), &job.job_id.to_string());
    let url = presign_final(&state, &job, Some(content_disposition("attachment", &name))).await?;
    Ok(no_store(Redirect::to(&url).into_response()))
}

pub(crate) async fn delete_job(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let id = parse_id(&raw)?;
    let job = load_job(&state, id).await?;
    if !job.status.is_removable() {
        return Err(WebError::conflict(format!(
            "Only completed or failed jobs can be removed; this one is {}",
            job.status
        )));
    }
    match state
        .platform
        .jobs
        .update(id, &JobUpdate::transition(job.status, JobStatus::Deleted))
        .await
    {
        Ok(_) => {}
        Err(PlatformError::Transition(_)) => {
            return Err(WebError::conflict(
                "The job changed meanwhile; reload the page",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    // The status change comes first: the deletion worker only cleans up deleted jobs.
    state
        .platform
        .queues
        .deletion
        .send(&encode(&DeletionPayload { job_id: id }))
        .await?;
    tracing::info!(job_id = %id, "job removed; cleanup queued");
    if wants_json(&headers) {
        Ok(Json(serde_json::json!({
            "job_id": id,
            "status": JobStatus::Deleted,
            "message": REMOVED_NOTICE,
        }))
        .into_response())
    } else {
        Ok(Redirect::to("/?notice=removed").into_response())
    }
}

#[derive(Debug, Deserialize)]
struct IngestRequest {
    url: Option<String>,
    source_url: Option<String>,
}

/// An `http(s)` URL of sane length without whitespace or control characters. Where it may
/// lead (loopback, private networks) is the ingest worker's check, on every connection.
fn valid_source_url(url: &str) -> bool {
    url.len() <= MAX_URL_LEN
        && (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

pub(crate) async fn ingest_from_url(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    request: Request,
) -> Result<Response, WebError> {
    if !state.config.ingest_enabled {
        return Err(WebError::page_not_found());
    }
    let id = parse_id(&raw)?;
    let json = wants_json(request.headers());
    let body: IngestRequest = parse_body(request).await?;
    let url = body
        .source_url
        .or(body.url)
        .map(|u| u.trim().to_string())
        .unwrap_or_default();
    if !valid_source_url(&url) {
        return Err(WebError::bad_request(
            "Give an http:// or https:// URL of a video page or file",
        ));
    }
    let job = load_job(&state, id).await?;
    if job.status != JobStatus::Created || job.uploaded_at.is_some() {
        return Err(WebError::conflict("This job already has its video"));
    }
    let payload = IngestPayload {
        job_id: id,
        source: IngestSource::Url { source_url: url },
    };
    state.platform.queues.ingest.send(&encode(&payload)).await?;
    tracing::info!(job_id = %id, "ingest queued");
    if json {
        Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "job_id": id, "status": "queued" })),
        )
            .into_response())
    } else {
        Ok(Redirect::to(&format!("/jobs/{id}?notice=ingest")).into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_urls() {
        assert!(valid_source_url("https://example.com/v"));
        assert!(!valid_source_url("file:///etc/passwd"));
        assert!(!valid_source_url("https://"));
        assert!(!valid_source_url("https://a b"));
        assert!(!valid_source_url("javascript:alert(1)"));
        assert!(!valid_source_url(&format!(
            "https://x/{}",
            "a".repeat(3000)
        )));
    }

    #[test]
    fn sizes() {
        assert_eq!(size_text(5 << 30), "5 GiB");
        assert_eq!(size_text(200 << 20), "200 MiB");
        assert_eq!(size_text(10), "10 bytes");
    }
}
