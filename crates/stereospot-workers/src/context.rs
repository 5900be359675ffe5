//! What every handler shares: the platform, the settings, and small helpers (clock, failing a
//! job, per-message work directories, heartbeats).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use stereospot_core::platform::Platform;
use stereospot_core::platform::{Message, PlatformError, Queue, Result as PlatformResult};
use stereospot_core::{Job, JobId, JobStatus, JobUpdate, UnixSeconds};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::WorkerConfig;
use crate::error::{Failure, WorkerError};
use crate::runner::{Outcome, record_job};

/// The platform and settings, shared by every handler of a process.
#[derive(Debug, Clone)]
pub struct WorkerContext {
    pub platform: Platform,
    pub config: Arc<WorkerConfig>,
}

impl WorkerContext {
    pub fn new(platform: Platform, config: WorkerConfig) -> Self {
        Self {
            platform,
            config: Arc::new(config),
        }
    }

    /// Seconds since the epoch (the wire format of every timestamp).
    pub fn now(&self) -> UnixSeconds {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    /// The job a message is about, read at the start of a handler: records `job_id` (and
    /// `segment_index`) on the message's span, so every later log line carries them.
    /// `Ok(Err(outcome))`: the job does not exist, and `outcome` skips the message.
    pub(crate) async fn job_of_message(
        &self,
        job_id: JobId,
        segment_index: Option<u32>,
    ) -> Result<Result<Job, Outcome>, Failure> {
        record_job(job_id, segment_index);
        match self.platform.jobs.get(job_id).await {
            Ok(Some(job)) => Ok(Ok(job)),
            Ok(None) => Ok(Err(Outcome::skipped(Some(job_id), "no such job"))),
            Err(e) => Err(Failure::new(Some(job_id), e)),
        }
    }

    /// Moves `job` to `to` with a conditional update, as a handler does before its work.
    /// `Ok(Err(outcome))`: another delivery changed the job first, and `outcome` skips the
    /// message.
    pub(crate) async fn claim(
        &self,
        job: &Job,
        to: JobStatus,
    ) -> Result<Result<Job, Outcome>, Failure> {
        match self
            .platform
            .jobs
            .update(job.job_id, &JobUpdate::transition(job.status, to))
            .await
        {
            Ok(job) => Ok(Ok(job)),
            Err(PlatformError::Transition(e)) => Ok(Err(Outcome::skipped(
                Some(job.job_id),
                format!("job changed: {e}"),
            ))),
            Err(e) => Err(Failure::new(Some(job.job_id), e)),
        }
    }

    /// Runs `work` while a [`Heartbeat`] keeps `message` invisible to other consumers (its
    /// visibility extended every `heartbeat_interval`), and stops the heartbeat after it.
    pub(crate) async fn with_heartbeat<T>(
        &self,
        queue: &Arc<dyn Queue>,
        message: &Message,
        work: impl Future<Output = T>,
    ) -> T {
        let heartbeat = Heartbeat::for_message(
            queue.clone(),
            message.receipt.clone(),
            self.config.heartbeat_interval,
            self.config.visibility_extension,
        );
        let result = work.await;
        heartbeat.stop().await;
        result
    }

    /// Fails `job_id` with a reason a user can read, from whatever live status it is in.
    /// Returns the failed job, or `None` when it is gone or already finished (nothing to fail).
    pub async fn fail_job(
        &self,
        job_id: JobId,
        code: &str,
        message: &str,
    ) -> PlatformResult<Option<Job>> {
        // A status that changes between the read and the conditional write is retried once: the
        // job moved on, and may since have finished.
        for _ in 0..2 {
            let Some(job) = self.platform.jobs.get(job_id).await? else {
                return Ok(None);
            };
            if !job.status.can_transition_to(JobStatus::Failed) {
                return Ok(None);
            }
            match self
                .platform
                .jobs
                .update(job_id, &JobUpdate::fail(job.status, code, message))
                .await
            {
                Ok(job) => {
                    tracing::warn!(code, reason = message, "job failed");
                    crate::metrics::job_failed(code);
                    return Ok(Some(job));
                }
                Err(PlatformError::Transition(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// A fresh work directory under the configured root, removed by [`WorkDir::close`] (or, as
    /// a fallback, on drop).
    pub async fn work_dir(&self, prefix: &str) -> Result<WorkDir, WorkerError> {
        let root = self.config.work_root.clone();
        let prefix = format!("stereospot-{prefix}-");
        let dir = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&root)?;
            tempfile::Builder::new().prefix(&prefix).tempdir_in(&root)
        })
        .await
        .map_err(|e| WorkerError::Internal(format!("work dir task failed: {e}")))?
        .map_err(|e| WorkerError::io("creating a work directory", e))?;
        Ok(WorkDir { dir: Some(dir) })
    }
}

/// A temporary directory for one message's files.
#[derive(Debug)]
pub struct WorkDir {
    dir: Option<tempfile::TempDir>,
}

impl WorkDir {
    pub fn path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    /// Removes the directory on a blocking thread.
    pub async fn close(mut self) {
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            match tokio::task::spawn_blocking(move || dir.close()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove work dir");
                }
                Err(e) => tracing::warn!(error = %e, "work dir removal task failed"),
            }
        }
    }
}

/// Keeps a message invisible (and whatever else `tick` renews) while its work runs. Stops
/// when dropped.
#[derive(Debug)]
pub struct Heartbeat {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Heartbeat {
    /// Calls `tick` every `interval` until stopped, in the current tracing span.
    pub fn start<F, Fut>(interval: Duration, mut tick: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(
            async move {
                let mut timer = tokio::time::interval(interval);
                timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                timer.tick().await; // the first tick is immediate
                loop {
                    tokio::select! {
                        () = token.cancelled() => break,
                        _ = timer.tick() => tick().await,
                    }
                }
            }
            .in_current_span(),
        );
        Self {
            stop,
            task: Some(task),
        }
    }

