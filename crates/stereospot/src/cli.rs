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
}

pub async fn run(cli: Cli) -> Result<()> {
    // Loads STEREOSPOT_ENV_FILE too, so WEIGHTS_DIR and friends can live there.
    let settings = crate::config::load()?;
    match cli.command {
        Command::Serve(args) => crate::serve::run(settings, args).await,
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
