//! The platform traits: everything the workers and the web app need from the outside world.
//!
//! Two implementations exist (or will): `stereospot-local` (SQLite + filesystem, the embedded
//! default) and `stereospot-aws` (DynamoDB, SQS, S3). Both must pass the same conformance suite
//! (`stereospot-testkit`). Hold them as `Arc<dyn Trait>`, chosen once at start-up.

use std::fmt::Debug;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

use crate::job::{Job, JobUpdate, SegmentCompletion, TransitionError};
use crate::{JobId, UnixSeconds};

/// A stream of object bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Errors of every platform trait.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("receipt handle is stale: the message was redelivered or deleted since")]
    StaleReceipt,
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("{context}")]
    Backend {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl PlatformError {
    /// Wraps a backend failure with what was being done.
    pub fn backend(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Backend {
            context: context.into(),
            source: source.into(),
        }
    }
}

pub type Result<T, E = PlatformError> = std::result::Result<T, E>;

/// Which jobs a listing returns. Deleted jobs are never listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobListKind {
    /// Not yet finished (created through reassembling), newest created first.
    InProgress,
    /// Completed, most recently completed first.
    Completed,
    /// Failed, newest created first.
    Failed,
}

/// A page request; `cursor` is the opaque `next_cursor` of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub fn first(limit: u32) -> Self {
        Self {
            limit,
            cursor: None,
        }
    }
}

/// One page of a listing; `next_cursor` is `None` on the last page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Jobs, keyed by id.
#[async_trait]
pub trait JobStore: Send + Sync + Debug {
    async fn get(&self, id: JobId) -> Result<Option<Job>>;
    /// Creates or replaces a job unconditionally.
    async fn put(&self, job: &Job) -> Result<()>;
    /// Creates a job; `AlreadyExists` if its id is taken.
    async fn create(&self, job: &Job) -> Result<()>;
    /// Applies `update` atomically: read, [`JobUpdate::apply`], write only if the job did not
    /// change in between. `NotFound` for an unknown id, `Transition` when refused.
    async fn update(&self, id: JobId, update: &JobUpdate) -> Result<Job>;
    async fn list(&self, kind: JobListKind, page: PageRequest) -> Result<Page<Job>>;
}

/// Converted segments, per job.
#[async_trait]
pub trait SegmentCompletionStore: Send + Sync + Debug {
    /// Records a completion; recording the same `(job_id, segment_index)` again replaces it.
    async fn put(&self, completion: &SegmentCompletion) -> Result<()>;
    /// A job's completions ordered by `segment_index`.
    async fn list(&self, job_id: JobId) -> Result<Vec<SegmentCompletion>>;
    /// Removes a job's completions.
    async fn delete_job(&self, job_id: JobId) -> Result<()>;
}

/// The per-job reassembly record (the spec's `ReassemblyTriggered` table): the trigger is
/// created once, and one worker at a time holds the reassembly claim.
#[async_trait]
pub trait ReassemblyLock: Send + Sync + Debug {
    /// Conditionally creates the trigger record; `true` for exactly one caller per job.
    async fn try_trigger(&self, job_id: JobId, now: UnixSeconds) -> Result<bool>;
    /// Claims the reassembly of a job for `owner` for `lease_secs`. `true` when `owner` now holds
    /// it: nobody held it, the previous claim expired (its worker died), or `owner` already did.
    async fn try_claim(
        &self,
        job_id: JobId,
        owner: &str,
        now: UnixSeconds,
        lease_secs: u64,
    ) -> Result<bool>;
    /// Gives up a claim held by `owner` (no effect otherwise).
    async fn release(&self, job_id: JobId, owner: &str) -> Result<()>;
    /// Removes the record (job deletion).
    async fn clear(&self, job_id: JobId) -> Result<()>;
}

/// A received message. `receipt` identifies this delivery: it can delete or extend the message
/// only until the message is delivered again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub body: String,
    pub receipt: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// How to receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiveOptions {
    /// 1 to 10, as SQS.
    pub max_messages: u32,
    /// Long-poll: wait up to this long for a first message (SQS allows up to 20 s).
    pub wait: Duration,
    /// Overrides the queue's visibility timeout for these deliveries.
    pub visibility_timeout: Option<Duration>,
}

impl Default for ReceiveOptions {
    fn default() -> Self {
        Self {
            max_messages: 1,
            wait: Duration::from_secs(20),
            visibility_timeout: None,
        }
    }
}

/// Approximate message counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    pub visible: u64,
    pub in_flight: u64,
}

