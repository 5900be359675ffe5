//! The run loops: the in-flight limit, heartbeats, graceful shutdown, and the whole pipeline
//! with every loop running concurrently.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use stereospot_core::platform::{Message, Queue, QueueDepth, ReceiveOptions, Result};
use stereospot_core::{JobStatus, ObjectKey, StereoMode};
use stereospot_workers::{
    BackendError, CancellationToken, ConvertContext, InferenceBackend, Outcome, StubBackend,
};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::helpers::*;

/// Signals each conversion's start, then holds it until the test releases a permit.
#[derive(Debug)]
struct Gated {
    started: mpsc::UnboundedSender<u32>,
    release: Arc<Semaphore>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

impl Gated {
    fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<u32>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let gated = Arc::new(Self {
            started: tx,
            release: Arc::new(Semaphore::new(0)),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        });
        (gated, rx)
    }
}

#[async_trait]
impl InferenceBackend for Gated {
    fn name(&self) -> &'static str {
        "gated"
    }
    async fn convert(
        &self,
        input: &Path,
        output: &Path,
        mode: StereoMode,
        ctx: &ConvertContext,
    ) -> std::result::Result<(), BackendError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let _ = self.started.send(ctx.segment_index);
        self.release.acquire().await.unwrap().forget();
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        StubBackend.convert(input, output, mode, ctx).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_in_flight_segments_convert_at_once() {
    let (gated, mut started) = Gated::new();
    let env = env_with(Options {
        backend: gated.clone(),
        config: Box::new(|c| {
            c.inference_max_in_flight = 2;
            c.receive_wait = Duration::from_millis(100);
        }),
        ..Options::default()
    })
    .await;
    let id = env.submit(&video("book.mkv"), StereoMode::Anaglyph).await;
    let chunked = env.media_worker.chunking.try_execute_one().await.unwrap();
    assert_eq!(chunked, Outcome::Done { job_id: id });
    let total = env.job(id).await.total_segments.unwrap();
    assert!(total >= 3);

    let shutdown = CancellationToken::new();
    let run = tokio::spawn(env.video_worker.inference.clone().run(shutdown.clone()));
    started.recv().await.unwrap();
    started.recv().await.unwrap();
    // A third conversion must not start while two are held. (A negative can only be
    // observed for a while; 300 ms is many receive waits.)
    assert!(
        tokio::time::timeout(Duration::from_millis(300), started.recv())
            .await
            .is_err(),
        "a third segment started"
    );
    gated.release.add_permits(total as usize);
    for _ in 2..total {
        started.recv().await.unwrap();
    }
    // Every output exists once the queue is drained.
    let out = &env.platform.buckets.output;
    for i in 0..total {
        let key = ObjectKey::segment_output(id, i).unwrap().to_string();
        loop {
            let depth = env.platform.queues.video_worker.depth().await.unwrap();
            if depth == QueueDepth::default()
                && env
                    .platform
                    .storage
                    .head(out, &key)
                    .await
                    .unwrap()
                    .is_some()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    shutdown.cancel();
    run.await.unwrap();
    assert_eq!(gated.peak.load(Ordering::SeqCst), 2);
}

/// Counts visibility changes on the video-worker queue.
#[derive(Debug)]
struct CountingVisibility {
    inner: Arc<dyn Queue>,
    changes: watch::Sender<usize>,
}

#[async_trait]
impl Queue for CountingVisibility {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn send(&self, body: &str) -> Result<String> {
        self.inner.send(body).await
    }
    async fn send_batch(&self, bodies: &[String]) -> Result<Vec<String>> {
        self.inner.send_batch(bodies).await
    }
    async fn receive(&self, options: &ReceiveOptions) -> Result<Vec<Message>> {
        self.inner.receive(options).await
    }
    async fn delete(&self, receipt: &str) -> Result<()> {
        self.inner.delete(receipt).await
    }
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<()> {
        self.inner.change_visibility(receipt, timeout).await?;
        self.changes.send_modify(|n| *n += 1);
        Ok(())
    }
    async fn depth(&self) -> Result<QueueDepth> {
        self.inner.depth().await
    }
}

/// Finishes only after the heartbeat extended the message twice.
#[derive(Debug)]
struct WaitForHeartbeats(watch::Receiver<usize>);

#[async_trait]
impl InferenceBackend for WaitForHeartbeats {
    fn name(&self) -> &'static str {
        "slow"
    }
    async fn convert(
        &self,
        input: &Path,
        output: &Path,
        mode: StereoMode,
        ctx: &ConvertContext,
    ) -> std::result::Result<(), BackendError> {
        let mut rx = self.0.clone();
        rx.wait_for(|n| *n >= 2).await.unwrap();
        StubBackend.convert(input, output, mode, ctx).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_extends_a_long_segment_and_the_message_goes_after_the_output() {
    let (tx, rx) = watch::channel(0usize);
    let tx = Arc::new(tx);
    let wrap_tx = tx.clone();
    let env = env_with(Options {
        backend: Arc::new(WaitForHeartbeats(rx)),
        config: Box::new(|c| c.heartbeat_interval = Duration::from_millis(30)),
        wrap_queues: Some(Box::new(move |q: Arc<dyn Queue>| -> Arc<dyn Queue> {
            if q.name() == "video-worker" {
                // A second sender on the same channel: the backend watches the count.
                Arc::new(CountingVisibility {
                    inner: q,
                    changes: (*wrap_tx).clone(),
                })
            } else {
                q
            }
        })),
    })
    .await;
    let id = env
        .submit(&video("realshort.mp4"), StereoMode::Anaglyph)
        .await;
    env.media_worker.chunking.try_execute_one().await.unwrap();
    let outcome = env.video_worker.inference.try_execute_one().await.unwrap();
    assert_eq!(outcome, Outcome::Done { job_id: id });
    assert!(*tx.borrow() >= 2);
    let key = ObjectKey::segment_output(id, 0).unwrap().to_string();
    let out = &env.platform.buckets.output;
    assert!(
        env.platform
            .storage
            .head(out, &key)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        env.platform.queues.video_worker.depth().await.unwrap(),
        QueueDepth::default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_work_finish() {
    let (gated, mut started) = Gated::new();
    let env = env_with(Options {
        backend: gated.clone(),
        config: Box::new(|c| c.receive_wait = Duration::from_millis(100)),
        ..Options::default()
    })
    .await;
    let id = env
        .submit(&video("realshort.mp4"), StereoMode::Anaglyph)
        .await;
    env.media_worker.chunking.try_execute_one().await.unwrap();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(env.video_worker.inference.clone().run(shutdown.clone()));
    started.recv().await.unwrap();
    shutdown.cancel();
    gated.release.add_permits(1);
    run.await.unwrap();
    let key = ObjectKey::segment_output(id, 0).unwrap().to_string();
    let out = &env.platform.buckets.output;
    assert!(
        env.platform
            .storage
            .head(out, &key)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        env.platform.queues.video_worker.depth().await.unwrap(),
        QueueDepth::default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_past_the_grace_period_makes_the_message_visible_again() {
    let (gated, mut started) = Gated::new();
    let env = env_with(Options {
        backend: gated.clone(),
        config: Box::new(|c| {
            c.receive_wait = Duration::from_millis(100);
            c.shutdown_grace = Duration::from_millis(50);
        }),
        ..Options::default()
    })
    .await;
    let id = env
        .submit(&video("realshort.mp4"), StereoMode::Anaglyph)
        .await;
    env.media_worker.chunking.try_execute_one().await.unwrap();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(env.video_worker.inference.clone().run(shutdown.clone()));
    started.recv().await.unwrap();
    shutdown.cancel();
    run.await.unwrap();
    let depth = env.platform.queues.video_worker.depth().await.unwrap();
    assert_eq!(
        depth,
        QueueDepth {
            visible: 1,
            in_flight: 0
        }
    );
    // Another worker picks it up and finishes the job.
    gated.release.add_permits(10);
    env.pump().await;
    assert_status(&env.job(id).await, JobStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_loops_running_concurrently_complete_the_jobs() {
    let env = env_with(Options {
        config: Box::new(|c| {
            c.receive_wait = Duration::from_millis(500);
            c.inference_max_in_flight = 2;
        }),
        ..Options::default()
    })
    .await;
    let shutdown = CancellationToken::new();
    let media = tokio::spawn(env.media_worker.clone().run(shutdown.clone()));
    let video = tokio::spawn(env.video_worker.clone().run(shutdown.clone()));
    let a = env.submit(&video_path("book.mkv"), StereoMode::Sbs).await;
    let b = env
        .submit(&video_path("realshort.mp4"), StereoMode::Anaglyph)
        .await;
    let start = std::time::Instant::now();
    // No signal exists for "job finished"; the status is polled.
    // Completion is not the end of the queue traffic: storing `final.mp4` also notifies the
    // segment-output queue (same prefix and suffix as the segments), and that message is skipped
    // by a worker shortly after the job turned Completed. So the test also waits for the queues
    // to drain before shutting the workers down.
    loop {
        let (ja, jb) = (env.job(a).await, env.job(b).await);
        if ja.status.is_terminal() && jb.status.is_terminal() {
            assert_status(&ja, JobStatus::Completed);
            assert_status(&jb, JobStatus::Completed);
            if env.queued().await == 0 {
                break;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{ja:?} {jb:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    media.await.unwrap();
    video.await.unwrap();
    assert_eq!(env.queued().await, 0);
    env.assert_clean();
}

fn video_path(name: &str) -> std::path::PathBuf {
    video(name)
}
