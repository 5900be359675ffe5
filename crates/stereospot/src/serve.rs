//! `stereospot serve`: the embedded default. Opens the local platform in one data directory
//! and serves HTTP: the web UI and JSON API (`stereospot-web`, with `/healthz` and `/metrics`)
//! and the presigned object URLs of the local platform. `run` also starts the media and video
//! workers in this process (unless `--no-workers`; `stereospot web` is the same without them).
//!
//! The server binds to 127.0.0.1 by default; any other address needs an access token, so the
//! UI is never exposed without one by accident.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use stereospot_core::config::Settings;
use stereospot_local::LocalPlatform;
use stereospot_local::http::ObjectRoutesConfig;
use stereospot_web::{AppState, VapidKeys, WebConfig};
use tokio::net::TcpListener;

use crate::cli::{ServeArgs, WebArgs};

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub local: Arc<LocalPlatform>,
    pub web: AppState,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    notifier: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Stops accepting, finishes in-flight requests and waits.
    pub async fn stop(self) -> Result<()> {
        let _ = self.shutdown.send(());
        if let Some(n) = self.notifier {
            n.abort();
        }
        self.task.await.context("server task panicked")??;
        Ok(())
    }
}

/// Refuses to listen beyond loopback without an access token.
pub fn check_bind(addr: SocketAddr, access_token: Option<&str>) -> Result<()> {
    let token = access_token.filter(|t| !t.trim().is_empty());
    if !addr.ip().is_loopback() && token.is_none() {
        bail!(
            "refusing to listen on {addr} without an access token: set STEREOSPOT_ACCESS_TOKEN (or --access-token), or bind to 127.0.0.1"
        );
    }
    if token.is_some_and(|t| t.len() < 16) {
        bail!("the access token must be at least 16 characters long");
    }
    Ok(())
}

/// The web app's settings from the flags.
pub fn web_config(args: &WebArgs, base_url: &str) -> Result<WebConfig> {
    let mut config = WebConfig::new(base_url);
    config.max_upload_bytes = args.max_upload_bytes;
    config.ingest_enabled = args.ingest;
    config.public_base_url = args.public_url.clone();
    config.access_token = args.access_token.clone().filter(|t| !t.trim().is_empty());
    config.vapid = match (&args.vapid_private_key, &args.vapid_subject) {
        (Some(key), Some(subject)) => Some(
            VapidKeys::from_base64url(key, subject).context("VAPID_PRIVATE_KEY/VAPID_SUBJECT")?,
        ),
        (Some(_), None) => bail!("VAPID_PRIVATE_KEY needs VAPID_SUBJECT (mailto: or https:)"),
        _ => None,
    };
    config.metrics = Some(crate::telemetry::metrics_handle());
    Ok(config)
}

/// Opens the platform and starts serving on `listener` (tests pass a port-0 listener).
pub async fn start(settings: &Settings, args: &ServeArgs, listener: TcpListener) -> Result<Server> {
    crate::config::require_local(settings)?;
    let addr = listener.local_addr().context("listener has no address")?;
    check_bind(addr, args.web.access_token.as_deref())?;
    let data_dir = crate::config::data_dir(settings, args.data_dir.clone())?;
    let listen_url = format!("http://{addr}");
    let base_url = match &args.web.public_url {
        Some(url) => stereospot_web::text::safe_base_url(url).with_context(|| {
            format!("STEREOSPOT_PUBLIC_URL={url:?} must be http(s)://host[:port]")
        })?,
        None => listen_url.clone(),
    };
    let local = Arc::new(crate::config::open_local(settings, &data_dir, &base_url).await?);
    let web = AppState::new(local.platform.clone(), web_config(&args.web, &listen_url)?);
    let objects = stereospot_local::http::router_with_config(
        local.storage.clone(),
        ObjectRoutesConfig {
            max_put_bytes: args.web.max_upload_bytes,
        },
    );
    let app = stereospot_web::router(web.clone()).merge(objects);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    let notifier = web.config.vapid.is_some().then(|| {
        stereospot_web::push::spawn_notifier(
            web.clone(),
            std::time::Duration::from_secs(5),
            std::future::pending(),
        )
    });
    tracing::info!(%addr, data_dir = %data_dir.display(), "stereospot serving");
    Ok(Server {
        addr,
        local,
        web,
        shutdown: tx,
        task,
        notifier,
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
