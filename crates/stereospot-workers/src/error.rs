//! The crate's error type. Each variant has a stable code ([`WorkerError::code`]) that is stored
//! on a job when the pipeline gives up on it.

use stereospot_core::platform::PlatformError;
use stereospot_core::{JobId, TransitionError};
use stereospot_media::MediaError;
use stereospot_media::ingest::IngestError;

use crate::backend::BackendError;

/// What can go wrong while handling a message.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("segment conversion failed: {0}")]
    Backend(#[from] BackendError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A pipeline invariant does not hold (e.g. a completion is missing at reassembly).
    #[error("{0}")]
    Internal(String),
}

impl WorkerError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Stable machine code, stored on a job that fails because of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Platform(_) => "platform",
            Self::Media(e) => e.code(),
            Self::Ingest(e) => e.code(),
            Self::Backend(_) => "inference_failed",
            Self::Io { .. } => "io",
            Self::Internal(_) => "internal",
        }
    }

    /// A job's status changed under us (a conditional update was refused).
    pub fn is_transition(&self) -> bool {
        matches!(self, Self::Platform(PlatformError::Transition(_)))
    }
}

impl From<TransitionError> for WorkerError {
    fn from(e: TransitionError) -> Self {
        Self::Platform(PlatformError::Transition(e))
    }
}

/// A handler error, with the job it concerns when known (so the worker can fail that job when
/// it gives up on the message).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Failure {
    pub job_id: Option<JobId>,
    #[source]
    pub error: WorkerError,
}

impl Failure {
    pub fn new(job_id: Option<JobId>, error: impl Into<WorkerError>) -> Self {
        Self {
            job_id,
            error: error.into(),
        }
    }
}

/// Attaches the job to an error (`result.job(id)?`).
pub(crate) trait ForJob<T> {
    fn job(self, job_id: JobId) -> Result<T, Failure>;
}

impl<T, E: Into<WorkerError>> ForJob<T> for Result<T, E> {
    fn job(self, job_id: JobId) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(Some(job_id), e))
    }
}
