//! Assembles the whole embedded platform in one data directory: the SQLite stores and queues,
//! the object buckets, and the S3-style notification rules that drive the pipeline.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use stereospot_core::config::Settings;
use stereospot_core::platform::{Buckets, Platform, PlatformError, Queue, Queues, Result};

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

/// Overrides of the queues' settings for every pipeline queue (tests and drills: a short
/// visibility timeout makes a crashed worker's message come back quickly).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueOverrides {
    /// `STEREOSPOT_QUEUE_VISIBILITY_SECONDS` (fractions allowed).
    pub visibility_timeout: Option<Duration>,
    /// `STEREOSPOT_QUEUE_MAX_RECEIVES`: deliveries before a message moves to its dead-letter
    /// queue.
    pub max_receives: Option<u32>,
}

impl QueueOverrides {
    /// Reads the overrides through `lookup` (empty values count as unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let bad = |name: &str, value: &str, expected: &str| {
            PlatformError::Invalid(format!("{name}={value:?} is not valid: {expected}"))
        };
        let mut o = Self::default();
        if let Some(v) = get("STEREOSPOT_QUEUE_VISIBILITY_SECONDS") {
            let secs = v
                .parse::<f64>()
                .ok()
                .filter(|s| *s > 0.0 && *s <= 12.0 * 3600.0)
                .ok_or_else(|| {
                    bad(
                        "STEREOSPOT_QUEUE_VISIBILITY_SECONDS",
                        &v,
                        "seconds, more than 0 and at most 43200",
                    )
                })?;
            o.visibility_timeout = Some(Duration::from_secs_f64(secs));
        }
        if let Some(v) = get("STEREOSPOT_QUEUE_MAX_RECEIVES") {
            let n = v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    bad(
                        "STEREOSPOT_QUEUE_MAX_RECEIVES",
                        &v,
                        "a whole number from 1 to 1000",
                    )
                })?;
            o.max_receives = Some(n);
        }
        Ok(o)
    }
}

/// The embedded platform, opened.
#[derive(Debug)]
pub struct LocalPlatform {
    pub platform: Platform,
    pub db: Db,
    pub storage: Arc<FsObjectStorage>,
}

fn queue(db: &Db, name: &str, overrides: &QueueOverrides) -> Arc<dyn Queue> {
    let (visibility_timeout, max_receives) = QUEUES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, v, m)| (*v, *m))
        .unwrap_or((Duration::from_secs(30), 5));
    let visibility_timeout = overrides.visibility_timeout.unwrap_or(visibility_timeout);
    let max_receives = overrides.max_receives.unwrap_or(max_receives);
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
        Self::open_with(data_dir, settings, base_url, &QueueOverrides::default()).await
    }

    /// [`LocalPlatform::open`] with the queues' settings overridden.
    pub async fn open_with(
        data_dir: &Path,
        settings: &Settings,
        base_url: &str,
        overrides: &QueueOverrides,
    ) -> Result<Self> {
        let db = Db::open(data_dir).await?;
        let q = |name: &str| queue(&db, name, overrides);
        let queues = Queues {
            chunking: q("chunking"),
            video_worker: q("video-worker"),
            segment_output: q("segment-output"),
            reassembly: q("reassembly"),
            deletion: q("deletion"),
            ingest: q("ingest"),
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
