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

/// The seam for the in-process engine: until it exists, asking for it is a clear error.
#[tokio::test]
async fn local_backend_is_refused_until_the_engine_lands() {
    let app = crate::helpers::spawn_app().await;
    let config = stereospot_workers::WorkerConfig {
        backend: stereospot_workers::BackendKind::Local,
        ..stereospot_workers::WorkerConfig::default()
    };
    let err =
        stereospot::workers::video_worker(app.server.local.platform.clone(), config).unwrap_err();
    assert!(format!("{err:#}").contains("local"), "{err:#}");
    app.server.stop().await.expect("clean stop");
}

/// Both workers embedded next to the server: a presigned upload becomes a completed job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_workers_complete_an_uploaded_job() {
    use std::time::Duration;
    use stereospot_core::platform::PresignOptions;
    use stereospot_core::{Job, JobId, JobStatus, ObjectKey, StereoMode};

    let app = crate::helpers::spawn_app().await;
    let platform = app.server.local.platform.clone();
    let work = tempfile::tempdir().unwrap();
    let config = stereospot_workers::WorkerConfig {
        receive_wait: Duration::from_millis(500),
        work_root: work.path().to_path_buf(),
        ..stereospot_workers::WorkerConfig::default()
    };
    let shutdown = stereospot_workers::CancellationToken::new();
    let workers =
        stereospot::workers::spawn_embedded(platform.clone(), config, shutdown.clone()).unwrap();

    let job_id = JobId::from_parts(1_700_000_000_000, [9; 10]);
    platform
        .jobs
        .create(&Job::new(job_id, StereoMode::Anaglyph, 0))
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
    shutdown.cancel();
    workers.await.unwrap();
    app.server.stop().await.expect("clean stop");
}