    /// Extends `receipt`'s visibility to `extension` every `interval`.
    pub fn for_message(
        queue: Arc<dyn Queue>,
        receipt: String,
        interval: Duration,
        extension: Duration,
    ) -> Self {
        Self::start(interval, move || {
            let queue = queue.clone();
            let receipt = receipt.clone();
            async move { extend(&*queue, &receipt, extension).await }
        })
    }

    /// Stops the heartbeat and waits for a tick in progress to end.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// One visibility extension; failures are logged (a stale receipt means the message was
/// delivered again elsewhere: the work is idempotent, so it goes on).
pub(crate) async fn extend(queue: &dyn Queue, receipt: &str, extension: Duration) {
    match queue.change_visibility(receipt, extension).await {
        Ok(()) => tracing::trace!(queue = queue.name(), "message visibility extended"),
        Err(PlatformError::StaleReceipt) => tracing::warn!(
            queue = queue.name(),
            "heartbeat: the message was delivered again meanwhile; finishing anyway"
        ),
        Err(e) => tracing::warn!(queue = queue.name(), error = %e, "heartbeat failed"),
    }
}

/// Runs a media-layer future to completion on a blocking thread and returns its output.
///
/// `Media::chunk` and `Media::join` are async but rustc cannot prove their futures `Send` (they
/// drive `buffered` streams of closures over borrowed paths: the higher-ranked lifetime
/// limitation of rust-lang/rust#102211), and `async_trait` handlers must be `Send`. Driving them
/// with `Handle::block_on` on a blocking thread needs no `Send` bound. The work runs to its end
/// even when the caller is dropped (the media layer's own time limits bound it).
pub(crate) async fn run_media<F, Fut, T>(make: F) -> Result<T, WorkerError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        handle.block_on(make())
    })
    .await
    .map_err(|e| WorkerError::Internal(format!("media task failed: {e}")))
}
