//! Poison inputs end `failed` with a readable reason, once, quickly, while other jobs flow.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use stereospot_core::platform::{Message, PlatformError, Queue, QueueDepth, ReceiveOptions};
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

/// Counts the messages a queue delivers.
#[derive(Debug)]
struct CountingReceives {
    inner: Arc<dyn Queue>,
    delivered: Arc<AtomicUsize>,
}

#[async_trait]
impl Queue for CountingReceives {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn send(&self, body: &str) -> Result<String, PlatformError> {
        self.inner.send(body).await
    }
    async fn send_batch(&self, bodies: &[String]) -> Result<Vec<String>, PlatformError> {
        self.inner.send_batch(bodies).await
    }
    async fn receive(&self, options: &ReceiveOptions) -> Result<Vec<Message>, PlatformError> {
        let got = self.inner.receive(options).await?;
        self.delivered.fetch_add(got.len(), Ordering::SeqCst);
        Ok(got)
    }
    async fn delete(&self, receipt: &str) -> Result<(), PlatformError> {
        self.inner.delete(receipt).await
    }
    async fn change_visibility(&self, receipt: &str, t: Duration) -> Result<(), PlatformError> {
        self.inner.change_visibility(receipt, t).await
    }
    async fn depth(&self) -> Result<QueueDepth, PlatformError> {
        self.inner.depth().await
    }
}

/// A segment whose conversion always fails: after the queue's maximum receive count (3, as
/// `max_attempts`) the job is failed with a readable reason, the message is in the dead-letter
/// queue, and it was delivered exactly 3 times (no hot loop), within a bounded time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_keeps_failing_fails_the_job_and_dead_letters_the_message() {
    let delivered = Arc::new(AtomicUsize::new(0));
    let counter = delivered.clone();
    let env = env_with(Options {
        backend: Arc::new(Broken),
        config: Box::new(|c: &mut WorkerConfig| c.max_attempts = 3),
        wrap_queues: Some(Box::new(move |q: Arc<dyn Queue>| -> Arc<dyn Queue> {
            if q.name() == "video-worker" {
                Arc::new(CountingReceives {
                    inner: q,
                    delivered: counter.clone(),
                })
            } else {
                q
            }
        })),
    })
    .await;
    let dlq = stereospot_local::LocalQueue::new(
        env._local.db.clone(),
        "video-worker-dlq",
        stereospot_local::QueueConfig::default(),
    );
    let started = Instant::now();
    let id = env.submit(&video("realshort.mp4"), StereoMode::Sbs).await;
    let mut log = env
        .pump_until_finished(&[id], Duration::from_secs(60))
        .await;
    // The give-up left the message visible: the next receive moves it to the dead-letter queue.
    log.extend(env.pump().await);
    let elapsed = started.elapsed();
    let job = env.job(id).await;
    assert_status(&job, JobStatus::Failed);
    let error = job.error.unwrap();
    assert_eq!(error.code, "inference_failed");
    assert!(error.message.contains("out of GPU memory"), "{error:?}");
    assert!(error.message.contains("3 times"), "{error:?}");
    assert!(!error.message.ends_with('.'), "{error:?}");
    // Two retries, then the give-up; three deliveries in all.
    let retries = count(&log, "inference", |o| matches!(o, Outcome::Retry { .. }));
    assert_eq!(retries, 2, "{log:?}");
    assert_eq!(
        count(&log, "inference", |o| matches!(
            o,
            Outcome::JobFailed { .. }
        )),
        1
    );
    assert_eq!(delivered.load(Ordering::SeqCst), 3, "{log:?}");
    assert_eq!(
        dlq.depth().await.unwrap(),
        QueueDepth {
            visible: 1,
            in_flight: 0
        }
    );
    let dead = dlq
        .receive(&ReceiveOptions::default())
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert!(dead.body.contains("segments/"), "{}", dead.body);
    assert_eq!(env.queued().await, 0);
    // Retry delays are 20 and 40 ms here: the whole give-up is quick.
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}
