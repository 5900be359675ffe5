//! The inference server's HTTP contract (the spec's SageMaker/HTTP container): `GET /ping`,
//! and `POST /invocations` with `{"s3_input_uri", "s3_output_uri", "mode"}` (`input_uri` and
//! `output_uri` accepted as aliases; `mode` defaults to `anaglyph`). The input is read and the
//! output written through [`ObjectStorage`]; a file backend converts in between.
//!
//! Answers: 200 `{"status":"ok"}` once the output is stored; 400 with `{"error"}` for a
//! malformed body, an unknown mode or a URI that is not a pipeline segment; 404 when the input
//! does not exist; 500 with the reason when conversion or storage fails.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use stereospot_core::keys::parse_s3_uri;
use stereospot_core::platform::{ObjectStorage, PlatformError};
use stereospot_core::{ObjectKey, StereoMode};
use tracing::Instrument;

use crate::analysis::load_depth_seed;
use crate::backend::{BackendData, ConvertContext, InferenceBackend};

/// What the server needs.
#[derive(Debug, Clone)]
pub struct InferenceServer {
    pub storage: Arc<dyn ObjectStorage>,
    /// A [`BackendData::LocalFiles`] backend (the server does the storage I/O).
    pub backend: Arc<dyn InferenceBackend>,
    /// Where per-request work directories go.
    pub work_root: PathBuf,
}

/// The routes: `GET /ping`, `POST /invocations`.
pub fn router(server: InferenceServer) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .route("/invocations", post(invocations))
        .with_state(Arc::new(server))
}

async fn ping() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

#[derive(Debug, Deserialize)]
struct Invocation {
    #[serde(alias = "input_uri")]
    s3_input_uri: String,
    #[serde(alias = "output_uri")]
    s3_output_uri: String,
    #[serde(default)]
    mode: Option<String>,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    (status, axum::Json(serde_json::json!({"error": message}))).into_response()
}

async fn invocations(State(server): State<Arc<InferenceServer>>, body: Bytes) -> Response {
    let request: Invocation = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed body: {e}")),
    };
    let mode = match request
        .mode
        .as_deref()
        .unwrap_or("anaglyph")
        .parse::<StereoMode>()
    {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Some((in_bucket, in_key)) = parse_s3_uri(&request.s3_input_uri) else {
        return error(StatusCode::BAD_REQUEST, "s3_input_uri is not an s3:// URI");
    };
    let Some((out_bucket, out_key)) = parse_s3_uri(&request.s3_output_uri) else {
        return error(StatusCode::BAD_REQUEST, "s3_output_uri is not an s3:// URI");
    };
    let Ok(ObjectKey::Segment {
        job_id,
        index,
        total,
        ..
    }) = ObjectKey::parse(in_key)
    else {
        return error(StatusCode::BAD_REQUEST, "s3_input_uri is not a segment");
    };
    if !matches!(ObjectKey::parse(out_key), Ok(ObjectKey::SegmentOutput { job_id: j, index: i }) if j == job_id && i == index)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "s3_output_uri is not the output key of that segment",
        );
    }
    if server.backend.data() != BackendData::LocalFiles {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "this server's backend does not convert local files",
        );
    }
    let span = tracing::info_span!("invocation", job_id = %job_id, segment_index = index);
    let depth_seed = match load_depth_seed(&*server.storage, in_bucket, job_id, index).await {
        Ok(seed) => seed,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let ctx = ConvertContext {
        job_id,
        segment_index: index,
        total_segments: total,
        input_uri: request.s3_input_uri.clone(),
        output_uri: request.s3_output_uri.clone(),
        depth_seed,
    };
    convert(&server, in_bucket, in_key, out_bucket, out_key, mode, &ctx)
        .instrument(span)
        .await
}

async fn convert(
    server: &InferenceServer,
    in_bucket: &str,
    in_key: &str,
    out_bucket: &str,
    out_key: &str,
    mode: StereoMode,
    ctx: &ConvertContext,
) -> Response {
    let root = server.work_root.clone();
    let dir = match tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&root)?;
        tempfile::Builder::new()
            .prefix("stereospot-invocation-")
            .tempdir_in(&root)
    })
    .await
    {
        Ok(Ok(dir)) => dir,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("work dir: {e}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("work dir: {e}")),
    };
    let input = dir.path().join("input.mp4");
    let output = dir.path().join("output.mp4");
    let result = async {
        match server.storage.get_to_file(in_bucket, in_key, &input).await {
            Ok(_) => {}
            Err(PlatformError::NotFound(what)) => {
                return Err(error(StatusCode::NOT_FOUND, format!("{what} not found")));
            }
            Err(e) => return Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        }
        server
            .backend
            .convert(&input, &output, mode, ctx)
            .await
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        server
            .storage
            .put_file(out_bucket, out_key, &output)
            .await
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok(())
    }
    .await;
    let _ = tokio::task::spawn_blocking(move || dir.close()).await;
    match result {
        Ok(()) => {
            tracing::info!(backend = server.backend.name(), "segment converted");
            axum::Json(serde_json::json!({"status": "ok"})).into_response()
        }
        Err(response) => {
            tracing::warn!(status = %response.status(), "invocation failed");
            response
        }
    }
}
