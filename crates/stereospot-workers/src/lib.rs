//! StereoSpot's pipeline workers, written against the platform traits only
//! ([`stereospot_core::platform::Platform`]), so the same code runs on the local platform and
//! on AWS.
//!
//! ```text
//! ingest queue        -> media::IngestHandler         URL -> source (yt-dlp via a filtering proxy)
//! chunking queue      -> media::ChunkingHandler       source -> segments, chunking_complete
//! video-worker queue  -> video::InferenceHandler      segment -> converted segment
//! segment-output queue-> video::SegmentOutputHandler  completion + reassembly trigger
//! reassembly queue    -> media::ReassemblyHandler     segments + audio -> final.mp4, completed
//! deletion queue      -> media::DeletionHandler       removes a deleted job's data
//! ```
//!
//! # Step functions and loops
//!
//! Every handler sits in a [`Worker`], whose [`Worker::try_execute_one`] receives at most one
//! message and handles it (tests drive the pipeline with it, deterministically), and whose
//! [`Worker::run`] loops around it until a [`CancellationToken`] is cancelled: a message
//! already received is finished (or, past the shutdown grace, abandoned and made visible
//! again at once); waiting receives are dropped.
//!
//! # What happens to a message
//!
//! Decided in one place ([`Worker`]), from the handler's [`Outcome`]:
//! - `Done`, `Skipped` (S3 test events, foreign keys, duplicates, finished or unknown jobs) and
//!   `JobFailed` delete the message; it is deleted only after its effect is durable.
//! - `Retry` leaves it to be delivered again after a delay (the job is still ingesting, another
//!   worker holds the reassembly claim).
//! - A handler error (storage, timeouts, a crashed ffmpeg: the machine's trouble, not the
//!   input's) makes the message visible again after a doubling back-off; at the
//!   `max_attempts`-th delivery the job is failed with the error's code and a readable reason,
//!   and the message is left to the queue's redrive policy, which moves it to the dead-letter
//!   queue (`{queue}-dlq`) at its next receive, for operators (`max_attempts` matches the
//!   queues' maximum receive count, 3). Bad input (the media layer's input errors) fails the
//!   job at once and deletes the message. So a poison upload never loops.
//!
//! # Invariants
//!
//! - Delivery is at least once: every handler is idempotent (deterministic keys, conditional
//!   status updates, "already done" checks), and a duplicated message changes nothing.
//! - Every status change is a conditional [`stereospot_core::JobUpdate`].
//! - Exactly one reassembly message per job: [`trigger::maybe_trigger_reassembly`] sends it
//!   only when its conditional create of the trigger record succeeds. It runs after every
//!   segment completion and after chunking completes.
//! - One worker at a time reassembles a job (leased claim, renewed by the heartbeat).
//! - Every log line of a message's handling carries `job_id` (and `segment_index` for
//!   segments) through the `message` span.
//!
//! # Known gaps
//!
//! - A crash between creating the reassembly trigger and sending the reassembly message loses
//!   the message (the spec's design has the same window): the media worker's periodic sweep
//!   ([`trigger::sweep_lost_reassemblies`]) finds such jobs (`chunking_complete`, every
//!   completion recorded, the newest `reassembly_sweep_after` old) and sends it again, so the
//!   job is late, not stuck.
//! - A segment conversion still running when its job is deleted may write its output after the
//!   deletion handler ran.

pub mod analysis;
pub mod backend;
pub mod config;
mod context;
mod error;
mod events;
pub mod inference_server;
pub mod media;
pub mod metrics;
mod runner;
pub mod trigger;
pub mod video;

use std::sync::Arc;

pub use analysis::{DepthSeed, JobStats, SourceAnalyzer};
pub use backend::{
    BackendData, BackendError, ConvertContext, HttpBackend, InferenceBackend, StubBackend,
};
pub use config::{BackendKind, ConfigError, WorkerConfig};
pub use context::{Heartbeat, WorkDir, WorkerContext};
pub use error::{Failure, WorkerError};
pub use media::MediaWorker;
pub use runner::{Handler, Outcome, Worker};
pub use tokio_util::sync::CancellationToken;
pub use video::VideoWorker;

/// Builds the backend `config` names. `local` is the in-process stereo engine, which this
/// crate does not depend on: the binary passes it in as `local` (the seam); without it,
/// `INFERENCE_BACKEND=local` is an error, as is `sagemaker` until the AWS platform exists.
pub fn backend_from_config(
    config: &WorkerConfig,
    local: Option<Arc<dyn InferenceBackend>>,
) -> Result<Arc<dyn InferenceBackend>, BackendError> {
    match config.backend {
        BackendKind::Stub => Ok(Arc::new(StubBackend)),
        BackendKind::Http => {
            let url = config
                .inference_http_url
                .as_deref()
                .ok_or(BackendError::Unavailable("http without INFERENCE_HTTP_URL"))?;
            Ok(Arc::new(HttpBackend::new(
                url,
                config.inference_http_timeout,
            )?))
        }
        BackendKind::Local => local.ok_or(BackendError::Unavailable("local")),
        BackendKind::Sagemaker => Err(BackendError::Unavailable("sagemaker")),
    }
}
