//! The local platform's [`Harness`]: every test gets a fresh data directory and database.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use stereospot_core::platform::{
    JobStore, ObjectStorage, Queue, ReassemblyLock, SegmentCompletionStore,
};
use stereospot_local::{
    Db, LocalCompletionStore, LocalJobStore, LocalQueue, LocalReassemblyLock, QueueConfig,
};
use stereospot_testkit::Harness;
use tempfile::TempDir;

/// A fresh data directory (removed on drop) with its database open.
pub struct LocalHarness {
    pub dir: TempDir,
    pub db: Db,
    queues: AtomicU32,
}

impl LocalHarness {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(dir.path()).await.expect("open the database");
        Self {
            dir,
            db,
            queues: AtomicU32::new(0),
        }
    }
}

#[async_trait]
impl Harness for LocalHarness {
    async fn queue(
        &self,
        visibility: Duration,
        max_receives: u32,
    ) -> (Arc<dyn Queue>, Arc<dyn Queue>) {
        let n = self.queues.fetch_add(1, Ordering::Relaxed);
        let name = format!("queue-{n}");
        let dlq_name = format!("{name}-dlq");
        let dlq = LocalQueue::new(
            self.db.clone(),
            dlq_name.clone(),
            QueueConfig {
                visibility_timeout: visibility,
                max_receives,
                dead_letter: None,
            },
        );
        let queue = LocalQueue::new(
            self.db.clone(),
            name,
            QueueConfig {
                visibility_timeout: visibility,
                max_receives,
                dead_letter: Some(dlq_name),
            },
        );
        (Arc::new(queue), Arc::new(dlq))
    }

    async fn job_store(&self) -> Arc<dyn JobStore> {
        Arc::new(LocalJobStore::new(self.db.clone()))
    }

    async fn completions(&self) -> Arc<dyn SegmentCompletionStore> {
        Arc::new(LocalCompletionStore::new(self.db.clone()))
    }

    async fn reassembly_lock(&self) -> Arc<dyn ReassemblyLock> {
        Arc::new(LocalReassemblyLock::new(self.db.clone()))
    }

    async fn storage(&self) -> (Arc<dyn ObjectStorage>, String) {
        crate::storage_conformance::local_storage(self.dir.path()).await
    }
}
