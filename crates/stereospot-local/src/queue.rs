//! Durable queues with SQS semantics in SQLite.
//!
//! Every queue of a data directory lives in one table (`queue_messages`), keyed by queue name.
//! A message is visible when `visible_at_ms <= now`. Receiving one, in one `BEGIN IMMEDIATE`
//! transaction, increments its receive count, gives it a fresh random receipt and hides it for
//! the visibility timeout. A message that has already been received `max_receives` times is
//! moved to the dead-letter queue by the next receive attempt instead of being delivered (as
//! SQS's redrive policy does); it arrives there with a receive count of 0.
//!
//! # Durability
//!
//! Sends are fsynced before they return (with the default `synchronous=FULL`). Receives,
//! deletes and visibility changes commit without an fsync of their own (`Db::run_relaxed`):
//! they survive a crash of the process, and on power loss the worst case is a message delivered
//! again, which at-least-once delivery allows.
//!
//! # Receipts
//!
//! A receipt is `{message_id}.{random}` and only the receipt of the latest delivery is stored:
//! `delete` and `change_visibility` with an older one (the message was redelivered or moved to
//! the dead-letter queue since) fail with [`PlatformError::StaleReceipt`] and change nothing.
//! Deleting a message that no longer exists succeeds without effect, as in SQS, so a retried
//! delete is harmless; extending one is `StaleReceipt` (the heartbeat's work was lost).
//!
//! # Long polling
//!
//! A receive that finds nothing waits on the queue's [`tokio::sync::Notify`], shared through
//! the [`Db`] handle by every `LocalQueue` of that name in the process. Sends (and visibility
//! changes to zero, and dead-letter moves) wake it at once. It also wakes when the earliest
//! in-flight message becomes visible again, and, for messages sent by *another process* on the
//! same data directory, which cannot signal this one, it re-checks every
//! [`CROSS_PROCESS_POLL`] (one indexed query; see [`LocalQueue::with_cross_process_poll`]).
//! No busy polling otherwise.
//!
//! A receive future dropped while its transaction runs may still deliver messages that nobody
//! sees; they become visible again after the visibility timeout (at-least-once delivery).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use stereospot_core::platform::{
    Message, PlatformError, Queue, QueueDepth, ReceiveOptions, Result,
};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::db::{Db, SqlContext, now_millis};

/// How often a waiting receive re-checks for messages sent by other processes.
pub const CROSS_PROCESS_POLL: Duration = Duration::from_millis(400);

/// The largest message body, as SQS (256 KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The most messages per send or receive batch, as SQS.
pub const MAX_BATCH: usize = 10;

/// The longest visibility timeout, as SQS (12 hours).
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// A queue's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// How long a received message stays hidden unless deleted or extended.
    pub visibility_timeout: Duration,
    /// Receives after which the next receive attempt moves a message to `dead_letter`
    /// (at least 1; 0 counts as 1). Without a dead-letter queue, messages are redelivered forever.
    pub max_receives: u32,
    /// The dead-letter queue's name.
    pub dead_letter: Option<String>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(30),
            max_receives: 5,
            dead_letter: None,
        }
    }
}

/// A [`Queue`] in the shared database. Queues need no creation: a name is a queue.
#[derive(Debug, Clone)]
pub struct LocalQueue {
    db: Db,
    name: String,
    config: QueueConfig,
    waker: Arc<Notify>,
    dead_letter_waker: Option<Arc<Notify>>,
    cross_process_poll: Duration,
}

impl LocalQueue {
    pub fn new(db: Db, name: impl Into<String>, config: QueueConfig) -> Self {
        let name = name.into();
        let waker = db.waker(&name);
        let dead_letter_waker = config.dead_letter.as_deref().map(|d| db.waker(d));
        Self {
            db,
            name,
            config,
            waker,
            dead_letter_waker,
            cross_process_poll: CROSS_PROCESS_POLL,
        }
    }

    /// Changes how often a waiting receive re-checks for messages sent by other processes
    /// (default [`CROSS_PROCESS_POLL`]). Sends in this process always wake receivers at once.
    pub fn with_cross_process_poll(mut self, interval: Duration) -> Self {
        self.cross_process_poll = interval.max(Duration::from_millis(10));
        self
    }

    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    async fn insert(&self, bodies: Vec<String>) -> Result<Vec<String>> {
        if let Some(b) = bodies.iter().find(|b| b.len() > MAX_BODY_BYTES) {
            return Err(PlatformError::Invalid(format!(
                "message body is {} bytes, the limit is {MAX_BODY_BYTES}",
                b.len()
            )));
        }
        let queue = self.name.clone();
        let ids = self
            .db
            .run(move |conn| {
                let now = now_millis();
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .ctx("starting a send")?;
                let mut ids = Vec::with_capacity(bodies.len());
                {
                    let mut st = tx
                        .prepare_cached(
                            "INSERT INTO queue_messages (queue, id, body, sent_at_ms, visible_at_ms)
                             VALUES (?1, ?2, ?3, ?4, ?4)",
                        )
                        .ctx("preparing a send")?;
                    for body in &bodies {
                        let id = random_hex();
                        st.execute(params![queue, id, body, now])
                            .ctx("storing a message")?;
                        ids.push(id);
                    }
                }
                tx.commit().ctx("committing a send")?;
                Ok(ids)
            })
            .await?;
        self.waker.notify_waiters();
        Ok(ids)
    }

