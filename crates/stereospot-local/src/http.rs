//! The HTTP routes serving presigned object URLs (`/_objects/{bucket}/{key}`): GET with single
//! byte ranges, HEAD, and streaming PUT. The binary merges [`router`] into the web app when
//! `PLATFORM=local`.
//!
//! Status codes: 403 for a missing, malformed or wrong signature and for an expired URL (as S3;
//! the body says which), 404 for a missing object, 413 for an upload over the size limit, 416 for
//! an unsatisfiable range, 400 for a PUT the storage refuses (e.g. a key/prefix conflict).
//! Uploads are streamed to storage through a 1 MiB buffer; nothing buffers a whole body. Note that
//! a body-limit layer on the merged app (axum's `DefaultBodyLimit` does not apply here, since the
//! body is read as a stream) would cap uploads too.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;

use stereospot_core::platform::{ByteRange, ObjectMeta, ObjectStorage, PlatformError};

use crate::presign::{
    PARAM_CONTENT_TYPE, PARAM_DISPOSITION, PARAM_EXPIRES, PARAM_SIGNATURE, SignedMethod,
    SignedRequest,
};
use crate::storage::{FsObjectStorage, resolve_range};

/// Limits of the object routes.
#[derive(Debug, Clone)]
pub struct ObjectRoutesConfig {
    /// Largest accepted PUT body, in bytes (413 beyond it). Default 5 GiB, S3's single-PUT limit.
    pub max_put_bytes: u64,
}

impl Default for ObjectRoutesConfig {
    fn default() -> Self {
        Self {
            max_put_bytes: 5 << 30,
        }
    }
}

#[derive(Debug, Clone)]
struct RouteState {
    storage: Arc<FsObjectStorage>,
    config: ObjectRoutesConfig,
}

/// The object routes with default limits.
pub fn router(storage: Arc<FsObjectStorage>) -> Router {
    router_with_config(storage, ObjectRoutesConfig::default())
}

/// The object routes.
pub fn router_with_config(storage: Arc<FsObjectStorage>, config: ObjectRoutesConfig) -> Router {
    Router::new()
        .route(
            "/_objects/{bucket}/{*key}",
            get(get_object).head(head_object).put(put_object),
        )
        .with_state(RouteState { storage, config })
}

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

