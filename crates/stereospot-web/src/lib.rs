//! StereoSpot's web UI and JSON API, written against the platform traits only
//! ([`stereospot_core::platform::Platform`]), so it runs unchanged on the local platform and on
//! AWS.
//!
//! Server-rendered pages (askama templates compiled into the binary), a little JavaScript
//! where it earns its place (upload progress, live progress over SSE, the ETA countdown, Web
//! Push), and JSON for scripts: `POST /jobs` and `GET /jobs/{id}` answer JSON when asked to.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | dashboard: create-job form, recent jobs |
//! | `GET /jobs` | jobs in progress, completed (paginated) and failed; deleted ones hidden |
//! | `POST /jobs` | create a job: form (303 to its page) or JSON (`{"job_id","upload_url"}`) |
//! | `GET /jobs/{id}` | upload form, live progress, or player and download (JSON with `Accept`) |
//! | `PATCH /jobs/{id}` | after an upload: title, `uploaded_at`, `source_file_size_bytes` |
//! | `POST /jobs/{id}/ingest-from-url` | queue a URL download (when ingest is enabled) |
//! | `GET /jobs/{id}/events` | SSE: the job's state now, then every change until a terminal state |
//! | `GET /jobs/{id}/play`, `/download` | redirect to a presigned URL (4 hours) |
//! | `POST /jobs/{id}/delete` | soft delete of a completed or failed job, cleanup queued |
//! | `GET /launch`, `/launch/{id}` | open in a 3D player (`pot3d://`), or the Linker, or M3U |
//! | `GET /playlist/{id}.m3u`, `/playlist.m3u` | M3U playlists of presigned URLs |
//! | `GET /setup/windows` (+ `.reg`, `.ps1`) | the Windows 3D Linker for this server |
//! | `GET /api/vapid-public-key`, `POST /api/push-subscriptions` | Web Push (HTTPS only) |
//! | `GET /healthz`, `GET /metrics` | health, Prometheus text |
//!
//! # Invariants
//!
//! - The web crate never spawns ffmpeg (or any process) and never reads or writes video bytes:
//!   uploads and downloads go to presigned URLs (served on the local platform by
//!   `stereospot-local`'s object routes, streaming to disk).
//! - A job id is parsed strictly before anything touches a store: a malformed id is a 404 at
//!   once, and a deleted job is as absent as an unknown one.
//! - Every state-changing request (POST, PATCH, DELETE, PUT) passes the cross-site check
//!   ([`security`]); user text is escaped by the templates and sanitised before it reaches a
//!   header or a playlist ([`text`]).
//! - Status changes go through [`stereospot_core::JobUpdate`] like everywhere else.

mod assets;
mod error;
mod eta;
pub mod events;
mod launch;
mod metrics_route;
mod pages;
pub mod push;
pub mod security;
pub mod text;
mod views;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use stereospot_core::UnixSeconds;
use stereospot_core::platform::Platform;

pub use error::WebError;
pub use push::{PushError, VapidKeys};

/// How long presigned playback and download URLs live (in-page player, M3U playlists).
pub const PLAYBACK_URL_TTL: Duration = Duration::from_secs(4 * 3600);
/// How long a presigned upload URL lives (it must be valid when the upload starts).
pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(3600);
/// Largest accepted form or JSON body of the web routes (uploads never pass through them).
pub const MAX_FORM_BYTES: usize = 64 << 10;