    /// One receive attempt: delivers up to `max` visible messages, moving those past
    /// `max_receives` to the dead-letter queue. Also returns when the earliest hidden message
    /// becomes visible (when nothing was delivered) and whether anything was dead-lettered.
    async fn try_receive(&self, max: usize, visibility: Duration) -> Result<Attempt> {
        let queue = self.name.clone();
        let dead_letter = self.config.dead_letter.clone();
        let max_receives = i64::from(self.config.max_receives.max(1));
        let visibility_ms = i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX);
        self.db
            .run_relaxed(move |conn| {
                let now = now_millis();
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .ctx("starting a receive")?;
                let mut attempt = Attempt::default();
                let mut delivered = std::collections::HashSet::new();
                loop {
                    let need = max - attempt.messages.len();
                    if need == 0 {
                        break;
                    }
                    let rows: Vec<(i64, String, String, i64)> = tx
                        .prepare_cached(
                            "SELECT seq, id, body, receive_count FROM queue_messages
                             WHERE queue = ?1 AND visible_at_ms <= ?2
                             ORDER BY visible_at_ms, seq LIMIT ?3",
                        )
                        .and_then(|mut st| {
                            st.query_map(
                                params![queue, now, need as i64 + delivered.len() as i64],
                                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                            )?
                            .collect()
                        })
                        .ctx("selecting visible messages")?;
                    let mut moved_now = 0;
                    for (seq, id, body, count) in rows {
                        if delivered.contains(&seq) || attempt.messages.len() == max {
                            continue;
                        }
                        if let Some(dlq) = &dead_letter
                            && count >= max_receives
                        {
                            tx.execute(
                                "UPDATE queue_messages SET queue = ?1, visible_at_ms = ?2,
                                     receive_count = 0, receipt = NULL WHERE seq = ?3",
                                params![dlq, now, seq],
                            )
                            .ctx("moving a message to the dead-letter queue")?;
                            moved_now += 1;
                            continue;
                        }
                        let receipt = format!("{id}.{}", random_hex());
                        tx.execute(
                            "UPDATE queue_messages SET receive_count = receive_count + 1,
                                 receipt = ?1, visible_at_ms = ?2 WHERE seq = ?3",
                            params![receipt, now.saturating_add(visibility_ms), seq],
                        )
                        .ctx("marking a message delivered")?;
                        delivered.insert(seq);
                        attempt.messages.push(Message {
                            id,
                            body,
                            receipt,
                            receive_count: u32::try_from(count + 1).unwrap_or(u32::MAX),
                        });
                    }
                    attempt.dead_lettered += moved_now;
                    // Only a pass that moved messages away can have left candidates unseen.
                    if moved_now == 0 {
                        break;
                    }
                }
                if attempt.messages.is_empty() {
                    attempt.next_visible_ms = tx
                        .query_row(
                            "SELECT MIN(visible_at_ms) FROM queue_messages
                             WHERE queue = ?1 AND visible_at_ms > ?2",
                            params![queue, now],
                            |r| r.get(0),
                        )
                        .ctx("finding the next visible message")?;
                }
                tx.commit().ctx("committing a receive")?;
                Ok(attempt)
            })
            .await
    }
}

#[derive(Debug, Default)]
struct Attempt {
    messages: Vec<Message>,
    next_visible_ms: Option<i64>,
    dead_lettered: usize,
}

/// 128 random bits, hex.
fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Splits a receipt into its message id; `Invalid` when it is not one of ours.
fn receipt_message_id(receipt: &str) -> Result<&str> {
    match receipt.split_once('.') {
        Some((id, nonce))
            if id.len() == 32
                && nonce.len() == 32
                && receipt.bytes().all(|b| b == b'.' || b.is_ascii_hexdigit()) =>
        {
            Ok(id)
        }
        _ => Err(PlatformError::Invalid("malformed receipt handle".into())),
    }
}