/// A durable queue with SQS semantics: at-least-once delivery, visibility timeout, receive
/// count, dead-letter queue after a maximum number of receives.
#[async_trait]
pub trait Queue: Send + Sync + Debug {
    fn name(&self) -> &str;
    /// Enqueues one message; returns its id once it is durable.
    async fn send(&self, body: &str) -> Result<String>;
    /// Enqueues up to 10 messages at once.
    async fn send_batch(&self, bodies: &[String]) -> Result<Vec<String>>;
    async fn receive(&self, options: &ReceiveOptions) -> Result<Vec<Message>>;
    /// Deletes a delivered message. A stale receipt must not delete it (`StaleReceipt`, or, as
    /// SQS does, success without effect).
    async fn delete(&self, receipt: &str) -> Result<()>;
    /// Sets the remaining invisibility of a delivered message (heartbeat for long work).
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<()>;
    async fn depth(&self) -> Result<QueueDepth>;
}

/// Object metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: Option<UnixSeconds>,
}

/// Presigned URL options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignOptions {
    pub expires_in: Duration,
    /// For GET: the `Content-Disposition` the response carries (download file name).
    pub content_disposition: Option<String>,
    /// For PUT: the content type the uploader must send; for GET: the one returned.
    pub content_type: Option<String>,
}

impl PresignOptions {
    pub fn expires_in(expires_in: Duration) -> Self {
        Self {
            expires_in,
            content_disposition: None,
            content_type: None,
        }
    }
}

/// A byte range, `end` inclusive as in HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

/// Buckets of objects.
#[async_trait]
pub trait ObjectStorage: Send + Sync + Debug {
    async fn presign_put(
        &self,
        bucket: &str,
        key: &str,
        options: &PresignOptions,
    ) -> Result<String>;
    async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        options: &PresignOptions,
    ) -> Result<String>;
    /// Stores a stream as an object; the object becomes visible whole, or not at all.
    async fn put_stream(&self, bucket: &str, key: &str, body: ByteStream) -> Result<ObjectMeta>;
    /// Stores a local file as an object.
    async fn put_file(&self, bucket: &str, key: &str, path: &Path) -> Result<ObjectMeta>;
    /// Reads an object (or a range of it). `NotFound` when absent.
    async fn get_stream(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<ByteStream>;
    /// Downloads an object into a local file; returns its size.
    async fn get_to_file(&self, bucket: &str, key: &str, path: &Path) -> Result<u64>;
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>>;
    /// Deletes one object; absent objects are not an error.
    async fn delete(&self, bucket: &str, key: &str) -> Result<()>;
    /// Deletes every object whose key starts with `prefix`; returns how many.
    async fn delete_prefix(&self, bucket: &str, prefix: &str) -> Result<u64>;
    /// Keys under `prefix`, sorted.
    async fn list_prefix(&self, bucket: &str, prefix: &str) -> Result<Vec<String>>;

    /// Stores bytes held in memory (small objects only).
    async fn put_bytes(&self, bucket: &str, key: &str, bytes: Bytes) -> Result<ObjectMeta> {
        let stream = futures::stream::once(async move { Ok(bytes) });
        self.put_stream(bucket, key, Box::pin(stream)).await
    }
}

/// Links for operators (logs, cost), shown in the web UI only when the platform has them.
pub trait OperatorLinks: Send + Sync + Debug {
    fn logs_url(&self) -> Option<String>;
    fn cost_url(&self) -> Option<String>;
}

/// The six pipeline queues.
#[derive(Debug, Clone)]
pub struct Queues {
    pub chunking: Arc<dyn Queue>,
    pub video_worker: Arc<dyn Queue>,
    pub segment_output: Arc<dyn Queue>,
    pub reassembly: Arc<dyn Queue>,
    pub deletion: Arc<dyn Queue>,
    pub ingest: Arc<dyn Queue>,
}

/// Bucket names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buckets {
    /// Sources (`input/`) and segments (`segments/`).
    pub input: String,
    /// Segment outputs and final files (`jobs/`).
    pub output: String,
}

/// Everything a process needs from its platform.
#[derive(Debug, Clone)]
pub struct Platform {
    pub jobs: Arc<dyn JobStore>,
    pub completions: Arc<dyn SegmentCompletionStore>,
    pub reassembly_lock: Arc<dyn ReassemblyLock>,
    pub queues: Queues,
    pub storage: Arc<dyn ObjectStorage>,
    pub buckets: Buckets,
    pub operator_links: Option<Arc<dyn OperatorLinks>>,
}
