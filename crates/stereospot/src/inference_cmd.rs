//! `stereospot inference-server`: the spec's inference container on this machine. Serves
//! `GET /ping` and `POST /invocations` (the contract in
//! `stereospot_workers::inference_server`) with the in-process engine (`local`, default) or the
//! `stub` copy, reading segments from and writing outputs to the local platform's object store
//! (the data directory `serve` and the workers use). Video workers reach it with
//! `INFERENCE_BACKEND=http` and `INFERENCE_HTTP_URL=http://ADDR`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use stereospot_core::config::Settings;
use stereospot_local::LocalPlatform;
use stereospot_workers::inference_server::{InferenceServer, router};
use stereospot_workers::{InferenceBackend, StubBackend};
use tokio::net::TcpListener;

use crate::model_args::ModelArgs;

/// The engine behind the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServerBackendArg {
    /// The in-process stereo engine, with the depth-model flags
    Local,
    /// Copies the segment unchanged (pipeline tests)
    Stub,
}

#[derive(Debug, clap::Args)]
pub struct InferenceServerArgs {
    /// Data directory of the local platform whose object store holds the segments
    #[arg(long, env = "STEREOSPOT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on; 127.0.0.1 unless you mean to expose it
    #[arg(
        long,
        env = "STEREOSPOT_INFERENCE_BIND",
        default_value = "127.0.0.1:8081"
    )]
    pub bind: SocketAddr,
    /// What converts the segments
    #[arg(
        long,
        value_enum,
        env = "INFERENCE_SERVER_BACKEND",
        default_value = "local"
    )]
    pub backend: ServerBackendArg,
    /// Where per-request work directories go (default: the system temp dir)
    #[arg(long, env = "STEREOSPOT_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// The depth model of the in-process engine (`--backend local`)
    #[command(flatten)]
    pub model: ModelArgs,
}

/// A running inference server.
#[derive(Debug)]
pub struct RunningInferenceServer {
    pub addr: SocketAddr,
    pub local: Arc<LocalPlatform>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningInferenceServer {
    /// Stops accepting, lets in-flight invocations finish and waits.
    pub async fn stop(self) -> Result<()> {
        let _ = self.shutdown.send(());
        self.task
            .await
            .context("inference server task panicked")??;
        Ok(())
    }
}

/// Opens the platform and serves the contract on `listener` (tests pass a port-0 listener).
pub async fn start(
    settings: &Settings,
    args: &InferenceServerArgs,
    listener: TcpListener,
) -> Result<RunningInferenceServer> {
    crate::config::require_local(settings)?;
    let data_dir = crate::config::data_dir(settings, args.data_dir.clone())?;
    let addr = listener.local_addr().context("listener has no address")?;
    let local =
        Arc::new(crate::config::open_local(settings, &data_dir, &format!("http://{addr}")).await?);
    let backend: Arc<dyn InferenceBackend> = match args.backend {
        ServerBackendArg::Local => crate::workers::local_engine_backend(&args.model),
        ServerBackendArg::Stub => Arc::new(StubBackend),
    };
    let app = router(InferenceServer {
        storage: local.platform.storage.clone(),
        backend,
        work_root: args.work_dir.clone().unwrap_or_else(std::env::temp_dir),
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    tracing::info!(%addr, backend = ?args.backend, data_dir = %data_dir.display(), "inference server listening");
    Ok(RunningInferenceServer {
        addr,
        local,
        shutdown: tx,
        task,
    })
}

/// Runs until Ctrl-C or SIGTERM; in-flight invocations finish first.
pub async fn run(settings: Settings, args: InferenceServerArgs) -> Result<()> {
    let listener = TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let server = start(&settings, &args, listener).await?;
    println!("StereoSpot inference server at http://{}", server.addr);
    crate::serve::shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight invocations");
    server.stop().await
}