#[async_trait]
impl Queue for LocalQueue {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, body: &str) -> Result<String> {
        let mut ids = self.insert(vec![body.to_owned()]).await?;
        ids.pop()
            .ok_or_else(|| PlatformError::backend("sending a message", "no id was returned"))
    }

    async fn send_batch(&self, bodies: &[String]) -> Result<Vec<String>> {
        if bodies.is_empty() || bodies.len() > MAX_BATCH {
            return Err(PlatformError::Invalid(format!(
                "a batch holds 1 to {MAX_BATCH} messages, got {}",
                bodies.len()
            )));
        }
        self.insert(bodies.to_vec()).await
    }

    async fn receive(&self, options: &ReceiveOptions) -> Result<Vec<Message>> {
        let max = usize::try_from(options.max_messages).unwrap_or(usize::MAX);
        if !(1..=MAX_BATCH).contains(&max) {
            return Err(PlatformError::Invalid(format!(
                "max_messages must be 1 to {MAX_BATCH}, got {}",
                options.max_messages
            )));
        }
        let visibility = options
            .visibility_timeout
            .unwrap_or(self.config.visibility_timeout);
        if visibility > MAX_VISIBILITY {
            return Err(PlatformError::Invalid(
                "visibility timeout must be at most 12 hours".into(),
            ));
        }
        let start = Instant::now();
        let deadline = start
            .checked_add(options.wait)
            .unwrap_or_else(|| start + Duration::from_secs(365 * 24 * 60 * 60));
        loop {
            // Registered before looking, so a send between the look and the wait still wakes us.
            let notified = self.waker.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let attempt = self.try_receive(max, visibility).await?;
            if attempt.dead_lettered > 0
                && let Some(w) = &self.dead_letter_waker
            {
                w.notify_waiters();
            }
            if !attempt.messages.is_empty() {
                return Ok(attempt.messages);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let mut wake = deadline.min(now + self.cross_process_poll);
            if let Some(at) = attempt.next_visible_ms {
                let in_ms = u64::try_from(at.saturating_sub(now_millis())).unwrap_or(0);
                wake = wake.min(now + Duration::from_millis(in_ms + 1));
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn delete(&self, receipt: &str) -> Result<()> {
        let id = receipt_message_id(receipt)?.to_owned();
        let receipt = receipt.to_owned();
        let queue = self.name.clone();
        self.db
            .run_relaxed(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .ctx("starting a delete")?;
                let deleted = tx
                    .execute(
                        "DELETE FROM queue_messages WHERE id = ?1 AND queue = ?2 AND receipt = ?3",
                        params![id, queue, receipt],
                    )
                    .ctx("deleting a message")?;
                if deleted == 0 {
                    let exists = tx
                        .query_row("SELECT 1 FROM queue_messages WHERE id = ?1", [&id], |_| {
                            Ok(())
                        })
                        .optional()
                        .ctx("looking up a message")?
                        .is_some();
                    if exists {
                        return Err(PlatformError::StaleReceipt);
                    }
                }
                tx.commit().ctx("committing a delete")
            })
            .await
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<()> {
        if timeout > MAX_VISIBILITY {
            return Err(PlatformError::Invalid(
                "visibility timeout must be at most 12 hours".into(),
            ));
        }
        let id = receipt_message_id(receipt)?.to_owned();
        let receipt = receipt.to_owned();
        let queue = self.name.clone();
        let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        self.db
            .run_relaxed(move |conn| {
                let changed = conn
                    .execute(
                        "UPDATE queue_messages SET visible_at_ms = ?1
                         WHERE id = ?2 AND queue = ?3 AND receipt = ?4",
                        params![now_millis().saturating_add(timeout_ms), id, queue, receipt],
                    )
                    .ctx("changing a message's visibility")?;
                if changed == 0 {
                    return Err(PlatformError::StaleReceipt);
                }
                Ok(())
            })
            .await?;
        if timeout.is_zero() {
            self.waker.notify_waiters();
        }
        Ok(())
    }

    async fn depth(&self) -> Result<QueueDepth> {
        let queue = self.name.clone();
        self.db
            .run(move |conn| {
                let (visible, in_flight): (i64, i64) = conn
                    .query_row(
                        "SELECT COALESCE(SUM(visible_at_ms <= ?2), 0),
                                COALESCE(SUM(visible_at_ms > ?2), 0)
                         FROM queue_messages WHERE queue = ?1",
                        params![queue, now_millis()],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .ctx("counting messages")?;
                Ok(QueueDepth {
                    visible: u64::try_from(visible).unwrap_or(0),
                    in_flight: u64::try_from(in_flight).unwrap_or(0),
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_are_checked_for_shape() {
        let r = format!("{}.{}", random_hex(), random_hex());
        assert_eq!(receipt_message_id(&r).unwrap(), &r[..32]);
        for bad in ["", "x", "abc.def", &random_hex(), "zz.zz"] {
            assert!(matches!(
                receipt_message_id(bad),
                Err(PlatformError::Invalid(_))
            ));
        }
    }
}
