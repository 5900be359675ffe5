//! Poison inputs end `failed` with a readable reason, once, quickly, while other jobs flow.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use stereospot_core::{JobStatus, StereoMode};
use stereospot_workers::{BackendError, ConvertContext, InferenceBackend, Outcome, WorkerConfig};

use crate::helpers::*;

fn noise(len: usize) -> Vec<u8> {
    // xorshift: deterministic bytes that are nothing in particular.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_fail_with_readable_reasons_and_good_jobs_keep_flowing() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let real = std::fs::read(video("realshort.mp4")).unwrap();
    let cases = [
        ("empty.mp4", write("empty.mp4", b""), "empty_file"),
        ("noise.mp4", write("noise.mp4", &noise(200_000)), "not_media"),
        (
            "page.mp4",
            write(
                "page.mp4",
                b"<!DOCTYPE html><html><head><title>Not found</title></head><body>404</body></html>",
            ),
            "not_media",
        ),
        (
            "truncated.mp4",
            write("truncated.mp4", &real[..real.len() / 2]),
            "corrupt",
        ),
    ];
    let good = env
        .submit(&video("realshort.mp4"), StereoMode::Anaglyph)
        .await;
    let mut bad = Vec::new();
    for (name, path, code) in &cases {
        bad.push((*name, env.submit(path, StereoMode::Anaglyph).await, *code));
    }

    let started = Instant::now();
    let log = env.pump().await;
    let elapsed = started.elapsed();

    for (name, id, code) in &bad {
        let job = env.job(*id).await;
        assert_status(&job, JobStatus::Failed);
        let error = job.error.clone().expect("a failed job has a reason");
        assert_eq!(error.code, *code, "{name}: {error:?}");
        assert!(
            error.message.len() > 10 && !error.message.ends_with('.'),
            "{name}: {error:?}"
        );
        assert!(error.message.starts_with("the file"), "{name}: {error:?}");
        // Handled once: no retry loop.
        let handled = log
            .iter()
            .filter(|(w, o)| {
                *w == "chunking" && matches!(o, Outcome::JobFailed { job_id, .. } if job_id == id)
            })
            .count();
        assert_eq!(handled, 1, "{name}: {log:?}");
        assert!(
            env.job_objects(*id)
                .await
                .iter()
                .all(|k| k.starts_with("input/"))
        );
    }
    assert_status(&env.job(good).await, JobStatus::Completed);
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    assert_eq!(env.queued().await, 0, "no message left behind: {log:?}");
    env.assert_clean();
}

/// Fails every conversion: the machine's trouble, not the input's.
#[derive(Debug)]
struct Broken;

#[async_trait]
impl InferenceBackend for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }
    async fn convert(
        &self,
        _: &Path,
        _: &Path,
        _: StereoMode,
        _: &ConvertContext,
    ) -> Result<(), BackendError> {
        Err(BackendError::Engine("out of GPU memory".into()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_keeps_failing_fails_the_job_after_the_last_attempt() {
    let env = env_with(Options {
        backend: Arc::new(Broken),
        config: Box::new(|c: &mut WorkerConfig| c.max_attempts = 3),
        ..Options::default()
    })
    .await;
    let id = env.submit(&video("realshort.mp4"), StereoMode::Sbs).await;
    let log = env
        .pump_until_finished(&[id], Duration::from_secs(60))
        .await;
    let job = env.job(id).await;
    assert_status(&job, JobStatus::Failed);
    let error = job.error.unwrap();
    assert_eq!(error.code, "inference_failed");
    assert!(error.message.contains("out of GPU memory"), "{error:?}");
    assert!(error.message.contains("3 times"), "{error:?}");
    // Two retries, then the give-up.
    let retries = count(&log, "inference", |o| matches!(o, Outcome::Retry { .. }));
    assert_eq!(retries, 2, "{log:?}");
    assert_eq!(
        count(&log, "inference", |o| matches!(
            o,
            Outcome::JobFailed { .. }
        )),
        1
    );
    assert_eq!(env.queued().await, 0);
}
