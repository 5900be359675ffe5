//! StereoSpot's domain core: job and segment types, the job state machine, every object key,
//! queue payloads, S3 event parsing, progress and ETA arithmetic, and the platform traits the
//! workers and the web app are written against.
//!
//! Invariant: this crate does no I/O. It never reads the clock, the environment, the network or
//! the disk; callers pass `now` and configuration values in. That keeps every rule here a pure,
//! property-testable function, and lets the local (SQLite) and AWS platforms share them.

pub mod config;
pub mod event;
pub mod id;
pub mod job;
pub mod keys;
pub mod payload;
pub mod platform;
pub mod progress;

pub use id::{IdError, JobId};
pub use job::{
    Job, JobError, JobStatus, JobUpdate, SegmentCompletion, StereoMode, TransitionError,
};
pub use keys::{KeyError, ObjectKey};
pub use platform::PlatformError;

/// Seconds since the Unix epoch, UTC. The wire format of every timestamp (as in the spec's tables).
pub type UnixSeconds = i64;
