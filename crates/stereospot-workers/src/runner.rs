//! The queue consumer shared by every handler: a step function that handles at most one message
//! ([`Worker::try_execute_one`], what tests drive), the loop around it ([`Worker::run`]), and the
//! one place that decides what happens to a message after its handler ran (delete, retry later,
//! or give up and fail the job).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use stereospot_core::JobId;
use stereospot_core::platform::{Message, PlatformError, Queue, ReceiveOptions};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, field};

use crate::context::WorkerContext;
use crate::error::{Failure, WorkerError};

/// What became of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No message arrived within the receive wait.
    Idle,
    /// The message's work is done and durable; the message was deleted.
    Done { job_id: JobId },
    /// The message needed no work (S3 test event, foreign key, a job that is finished or gone,
    /// a duplicate); it was deleted.
    Skipped {
        job_id: Option<JobId>,
        reason: String,
    },
    /// The job failed (bad input, or the pipeline gave up after its attempts); the failure and
    /// its reason are on the job. A bad input's message was deleted; after the last attempt the
    /// message is left to the queue's dead-letter redrive.
    JobFailed { job_id: JobId, code: String },
    /// Not now: the message stays in the queue and is delivered again after `delay`.
    Retry {
        job_id: Option<JobId>,
        reason: String,
        delay: Duration,
    },
}

impl Outcome {
    pub(crate) fn skipped(job_id: Option<JobId>, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        tracing::info!(reason = %reason, "message skipped");
        Self::Skipped { job_id, reason }
    }

    /// Whether the message is finished with (deleted, or, after the last attempt, left to the
    /// queue's dead-letter redrive).
    pub fn deleted_message(&self) -> bool {
        matches!(
            self,
            Self::Done { .. } | Self::Skipped { .. } | Self::JobFailed { .. }
        )
    }
}

/// Handles the messages of one queue.
#[async_trait]
pub trait Handler: Send + Sync + Debug + 'static {
    /// Short name for logs (`chunking`, `inference`, ...).
    fn name(&self) -> &'static str;
    fn queue(&self) -> &Arc<dyn Queue>;
    fn context(&self) -> &WorkerContext;
    /// Does the message's work. Must not delete the message: the [`Worker`] deletes it after
    /// `Done`, `Skipped` and `JobFailed`, leaves it after `Retry`, and on an error retries it
    /// with back-off or, at the last attempt, fails the job.
    async fn handle(&self, message: &Message) -> Result<Outcome, Failure>;
}

/// A queue consumer around a [`Handler`].
#[derive(Debug)]
pub struct Worker<H> {
    handler: H,
    concurrency: usize,
    limit: Semaphore,
}

impl<H: Handler> Worker<H> {
    /// A worker that handles one message at a time.
    pub fn new(handler: H) -> Self {
        Self::with_concurrency(handler, 1)
    }

