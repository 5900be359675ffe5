//! `stereospot serve`: the embedded default. Opens the local platform in one data directory
//! and serves HTTP: the health endpoint and the presigned object URLs of the local platform.
//! `run` also starts the media and video workers in this process (unless `--no-workers`). (The
//! web UI joins this process in its own issue.)

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use stereospot_core::config::Settings;
use stereospot_core::platform::{JobListKind, PageRequest, Platform};
use stereospot_local::LocalPlatform;
use tokio::net::TcpListener;

use crate::cli::ServeArgs;

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub local: Arc<LocalPlatform>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Stops accepting, finishes in-flight requests and waits.
    pub async fn stop(self) -> Result<()> {
        let _ = self.shutdown.send(());
        self.task.await.context("server task panicked")??;
        Ok(())
    }
}

/// Opens the platform and starts serving on `listener` (tests pass a port-0 listener).
pub async fn start(settings: &Settings, args: &ServeArgs, listener: TcpListener) -> Result<Server> {
    crate::config::require_local(settings)?;
    let data_dir = crate::config::data_dir(settings, args.data_dir.clone())?;
    let addr = listener.local_addr().context("listener has no address")?;
    let base_url = format!("http://{addr}");
    let local = Arc::new(crate::config::open_local(settings, &data_dir, &base_url).await?);
    let app = router(local.platform.clone()).merge(local.objects_router());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    tracing::info!(%addr, data_dir = %data_dir.display(), "stereospot serving");
    Ok(Server {
        addr,
        local,
        shutdown: tx,
        task,
    })
}

/// Runs until Ctrl-C or SIGTERM.
pub async fn run(settings: Settings, args: ServeArgs) -> Result<()> {
    let listener = TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let server = start(&settings, &args, listener).await?;
    let shutdown = stereospot_workers::CancellationToken::new();
    let workers = if args.no_workers {
        None
    } else {
        let config = crate::workers::worker_config()?;
        tracing::info!(backend = ?config.backend, depth = ?args.model.depth, "starting the embedded workers");
        Some(crate::workers::spawn_embedded(
            server.local.platform.clone(),
            config,
            &args.model,
            shutdown.clone(),
        )?)
    };
    println!("StereoSpot is running at http://{}", server.addr);
    shutdown_signal().await;
    tracing::info!("shutting down: in-flight work finishes or its messages become visible again");
    shutdown.cancel();
    if let Some(w) = workers {
        w.await.context("the workers panicked")?;
    }
    server.stop().await
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// The routes this process owns.
pub fn router(platform: Platform) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(platform)
}

/// 200 when the job store answers, 503 otherwise.
async fn healthz(State(platform): State<Platform>) -> impl IntoResponse {
    match platform
        .jobs
        .list(JobListKind::InProgress, PageRequest::first(1))
        .await
    {
        Ok(_) => (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable", "error": e.to_string()})),
            )
        }
    }
}
