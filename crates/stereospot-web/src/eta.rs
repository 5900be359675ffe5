//! The average conversion seconds per MB of recent completed jobs, for ETAs: computed lazily
//! on first use and cached for a TTL (one computation at a time; concurrent callers wait for it
//! instead of stampeding the job store).

use std::time::{Duration, Instant};

use stereospot_core::platform::{JobListKind, JobStore, PageRequest};
use stereospot_core::progress::average_seconds_per_mb;

/// How many recent completed jobs the average covers.
pub const RECENT_JOBS: u32 = 20;

#[derive(Debug)]
pub(crate) struct EtaCache {
    ttl: Duration,
    cached: tokio::sync::Mutex<Option<(Instant, Option<f64>)>>,
}

impl EtaCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// Seconds per MB, `None` while no completed job carries the facts.
    pub async fn seconds_per_mb(&self, jobs: &dyn JobStore) -> Option<f64> {
        let mut guard = self.cached.lock().await;
        if let Some((at, value)) = *guard
            && at.elapsed() < self.ttl
        {
            return value;
        }
        let value = match jobs
            .list(JobListKind::Completed, PageRequest::first(RECENT_JOBS))
            .await
        {
            Ok(page) => average_seconds_per_mb(&page.items),
            Err(e) => {
                // An ETA is a nicety: show none rather than fail the page.
                tracing::warn!(error = %e, "cannot read completed jobs for the ETA");
                return guard.as_ref().and_then(|(_, v)| *v);
            }
        };
        *guard = Some((Instant::now(), value));
        value
    }
}
