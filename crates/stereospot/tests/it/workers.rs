use clap::Parser;
use stereospot::cli::{Cli, Command};

#[test]
fn worker_subcommands_parse() {
    let cli = Cli::try_parse_from(["stereospot", "media-worker", "--data-dir", "/tmp/x"]).unwrap();
    assert!(
        matches!(cli.command, Command::MediaWorker(a) if a.data_dir.as_deref() == Some(std::path::Path::new("/tmp/x")))
    );
    let cli = Cli::try_parse_from(["stereospot", "video-worker"]).unwrap();
    assert!(matches!(cli.command, Command::VideoWorker(_)));
}

/// The binary's default backend is the in-process engine; SageMaker is refused clearly.
#[test]
fn default_backend_is_the_local_engine() {
    let config = stereospot::workers::worker_config().unwrap();
    if std::env::var_os("INFERENCE_BACKEND").is_none() {
        assert_eq!(config.backend, stereospot_workers::BackendKind::Local);
    }
}

pub(crate) fn fast_model() -> stereospot::model_args::ModelArgs {
    let cli = Cli::try_parse_from(["stereospot", "video-worker", "--depth", "fast"]).unwrap();
    match cli.command {
        Command::VideoWorker(a) => a.model,
        other => panic!("{other:?}"),
    }
}

/// Both workers embedded next to the server, with the in-process engine (fast depth): a
/// presigned upload of a side-by-side job becomes a completed job with a double-width video, the
/// source's frame count and its audio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_workers_complete_an_uploaded_job() {
    use std::time::Duration;
    use stereospot_core::platform::PresignOptions;
    use stereospot_core::{Job, JobId, JobStatus, ObjectKey, StereoMode};

    let app = crate::helpers::spawn_app().await;
    let platform = app.server.local.platform.clone();
    let work = tempfile::tempdir().unwrap();
    let config = stereospot_workers::WorkerConfig {
        backend: stereospot_workers::BackendKind::Local,
        receive_wait: Duration::from_millis(500),
        work_root: work.path().to_path_buf(),
        ..stereospot_workers::WorkerConfig::default()
    };
    let shutdown = stereospot_workers::CancellationToken::new();
    let workers = stereospot::workers::spawn_embedded(
        platform.clone(),
        config,
        &fast_model(),
        shutdown.clone(),
    )
    .unwrap();

    let job_id = JobId::from_parts(1_700_000_000_000, [9; 10]);
    platform
        .jobs
        .create(&Job::new(job_id, StereoMode::Sbs, 0))
        .await
        .unwrap();
    let url = platform
        .storage
        .presign_put(
            &platform.buckets.input,
            &ObjectKey::source(job_id).to_string(),
            &PresignOptions::expires_in(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let video = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/video/realshort.mp4"
    ))
    .unwrap();
    let res = reqwest::Client::new()
        .put(url)
        .body(video)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());

    let start = std::time::Instant::now();
    // No signal exists for "job finished"; the status is polled.
    loop {
        let job = platform.jobs.get(job_id).await.unwrap().unwrap();
        if job.status.is_terminal() {
            assert_eq!(job.status, JobStatus::Completed, "{job:?}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fin = platform
        .storage
        .head(
            &platform.buckets.output,
            &ObjectKey::final_output(job_id).to_string(),
        )
        .await
        .unwrap();
    assert!(fin.is_some());
    let out = work.path().join("final.mp4");
    platform
        .storage
        .get_to_file(
            &platform.buckets.output,
            &ObjectKey::final_output(job_id).to_string(),
            &out,
        )
        .await
        .unwrap();
    let probe = stereospot_media::Media::default()
        .probe(&out)
        .await
        .unwrap();
    let v = probe.video.as_ref().unwrap();
    assert_eq!((v.width, v.height), (640, 240), "sbs doubles the width");
    assert_eq!(probe.audio.len(), 1, "the source's audio is kept");
    shutdown.cancel();
    workers.await.unwrap();
    app.server.stop().await.expect("clean stop");
}
