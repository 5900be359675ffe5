//! Subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "stereospot",
    version,
    about = "Turn ordinary 2D video into stereoscopic 3D"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything in one process on the local platform (the embedded default)
    Serve(ServeArgs),
    /// Serve the web UI and API only (as `serve --no-workers`); workers run elsewhere
    Web(ServeArgs),
    /// Run the media worker: chunking, reassembly and deletion
    MediaWorker(crate::workers::WorkerArgs),
    /// Run the video worker: segment inference and segment output
    VideoWorker(crate::workers::WorkerArgs),
    /// Serve the inference contract (`GET /ping`, `POST /invocations`) for `INFERENCE_BACKEND=http`
    InferenceServer(crate::inference_cmd::InferenceServerArgs),
    /// Write the tensor the depth model receives for an image (.npy, 1 x 3 x H x W float32)
    DepthPreprocess(crate::depth_cmd::DepthPreprocessArgs),
    /// Run a depth model's bare forward pass on a .npy tensor (output N x H x W float32)
    DepthForward(crate::depth_cmd::DepthForwardArgs),
    /// Convert one video to stereoscopic 3D (no server), with a progress bar
    Convert(crate::convert_cmd::ConvertArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Data directory (SQLite database, objects, signing secret)
    #[arg(long, env = "STEREOSPOT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on; 127.0.0.1 unless you mean to expose it
    #[arg(long, env = "STEREOSPOT_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Serve HTTP only: run the media and video workers in other processes
    /// (`stereospot media-worker`, `stereospot video-worker`)
    #[arg(long, env = "STEREOSPOT_NO_WORKERS")]
    pub no_workers: bool,
    /// The embedded video worker's depth model (`INFERENCE_BACKEND=local`, the default)
    #[command(flatten)]
    pub model: crate::model_args::ModelArgs,
    /// Web UI settings
    #[command(flatten)]
    pub web: WebArgs,
}

/// Settings of the web UI and API.
#[derive(Debug, Clone, clap::Args)]
pub struct WebArgs {
    /// Access token every request must carry (bearer, basic password, cookie, or `?token=`
    /// once); required when binding to anything but a loopback address
    #[arg(long, env = "STEREOSPOT_ACCESS_TOKEN", hide_env_values = true)]
    pub access_token: Option<String>,
    /// The address people reach this server at (`https://stereo.example`): presigned URLs and
    /// the Windows 3D Linker use it (default: the listening address)
    #[arg(long, env = "STEREOSPOT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Largest accepted upload in bytes (413 beyond it)
    #[arg(long, env = "STEREOSPOT_MAX_UPLOAD_BYTES", default_value_t = 5 << 30)]
    pub max_upload_bytes: u64,
    /// Offer "From a URL" on job pages (the media worker's ingest loop downloads it with
    /// yt-dlp); `--ingest false` hides it
    #[arg(long, env = "STEREOSPOT_INGEST", default_value_t = true, action = clap::ArgAction::Set)]
    pub ingest: bool,
    /// Web Push VAPID private key: base64url of the 32-byte P-256 scalar
    #[arg(long, env = "VAPID_PRIVATE_KEY", hide_env_values = true)]
    pub vapid_private_key: Option<String>,
    /// Web Push contact, `mailto:` or `https:` (required with a VAPID key)
    #[arg(long, env = "VAPID_SUBJECT")]
    pub vapid_subject: Option<String>,
}

impl Default for WebArgs {
    fn default() -> Self {
        Self {
            access_token: None,
            public_url: None,
            max_upload_bytes: 5 << 30,
            ingest: true,
            vapid_private_key: None,
            vapid_subject: None,
        }
    }
}

pub async fn run(cli: Cli) -> Result<()> {
    // Loads STEREOSPOT_ENV_FILE too, so WEIGHTS_DIR and friends can live there.
    let settings = crate::config::load()?;
    match cli.command {
        Command::Serve(args) => crate::serve::run(settings, args).await,
        Command::Web(mut args) => {
            args.no_workers = true;
            crate::serve::run(settings, args).await
        }
        Command::MediaWorker(args) => crate::workers::run_media_worker(settings, args).await,
        Command::VideoWorker(args) => crate::workers::run_video_worker(settings, args).await,
        Command::InferenceServer(args) => crate::inference_cmd::run(settings, args).await,
        Command::DepthPreprocess(args) => {
            tokio::task::spawn_blocking(move || crate::depth_cmd::run_preprocess(&args)).await?
        }
        Command::DepthForward(args) => {
            tokio::task::spawn_blocking(move || crate::depth_cmd::run_forward(&args)).await?
        }
        Command::Convert(args) => crate::convert_cmd::run(args).await,
    }
}
