//! Assembles the whole embedded platform in one data directory: the SQLite stores and queues,
//! the object buckets, and the S3-style notification rules that drive the pipeline.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use stereospot_core::config::Settings;
use stereospot_core::platform::{Buckets, Platform, Queue, Queues, Result};

use crate::notify::{NotificationRule, Notifier};
use crate::storage::{FsObjectStorage, FsStorageOptions};
use crate::{
    Db, LocalCompletionStore, LocalJobStore, LocalQueue, LocalReassemblyLock, QueueConfig,
};

/// The pipeline queues' names and settings (visibility timeouts as the spec's Terraform sets
/// them; each has a `-dlq` dead-letter queue).
pub const QUEUES: [(&str, Duration, u32); 6] = [
    ("chunking", Duration::from_secs(15 * 60), 3),
    ("video-worker", Duration::from_secs(40 * 60), 3),
    ("segment-output", Duration::from_secs(5 * 60), 5),
    ("reassembly", Duration::from_secs(60 * 60), 3),
    ("deletion", Duration::from_secs(5 * 60), 5),
    ("ingest", Duration::from_secs(20 * 60), 3),
];

/// The embedded platform, opened.
#[derive(Debug)]
pub struct LocalPlatform {
    pub platform: Platform,
    pub db: Db,
    pub storage: Arc<FsObjectStorage>,
}

fn queue(db: &Db, name: &str) -> Arc<dyn Queue> {
    let (visibility_timeout, max_receives) = QUEUES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, v, m)| (*v, *m))
        .unwrap_or((Duration::from_secs(30), 5));
    Arc::new(LocalQueue::new(
        db.clone(),
        name,
        QueueConfig {
            visibility_timeout,
            max_receives,
            dead_letter: Some(format!("{name}-dlq")),
        },
    ))
}

impl LocalPlatform {
    /// Opens (creating on first use) the platform in `data_dir`. Presigned URLs start with
    /// `base_url`, the address of the process that serves [`LocalPlatform::objects_router`].
    pub async fn open(data_dir: &Path, settings: &Settings, base_url: &str) -> Result<Self> {
        let db = Db::open(data_dir).await?;
        let queues = Queues {
            chunking: queue(&db, "chunking"),
            video_worker: queue(&db, "video-worker"),
            segment_output: queue(&db, "segment-output"),
            reassembly: queue(&db, "reassembly"),
            deletion: queue(&db, "deletion"),
            ingest: queue(&db, "ingest"),
        };
        let buckets = Buckets {
            input: settings.input_bucket.clone(),
            output: settings.output_bucket.clone(),
        };
        let rule = |bucket: &str, prefix: &str, queue: &Arc<dyn Queue>| NotificationRule {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            suffix: ".mp4".to_string(),
            queue: queue.clone(),
        };
        let notifier = Notifier::new(vec![
            rule(&buckets.input, "input/", &queues.chunking),
            rule(&buckets.input, "segments/", &queues.video_worker),
            rule(&buckets.output, "jobs/", &queues.segment_output),
        ]);
        let storage = Arc::new(
            FsObjectStorage::open(
                data_dir,
                FsStorageOptions {
                    base_url: base_url.to_string(),
                    notifier,
                },
            )
            .await?,
        );
        storage.create_bucket(&buckets.input).await?;
        storage.create_bucket(&buckets.output).await?;
        let platform = Platform {
            jobs: Arc::new(LocalJobStore::new(db.clone())),
            completions: Arc::new(LocalCompletionStore::new(db.clone())),
            reassembly_lock: Arc::new(LocalReassemblyLock::new(db.clone())),
            queues,
            storage: storage.clone(),
            buckets,
            operator_links: None,
        };
        Ok(Self {
            platform,
            db,
            storage,
        })
    }

    /// The routes that serve this platform's presigned object URLs.
    pub fn objects_router(&self) -> Router {
        crate::http::router(self.storage.clone())
    }
}