    /// A worker that handles up to `concurrency` messages at once (at least 1), whether they
    /// come through [`Worker::run`]'s loops or through direct [`Worker::try_execute_one`] calls.
    pub fn with_concurrency(handler: H, concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            handler,
            concurrency,
            limit: Semaphore::new(concurrency),
        }
    }

    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Receives at most one message (waiting up to the configured receive wait) and handles it.
    /// `Err` only when the queue itself fails; handler errors become outcomes.
    pub async fn try_execute_one(&self) -> Result<Outcome, WorkerError> {
        let _permit = self
            .limit
            .acquire()
            .await
            .map_err(|_| WorkerError::Internal("worker limit closed".into()))?;
        match self.receive().await? {
            Some(message) => Ok(self.process(message).await),
            None => Ok(Outcome::Idle),
        }
    }

    async fn receive(&self) -> Result<Option<Message>, PlatformError> {
        let options = ReceiveOptions {
            max_messages: 1,
            wait: self.handler.context().config.receive_wait,
            visibility_timeout: None,
        };
        Ok(self
            .handler
            .queue()
            .receive(&options)
            .await?
            .into_iter()
            .next())
    }

    async fn process(&self, message: Message) -> Outcome {
        let span = tracing::info_span!(
            "message",
            worker = self.handler.name(),
            message_id = %message.id,
            receive_count = message.receive_count,
            job_id = field::Empty,
            segment_index = field::Empty,
        );
        async {
            let result = self.handler.handle(&message).await;
            let outcome = self.settle(&message, result).await;
            crate::metrics::message_handled(self.handler.name(), &outcome);
            outcome
        }
        .instrument(span)
        .await
    }

    /// Deletes, retries or gives up, according to the handler's result.
    async fn settle(&self, message: &Message, result: Result<Outcome, Failure>) -> Outcome {
        let queue = self.handler.queue();
        let ctx = self.handler.context();
        let outcome = match result {
            Ok(Outcome::Retry {
                job_id,
                reason,
                delay,
            }) => {
                tracing::info!(reason = %reason, retry_in = ?delay, "message left for later");
                set_visibility(&**queue, &message.receipt, delay).await;
                return Outcome::Retry {
                    job_id,
                    reason,
                    delay,
                };
            }
            Ok(outcome) => outcome,
            Err(failure) if message.receive_count < ctx.config.max_attempts => {
                let delay = ctx.config.retry_delay_for(message.receive_count);
                tracing::warn!(error = %failure.error, retry_in = ?delay, "handling failed; will retry");
                set_visibility(&**queue, &message.receipt, delay).await;
                return Outcome::Retry {
                    job_id: failure.job_id,
                    reason: failure.error.to_string(),
                    delay,
                };
            }
            Err(failure) => {
                let code = failure.error.code();
                tracing::error!(error = %failure.error, code, "handling failed on the last attempt; giving up");
                let outcome = match failure.job_id {
                    Some(job_id) => {
                        let reason = format!(
                            "processing failed {} times: {}",
                            message.receive_count, failure.error
                        );
                        if let Err(e) = ctx.fail_job(job_id, code, &reason).await {
                            // Leave the message: it is retried, and reaches the dead-letter
                            // queue at the queue's maximum receive count.
                            tracing::error!(error = %e, "cannot mark the job failed");
                            return Outcome::Retry {
                                job_id: Some(job_id),
                                reason: e.to_string(),
                                delay: ctx.config.retry_delay_for(message.receive_count),
                            };
                        }
                        Outcome::JobFailed {
                            job_id,
                            code: code.to_string(),
                        }
                    }
                    None => Outcome::skipped(None, format!("gave up: {}", failure.error)),
                };
                // Not deleted: the poison message goes to the dead-letter queue for operators,
                // as the queue's redrive policy moves it at its next receive (made visible now
                // so that happens at once). Should the queue allow more receives than
                // `max_attempts`, the next delivery finds the job failed and drops it.
                set_visibility(&**queue, &message.receipt, Duration::ZERO).await;
                return outcome;
            }
        };
        match queue.delete(&message.receipt).await {
            Ok(()) => {}
            Err(PlatformError::StaleReceipt) => tracing::warn!(
                "message was delivered again while being handled; the other delivery finds the work done"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot delete the message; it will be delivered again")
            }
        }
        outcome
    }

    /// Runs `concurrency` receive loops until `shutdown` is cancelled. A message already
    /// received is finished; work still running `shutdown_grace` after the cancellation is
    /// abandoned and its message made visible again at once.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut loops = tokio::task::JoinSet::new();
        for _ in 0..self.concurrency {
            let worker = self.clone();
            let shutdown = shutdown.clone();
            loops.spawn(async move { worker.run_loop(shutdown).await });
        }
        tracing::info!(
            worker = self.handler.name(),
            queue = self.handler.queue().name(),
            concurrency = self.concurrency,
            "worker started"
        );
        while let Some(joined) = loops.join_next().await {
            if let Err(e) = joined {
                tracing::error!(worker = self.handler.name(), error = %e, "worker loop panicked");
            }
        }
        tracing::info!(worker = self.handler.name(), "worker stopped");
    }

    async fn run_loop(&self, shutdown: CancellationToken) {
        let grace = self.handler.context().config.shutdown_grace;
        loop {
            let permit = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                p = self.limit.acquire() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let received = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                r = self.receive() => r,
            };
            match received {
                Ok(Some(message)) => {
                    let receipt = message.receipt.clone();
                    let work = self.process(message);
                    tokio::pin!(work);
                    let abandon = async {
                        shutdown.cancelled().await;
                        tokio::time::sleep(grace).await;
                    };
                    tokio::select! {
                        outcome = &mut work => tracing::debug!(?outcome, worker = self.handler.name(), "step done"),
                        () = abandon => {
                            tracing::warn!(worker = self.handler.name(), "shutdown grace over: abandoning work, the message becomes visible again");
                            set_visibility(&**self.handler.queue(), &receipt, Duration::ZERO).await;
                            return;
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(worker = self.handler.name(), error = %e, "receive failed");
                    let pause = self
                        .handler
                        .context()
                        .config
                        .retry_delay
                        .min(Duration::from_secs(5));
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
            drop(permit);
        }
    }
}

async fn set_visibility(queue: &dyn Queue, receipt: &str, delay: Duration) {
    if let Err(e) = queue.change_visibility(receipt, delay).await {
        tracing::warn!(error = %e, "cannot change the message's visibility");
    }
}

/// Records the job (and segment) on the current span, so every later log line carries them.
pub(crate) fn record_job(job_id: JobId, segment_index: Option<u32>) {
    let span = tracing::Span::current();
    span.record("job_id", field::display(job_id));
    if let Some(i) = segment_index {
        span.record("segment_index", i);
    }
}
