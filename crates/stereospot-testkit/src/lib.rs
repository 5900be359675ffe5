//! The platform conformance suite: tests written once against the `stereospot-core` platform
//! traits, run by every implementation's integration tests (local now, AWS later) through a
//! [`Harness`] that builds fresh instances.
//!
//! Each `pub async fn` in the modules below is one conformance test; it panics on failure.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use stereospot_core::platform::{
    JobStore, ObjectStorage, Queue, ReassemblyLock, SegmentCompletionStore,
};

pub mod jobs;
pub mod queue;
pub mod storage;

/// Builds fresh, isolated platform objects for one test.
#[async_trait]
pub trait Harness: Send + Sync {
    /// A new empty queue with the given default visibility timeout, dead-lettering into the
    /// returned second queue after `max_receives` receives.
    async fn queue(
        &self,
        visibility: Duration,
        max_receives: u32,
    ) -> (Arc<dyn Queue>, Arc<dyn Queue>);
    async fn job_store(&self) -> Arc<dyn JobStore>;
    async fn completions(&self) -> Arc<dyn SegmentCompletionStore>;
    async fn reassembly_lock(&self) -> Arc<dyn ReassemblyLock>;
    /// Object storage and the name of an existing empty bucket in it. Presigned URLs it makes
    /// must be reachable with plain HTTP from this process.
    async fn storage(&self) -> (Arc<dyn ObjectStorage>, String);
}