/// Why a request was refused (403).
#[derive(Debug)]
struct Forbidden(&'static str);

impl IntoResponse for Forbidden {
    fn into_response(self) -> Response {
        text(StatusCode::FORBIDDEN, self.0)
    }
}

/// The signed parameters a request carries, once verified.
#[derive(Debug)]
struct Authorized {
    content_disposition: Option<String>,
    content_type: Option<String>,
}

fn authorize(
    storage: &FsObjectStorage,
    method: SignedMethod,
    bucket: &str,
    key: &str,
    query: &HashMap<String, String>,
) -> Result<Authorized, Forbidden> {
    let forbidden = Forbidden;
    let (Some(expires), Some(signature)) = (query.get(PARAM_EXPIRES), query.get(PARAM_SIGNATURE))
    else {
        return Err(forbidden("missing signature or expiry"));
    };
    let Ok(expires) = expires.parse::<i64>() else {
        return Err(forbidden("malformed expiry"));
    };
    let content_disposition = query.get(PARAM_DISPOSITION).cloned();
    let content_type = query.get(PARAM_CONTENT_TYPE).cloned();
    let request = SignedRequest {
        method,
        bucket,
        key,
        expires,
        content_disposition: content_disposition.as_deref(),
        content_type: content_type.as_deref(),
    };
    if !storage.signer().verify(&request, signature) {
        return Err(forbidden("signature does not match"));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if i64::try_from(now).unwrap_or(i64::MAX) >= expires {
        return Err(forbidden("request has expired"));
    }
    Ok(Authorized {
        content_disposition,
        content_type,
    })
}

fn storage_error(bucket: &str, key: &str, e: &PlatformError) -> Response {
    match e {
        PlatformError::NotFound(_) => text(StatusCode::NOT_FOUND, "no such object"),
        PlatformError::Invalid(m) => text(StatusCode::BAD_REQUEST, m.clone()),
        _ => {
            tracing::error!(bucket, key, error = %DisplayChain(e), "object request failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// Displays an error with its sources, `a: b: c`.
struct DisplayChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// A guess for objects presigned without a content type.
fn guess_content_type(key: &str) -> &'static str {
    let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("mp4" | "m4v") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mkv") => "video/x-matroska",
        Some("mov") => "video/quicktime",
        Some("json") => "application/json",
        Some("txt" | "log") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// What a `Range` header asks for.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// No (usable) range: serve everything. Multiple ranges and malformed headers land here, as
    /// RFC 9110 allows.
    Whole,
    Bytes(ByteRange),
    Unsatisfiable,
}

fn parse_range(headers: &HeaderMap, size: u64) -> RangeRequest {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeRequest::Whole;
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        // Suffix range: the last `n` bytes.
        let Ok(n) = end.parse::<u64>() else {
            return RangeRequest::Whole;
        };
        if n == 0 || size == 0 {
            return RangeRequest::Unsatisfiable;
        }
        ByteRange {
            start: size.saturating_sub(n),
            end: None,
        }
    } else {
        let Ok(start) = start.parse::<u64>() else {
            return RangeRequest::Whole;
        };
        let end = if end.is_empty() {
            None
        } else {
            match end.parse::<u64>() {
                Ok(e) if e >= start => Some(e),
                _ => return RangeRequest::Whole,
            }
        };
        ByteRange { start, end }
    };
    if resolve_range(range, size).is_err() {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Bytes(range)
    }
}

fn object_headers(key: &str, meta: &ObjectMeta, auth: &Authorized) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let content_type = auth
        .content_type
        .as_deref()
        .and_then(|t| HeaderValue::from_str(t).ok())
        .unwrap_or_else(|| HeaderValue::from_static(guess_content_type(key)));
    headers.insert(header::CONTENT_TYPE, content_type);
    if let Some(d) = auth
        .content_disposition
        .as_deref()
        .and_then(|d| HeaderValue::from_str(d).ok())
    {
        headers.insert(header::CONTENT_DISPOSITION, d);
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(etag) = meta
        .etag
        .as_deref()
        .and_then(|e| HeaderValue::from_str(&format!("\"{e}\"")).ok())
    {
        headers.insert(header::ETAG, etag);
    }
    headers
}

async fn get_object(
    State(state): State<RouteState>,
    Path((bucket, key)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    request_headers: HeaderMap,
) -> Response {
    let auth = match authorize(&state.storage, SignedMethod::Get, &bucket, &key, &query) {
        Ok(a) => a,
        Err(forbidden) => return forbidden.into_response(),
    };
    let object = match state.storage.open_object(&bucket, &key).await {
        Ok(o) => o,
        Err(e) => return storage_error(&bucket, &key, &e),
    };
    let size = object.meta.size;
    let mut headers = object_headers(&key, &object.meta, &auth);
    let (status, range, len) = match parse_range(&request_headers, size) {
        RangeRequest::Whole => (StatusCode::OK, None, size),
        RangeRequest::Unsatisfiable => {
            let mut r = text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
        RangeRequest::Bytes(range) => match resolve_range(range, size) {
            Ok((start, end)) => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
                (StatusCode::PARTIAL_CONTENT, Some(range), end - start + 1)
            }
            Err(e) => return storage_error(&bucket, &key, &e),
        },
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    let stream = match object.into_stream(range).await {
        Ok(s) => s,
        Err(e) => return storage_error(&bucket, &key, &e),
    };
    (status, headers, Body::from_stream(stream)).into_response()
}

async fn head_object(
    State(state): State<RouteState>,
    Path((bucket, key)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let auth = match authorize(&state.storage, SignedMethod::Get, &bucket, &key, &query) {
        Ok(a) => a,
        Err(forbidden) => return forbidden.into_response(),
    };
    match state.storage.head(&bucket, &key).await {
        Ok(Some(meta)) => {
            let mut headers = object_headers(&key, &meta, &auth);
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
            (StatusCode::OK, headers).into_response()
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => storage_error(&bucket, &key, &e),
    }
}

async fn put_object(
    State(state): State<RouteState>,
    Path((bucket, key)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    request_headers: HeaderMap,
    body: Body,
) -> Response {
    let auth = match authorize(&state.storage, SignedMethod::Put, &bucket, &key, &query) {
        Ok(a) => a,
        Err(forbidden) => return forbidden.into_response(),
    };
    if let Some(expected) = &auth.content_type {
        let sent = request_headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if sent != Some(expected.as_str()) {
            return text(
                StatusCode::FORBIDDEN,
                format!("this URL requires Content-Type: {expected}"),
            );
        }
    }
    let max = state.config.max_put_bytes;
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("uploads are limited to {max} bytes"),
        )
    };
    let declared = request_headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return too_large();
    }
    let exceeded = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&exceeded);
    let mut seen = 0u64;
    let stream = body.into_data_stream().map(move |chunk| match chunk {
        Ok(bytes) => {
            seen += bytes.len() as u64;
            if seen > max {
                flag.store(true, Ordering::Relaxed);
                Err(std::io::Error::other("upload exceeds the size limit"))
            } else {
                Ok(bytes)
            }
        }
        Err(e) => Err(std::io::Error::other(e)),
    });
    match state
        .storage
        .put_stream(&bucket, &key, Box::pin(stream))
        .await
    {
        Ok(meta) => {
            let mut response = StatusCode::OK.into_response();
            if let Some(etag) = meta
                .etag
                .as_deref()
                .and_then(|e| HeaderValue::from_str(&format!("\"{e}\"")).ok())
            {
                response.headers_mut().insert(header::ETAG, etag);
            }
            response
        }
        Err(_) if exceeded.load(Ordering::Relaxed) => too_large(),
        Err(e) => storage_error(&bucket, &key, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str, size: u64) -> RangeRequest {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(value).unwrap());
        parse_range(&h, size)
    }

    fn bytes(start: u64, end: Option<u64>) -> RangeRequest {
        RangeRequest::Bytes(ByteRange { start, end })
    }

    #[test]
    fn range_headers() {
        assert_eq!(parse_range(&HeaderMap::new(), 10), RangeRequest::Whole);
        assert_eq!(range("bytes=0-4", 10), bytes(0, Some(4)));
        assert_eq!(range("bytes=5-", 10), bytes(5, None));
        assert_eq!(range("bytes=-3", 10), bytes(7, None));
        assert_eq!(range("bytes=-30", 10), bytes(0, None));
        assert_eq!(range("bytes=8-100", 10), bytes(8, Some(100)));
        assert_eq!(range("bytes=10-", 10), RangeRequest::Unsatisfiable);
        assert_eq!(range("bytes=-0", 10), RangeRequest::Unsatisfiable);
        assert_eq!(range("bytes=0-", 0), RangeRequest::Unsatisfiable);
        assert_eq!(range("bytes=0-1,3-4", 10), RangeRequest::Whole);
        assert_eq!(range("bytes=4-2", 10), RangeRequest::Whole);
        assert_eq!(range("items=0-1", 10), RangeRequest::Whole);
        assert_eq!(range("bytes=x-1", 10), RangeRequest::Whole);
    }

    #[test]
    fn content_type_guess() {
        assert_eq!(guess_content_type("jobs/x/final.MP4"), "video/mp4");
        assert_eq!(guess_content_type("noext"), "application/octet-stream");
    }
}
