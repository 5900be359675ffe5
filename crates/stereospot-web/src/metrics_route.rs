//! `GET /healthz` and `GET /metrics` (Prometheus text format).
//!
//! `/metrics` renders the process's recorder (the binary installs it once; the workers'
//! histograms and counters appear through it) and adds gauges read at scrape time:
//! `stereospot_jobs{status}` from the job store and
//! `stereospot_queue_messages{queue,state="visible"|"in_flight"}` from the queues.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use stereospot_core::JobStatus;
use stereospot_core::platform::{JobListKind, PageRequest, Platform};

use crate::AppState;
use crate::error::WebError;

/// 200 when the job store answers, 503 otherwise.
pub(crate) async fn healthz(State(state): State<AppState>) -> Response {
    match state
        .platform
        .jobs
        .list(JobListKind::InProgress, PageRequest::first(1))
        .await
    {
        Ok(_) => (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable", "error": e.to_string()})),
            )
                .into_response()
        }
    }
}

/// Jobs per status (deleted ones are not listed by the store, so not counted).
async fn job_counts(platform: &Platform) -> Result<BTreeMap<&'static str, u64>, WebError> {
    let mut counts: BTreeMap<&'static str, u64> = JobStatus::ALL
        .iter()
        .filter(|s| **s != JobStatus::Deleted)
        .map(|s| (s.as_str(), 0))
        .collect();
    for kind in [
        JobListKind::InProgress,
        JobListKind::Completed,
        JobListKind::Failed,
    ] {
        let mut cursor = None;
        loop {
            let page = platform
                .jobs
                .list(kind, PageRequest { limit: 500, cursor })
                .await?;
            for job in &page.items {
                *counts.entry(job.status.as_str()).or_default() += 1;
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    Ok(counts)
}

/// Escapes a label value (backslash, quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, WebError> {
    let mut out = String::new();
    if let Some(handle) = &state.config.metrics {
        handle.run_upkeep();
        out.push_str(&handle.render());
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
    }
    let counts = job_counts(&state.platform).await?;
    out.push_str("# HELP stereospot_jobs Jobs by status (deleted jobs are not counted)\n");
    out.push_str("# TYPE stereospot_jobs gauge\n");
    for (status, n) in &counts {
        let _ = writeln!(out, "stereospot_jobs{{status=\"{status}\"}} {n}");
    }
    let q = &state.platform.queues;
    let queues = [
        &q.chunking,
        &q.video_worker,
        &q.segment_output,
        &q.reassembly,
        &q.deletion,
        &q.ingest,
    ];
    out.push_str("# HELP stereospot_queue_messages Messages in a pipeline queue\n");
    out.push_str("# TYPE stereospot_queue_messages gauge\n");
    for queue in queues {
        let depth = queue.depth().await?;
        let name = label(queue.name());
        let _ = writeln!(
            out,
            "stereospot_queue_messages{{queue=\"{name}\",state=\"visible\"}} {}",
            depth.visible
        );
        let _ = writeln!(
            out,
            "stereospot_queue_messages{{queue=\"{name}\",state=\"in_flight\"}} {}",
            depth.in_flight
        );
    }
    let _ = writeln!(
        out,
        "# HELP stereospot_sse_watched_jobs Jobs with live progress clients\n# TYPE stereospot_sse_watched_jobs gauge\nstereospot_sse_watched_jobs {}",
        state.hub.watched_jobs()
    );
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
