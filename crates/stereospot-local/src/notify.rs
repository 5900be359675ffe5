//! Object-created notifications routed to queues by bucket, key prefix and key suffix, as S3
//! event notifications are. The message body is the S3 event JSON AWS sends
//! ([`stereospot_core::event::object_created_event`]), so consumers are the same on every platform.
//!
//! **Durability.** [`FsObjectStorage`](crate::storage::FsObjectStorage) keeps an outbox: before
//! an object whose key matches a rule is renamed into place, a record naming it is written and
//! fsynced to `objects/.outbox/`. After the rename is durable the event is sent to every matching
//! queue (each `send` returns once the message is durable), and only then is the record removed.
//! If a send fails, the put returns the error although the object is stored, and the record
//! stays. When storage is opened, every remaining record whose object exists is sent again (and
//! records of writes that never became visible are dropped). So a crash between the rename and
//! the send, or a failed send that nobody retried, delays the notification until the next start
//! instead of losing it. Delivery is at least once (a crash after the send but before the record
//! removal sends the event twice), which consumers are built for.
//!
//! Every rule that matches is notified (S3 refuses overlapping rules instead; we do not need to).

use std::sync::Arc;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use stereospot_core::event::object_created_event;
use stereospot_core::platform::{ObjectMeta, Queue, Result};

/// Sends object-created events for keys in `bucket` that start with `prefix` and end with
/// `suffix` (both may be empty) to `queue`.
#[derive(Debug, Clone)]
pub struct NotificationRule {
    pub bucket: String,
    pub prefix: String,
    pub suffix: String,
    pub queue: Arc<dyn Queue>,
}

impl NotificationRule {
    pub fn matches(&self, bucket: &str, key: &str) -> bool {
        self.bucket == bucket && key.starts_with(&self.prefix) && key.ends_with(&self.suffix)
    }
}

/// A set of notification rules.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    rules: Vec<NotificationRule>,
}

impl Notifier {
    pub fn new(rules: Vec<NotificationRule>) -> Self {
        Self { rules }
    }

    pub fn rules(&self) -> &[NotificationRule] {
        &self.rules
    }

    /// Whether any rule matches `bucket/key`.
    pub fn matches_any(&self, bucket: &str, key: &str) -> bool {
        self.rules.iter().any(|r| r.matches(bucket, key))
    }

    /// Sends the object-created event of `bucket/key` to every matching rule's queue.
    pub async fn object_created(&self, bucket: &str, key: &str, meta: &ObjectMeta) -> Result<()> {
        let matching: Vec<Arc<dyn Queue>> = self
            .rules
            .iter()
            .filter(|r| r.matches(bucket, key))
            .map(|r| Arc::clone(&r.queue))
            .collect();
        if matching.is_empty() {
            return Ok(());
        }
        let now = OffsetDateTime::now_utc();
        let event_time = now
            .format(&Rfc3339)
            .unwrap_or_else(|_| now.unix_timestamp().to_string());
        let body = object_created_event(
            bucket,
            key,
            meta.size,
            meta.etag.as_deref().unwrap_or_default(),
            &event_time,
        );
        for queue in matching {
            queue.send(&body).await?;
            tracing::debug!(
                bucket,
                key,
                queue = queue.name(),
                "object-created notification sent"
            );
        }
        Ok(())
    }
}
