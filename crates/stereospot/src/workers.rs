//! `stereospot media-worker` and `stereospot video-worker`: the pipeline's worker processes on
//! the local platform (the data directory `serve` uses; queues in SQLite are shared between
//! processes), until Ctrl-C or SIGTERM. Settings come from the spec's environment variables
//! (`INFERENCE_BACKEND`, `INFERENCE_HTTP_URL`, `INFERENCE_MAX_IN_FLIGHT`, ...; see
//! `stereospot_workers::config`). The media worker runs four loops: URL ingest (yt-dlp behind
//! the filtering proxy; `MAX_VIDEO_HEIGHT`, `INGEST_*`, `YT_DLP_PATH`), chunking, reassembly
//! and deletion.

use std::path::PathBuf;
use std::sync::Arc;

use crate::engine_backend::{EngineAnalyzer, LocalEngineBackend};
use crate::model_args::ModelArgs;
use anyhow::{Context, Result};
use stereospot_core::config::Settings;
use stereospot_core::platform::Platform;
use stereospot_local::LocalPlatform;
use stereospot_media::{EncodeOptions, Media};
use stereospot_workers::{
    BackendKind, CancellationToken, InferenceBackend, MediaWorker, SourceAnalyzer, VideoWorker,
    WorkerConfig, WorkerContext, backend_from_config,
};

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Data directory of the local platform (the one `serve` uses)
    #[arg(long, env = "STEREOSPOT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The depth model of the in-process engine (`INFERENCE_BACKEND=local`)
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Reads the worker settings from the environment. The binary's default backend is the
/// in-process engine (`local`); `INFERENCE_BACKEND` chooses another. Unless
/// `INFERENCE_MAX_IN_FLIGHT` says otherwise, the number of segments converted at once is sized
/// to the machine ([`default_max_in_flight`]).
pub fn worker_config() -> Result<WorkerConfig> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut config = WorkerConfig::from_lookup(|k| {
        std::env::var(k)
            .ok()
            .or_else(|| (k == "INFERENCE_BACKEND").then(|| "local".to_string()))
    })?;
    if std::env::var_os("INFERENCE_MAX_IN_FLIGHT").is_none() {
        config.inference_max_in_flight = default_max_in_flight(config.backend, cores);
    }
    Ok(config)
}

/// Segments converted at once when `INFERENCE_MAX_IN_FLIGHT` is unset, on a machine with
/// `cores` cores. One in-process conversion already spreads depth, synthesis and x264 over
/// every core, but its decode, encode and hand-offs leave some idle: one more conversion per
/// 4 cores fills them without multiplying memory (a model session and a few frames each).
/// Remote backends do their work elsewhere, so a few requests wait on them at once.
pub fn default_max_in_flight(backend: BackendKind, cores: usize) -> usize {
    match backend {
        BackendKind::Local => (cores / 4).max(1),
        _ => 4,
    }
}

/// The in-process stereo engine for `INFERENCE_BACKEND=local`, with `model`'s depth estimator
/// (loaded on the first segment).
pub fn local_engine_backend(model: &ModelArgs) -> Arc<dyn InferenceBackend> {
    Arc::new(LocalEngineBackend::new(
        model.clone(),
        Media::default(),
        EncodeOptions::default(),
    ))
}

async fn open(settings: &Settings, args: &WorkerArgs) -> Result<LocalPlatform> {
    crate::config::require_local(settings)?;
    let data_dir = crate::config::data_dir(settings, args.data_dir.clone())?;
    // Workers never presign URLs; the base URL only matters to the process that serves them.
    crate::config::open_local(settings, &data_dir, "http://127.0.0.1:8080").await
}

/// The media worker's loops on `platform` (ingest, chunking, reassembly, deletion). With the
/// in-process engine as the backend (`INFERENCE_BACKEND=local`), chunking also computes the
/// job's depth statistics with `model` (the same estimator the video workers use), so segments
/// join without depth jumps.
pub fn media_worker(platform: Platform, config: WorkerConfig, model: &ModelArgs) -> MediaWorker {
    let ingest = &config.ingest;
    let yt_dlp = stereospot_media::ingest::find_yt_dlp(ingest.yt_dlp.as_deref());
    tracing::info!(
        yt_dlp = %yt_dlp.display(),
        max_height = ingest.max_height,
        max_bytes = ingest.max_file_size,
        max_seconds = ingest.max_duration.as_secs(),
        "URL ingest settings"
    );
    if ingest.policy.allow_loopback {
        tracing::warn!(
            "INGEST_ALLOW_LOOPBACK is on: URL ingest may reach services on this machine (meant for tests)"
        );
    }
    let analyzer: Option<Arc<dyn SourceAnalyzer>> = (config.backend == BackendKind::Local)
        .then(|| Arc::new(EngineAnalyzer::new(model.clone(), Media::default())) as _);
    MediaWorker::with_analyzer(
        WorkerContext::new(platform, config),
        Media::default(),
        analyzer,
    )
}

/// The video worker's loops on `platform`, with the configured inference backend.
pub fn video_worker(
    platform: Platform,
    config: WorkerConfig,
    model: &ModelArgs,
) -> Result<VideoWorker> {
    let backend = backend_from_config(&config, Some(local_engine_backend(model)))
        .context("cannot set up the inference backend (INFERENCE_BACKEND)")?;
    Ok(VideoWorker::new(
        WorkerContext::new(platform, config),
        backend,
    ))
}

/// Starts both workers in this process (what `serve` needs to run the whole pipeline); they
/// stop when `shutdown` is cancelled, and the returned task ends when they have.
pub fn spawn_embedded(
    platform: Platform,
    config: WorkerConfig,
    model: &ModelArgs,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    let media = media_worker(platform.clone(), config.clone(), model);
    let video = video_worker(platform, config, model)?;
    Ok(tokio::spawn(async move {
        tokio::join!(media.run(shutdown.clone()), video.run(shutdown));
    }))
}

pub async fn run_media_worker(settings: Settings, args: WorkerArgs) -> Result<()> {
    let config = worker_config()?;
    let local = open(&settings, &args).await?;
    let worker = media_worker(local.platform.clone(), config, &args.model);
    run_until_signal(|shutdown| worker.run(shutdown)).await
}

pub async fn run_video_worker(settings: Settings, args: WorkerArgs) -> Result<()> {
    let config = worker_config()?;
    let local = open(&settings, &args).await?;
    let worker = video_worker(local.platform.clone(), config, &args.model)?;
    run_until_signal(|shutdown| worker.run(shutdown)).await
}

async fn run_until_signal<F, Fut>(run: F) -> Result<()>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        crate::serve::shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight work");
        signal.cancel();
    });
    run(shutdown).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_segments_follow_the_machine_for_the_local_engine() {
        assert_eq!(default_max_in_flight(BackendKind::Local, 1), 1);
        assert_eq!(default_max_in_flight(BackendKind::Local, 2), 1);
        assert_eq!(default_max_in_flight(BackendKind::Local, 8), 2);
        assert_eq!(default_max_in_flight(BackendKind::Local, 16), 4);
        assert_eq!(default_max_in_flight(BackendKind::Http, 2), 4);
    }
}