/// Settings of the web app.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Largest accepted upload in bytes; the page and `PATCH` refuse bigger files (413) and the
    /// local platform's PUT route is configured with the same limit.
    pub max_upload_bytes: u64,
    /// Whether `POST /jobs/{id}/ingest-from-url` is offered (an ingest worker must consume the
    /// ingest queue).
    pub ingest_enabled: bool,
    /// The address people reach this server at (`https://stereo.example`), used in the Windows
    /// handler script. When unset, the request's `Host` is used if it is a plain host name or
    /// address (anything else falls back to `fallback_base_url`).
    pub public_base_url: Option<String>,
    /// The listening address as a URL (`http://127.0.0.1:8080`).
    pub fallback_base_url: String,
    /// When set, every route but `/healthz` requires this token (bearer, basic password,
    /// cookie, or `?token=` once).
    pub access_token: Option<String>,
    /// VAPID keys for Web Push; push is off without them.
    pub vapid: Option<VapidKeys>,
    /// Lets push subscriptions use `http://` and loopback endpoints (tests only).
    pub push_allow_insecure_endpoints: bool,
    /// How long the average seconds per MB (ETA) is cached.
    pub eta_cache_ttl: Duration,
    /// How often a watched job is re-read for its SSE clients.
    pub sse_poll_interval: Duration,
    /// SSE keep-alive comment interval (proxies close idle streams at 30 to 60 s).
    pub sse_keep_alive: Duration,
    /// The Prometheus recorder's handle; `/metrics` renders it plus scrape-time gauges.
    pub metrics: Option<PrometheusHandle>,
}

impl WebConfig {
    /// Defaults for a server at `fallback_base_url`.
    pub fn new(fallback_base_url: impl Into<String>) -> Self {
        Self {
            max_upload_bytes: 5 << 30,
            ingest_enabled: false,
            public_base_url: None,
            fallback_base_url: fallback_base_url.into(),
            access_token: None,
            vapid: None,
            push_allow_insecure_endpoints: false,
            eta_cache_ttl: Duration::from_secs(60),
            sse_poll_interval: Duration::from_secs(1),
            sse_keep_alive: Duration::from_secs(15),
            metrics: None,
        }
    }
}

/// What every handler sees.
#[derive(Debug, Clone)]
pub struct AppState {
    pub platform: Platform,
    pub config: Arc<WebConfig>,
    pub(crate) eta: Arc<eta::EtaCache>,
    pub hub: Arc<events::Hub>,
    pub push: Arc<push::PushSender>,
}

impl AppState {
    pub fn new(platform: Platform, config: WebConfig) -> Self {
        let push = Arc::new(push::PushSender::new(&config));
        Self {
            eta: Arc::new(eta::EtaCache::new(config.eta_cache_ttl)),
            hub: Arc::new(events::Hub::default()),
            push,
            platform,
            config: Arc::new(config),
        }
    }
}

/// The web app's routes. Merge the platform's object routes (local) beside it.
pub fn router(state: AppState) -> Router {
    let job_routes = Router::new()
        .route("/jobs", get(pages::jobs_list).post(pages::create_job))
        .route("/jobs/{id}", get(pages::job_detail).patch(pages::patch_job))
        .route("/jobs/{id}/events", get(events::job_events))
        .route("/jobs/{id}/play", get(pages::play))
        .route("/jobs/{id}/download", get(pages::download))
        .route("/jobs/{id}/delete", post(pages::delete_job))
        .route("/jobs/{id}/ingest-from-url", post(pages::ingest_from_url));
    Router::new()
        .route("/", get(pages::dashboard))
        .merge(job_routes)
        .route("/launch", get(launch::launch_all))
        .route("/launch/{id}", get(launch::launch_job))
        .route("/playlist.m3u", get(launch::playlist_all))
        .route("/playlist/{file}", get(launch::playlist_job))
        .route("/setup/windows", get(launch::setup_windows))
        .route("/setup/windows/{file}", get(launch::setup_windows_file))
        .route("/api/vapid-public-key", get(push::vapid_public_key))
        .route("/api/push-subscriptions", post(push::subscribe))
        .route("/metrics", get(metrics_route::metrics))
        .route("/healthz", get(metrics_route::healthz))
        .merge(assets::router())
        .fallback(pages::not_found)
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::guard,
        ))
        .with_state(state)
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> UnixSeconds {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
