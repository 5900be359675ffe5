//! At-least-once delivery: every message delivered twice changes nothing.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use stereospot_core::platform::{Message, Queue, QueueDepth, ReceiveOptions, Result};
use stereospot_core::{JobStatus, StereoMode};

use crate::helpers::*;

/// Delivers every message twice: when a message is received for the first time, a copy of it
/// is enqueued, so whoever sent it (a worker or a storage notification), it arrives again.
#[derive(Debug)]
pub struct Duplicating {
    inner: Arc<dyn Queue>,
    copies: Mutex<HashSet<String>>,
    originals: Mutex<HashSet<String>>,
}

impl Duplicating {
    pub fn wrap(inner: Arc<dyn Queue>) -> Arc<dyn Queue> {
        Arc::new(Self {
            inner,
            copies: Mutex::new(HashSet::new()),
            originals: Mutex::new(HashSet::new()),
        })
    }
}

#[async_trait]
impl Queue for Duplicating {
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
        let messages = self.inner.receive(options).await?;
        for m in &messages {
            let is_copy = self.copies.lock().unwrap().contains(&m.id);
            let first_time = self.originals.lock().unwrap().insert(m.id.clone());
            if !is_copy && first_time {
                let id = self.inner.send(&m.body).await?;
                self.copies.lock().unwrap().insert(id);
            }
        }
        Ok(messages)
    }
    async fn delete(&self, receipt: &str) -> Result<()> {
        self.inner.delete(receipt).await
    }
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<()> {
        self.inner.change_visibility(receipt, timeout).await
    }
    async fn depth(&self) -> Result<QueueDepth> {
        self.inner.depth().await
    }
}

async fn run_once(duplicate: bool) -> (Vec<u8>, Log, u32) {
    let env = env_with(Options {
        wrap_queues: duplicate.then(|| Box::new(Duplicating::wrap) as _),
        ..Options::default()
    })
    .await;
    let id = env.submit(&video("book.mkv"), StereoMode::Anaglyph).await;
    let log = env.pump().await;
    let job = env.job(id).await;
    assert_status(&job, JobStatus::Completed);
    let keys = env.job_objects(id).await;
    assert_eq!(
        keys.iter().filter(|k| k.ends_with("final.mp4")).count(),
        1,
        "{keys:?}"
    );
    let out = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(env.download_final(id, out.path()).await).unwrap();
    assert_eq!(env.queued().await, 0);
    env.assert_clean();
    (bytes, log, job.total_segments.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_twice_gives_one_reassembly_and_the_same_bytes() {
    let (clean, clean_log, total) = run_once(false).await;
    let (dup, log, dup_total) = run_once(true).await;
    assert_eq!(total, dup_total);
    assert!(total >= 3);
    assert_eq!(count(&clean_log, "reassembly", is_done), 1);
    // One join; the duplicate reassembly message finds the job completed.
    assert_eq!(count(&log, "reassembly", is_done), 1, "{log:?}");
    assert!(count(&log, "reassembly", |o| !is_done(o)) >= 1);
    // One chunking and one conversion per segment; the duplicates are skipped.
    assert_eq!(count(&log, "chunking", is_done), 1);
    assert_eq!(count(&log, "inference", is_done) as u32, total, "{log:?}");
    // Duplicates really were delivered.
    assert!(
        log.len() > clean_log.len() * 3 / 2,
        "{} vs {}",
        log.len(),
        clean_log.len()
    );
    assert!(clean == dup, "the final file differs from a clean run's");
}
