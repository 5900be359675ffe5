//! Per-job statistics, computed once at chunking from the whole source, that the stereo engine
//! needs to keep depth consistent across independently converted segments.
//!
//! Today that is one depth-normaliser seed per segment joint: the depth range of the frames
//! just before segment `k`'s first frame (the end of segment `k - 1`), estimated with the
//! configured depth model, so that segment `k` starts from the state segment `k - 1` ended with
//! (see `stereospot_stereo::stabilize`, segment boundaries, for the measured effect). They are
//! stored as a small JSON object next to the segments (`segments/{job}/stats.json`, removed with
//! them) before any segment is uploaded, and handed to the backend in
//! [`ConvertContext::depth_seed`](crate::ConvertContext). The analysis is the engine's: the
//! binary passes a [`SourceAnalyzer`] in (the seam, as for the `local` backend). Without one, or
//! when it fails, segments seed themselves from their own first frames, as before.

use std::fmt::Debug;
use std::path::Path;

use async_trait::async_trait;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use stereospot_core::JobId;
use stereospot_core::platform::{ObjectStorage, PlatformError};

use crate::backend::BackendError;

/// The statistics object of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStats {
    /// The depth estimator the seeds come from (the engine's model name): a seed means
    /// something only to the same estimator.
    pub depth_model: String,
    /// By segment index: the depth normaliser's seed `[lo, hi]` in the engine's convention
    /// (`stereospot_stereo::stabilize::relative_range`), or `None` where the segment seeds
    /// itself (the first one).
    pub depth_seeds: Vec<Option<[f32; 2]>>,
}

/// One segment's depth-normaliser seed.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthSeed {
    /// The estimator it was computed with.
    pub model: String,
    /// `[lo, hi]`, see [`JobStats::depth_seeds`].
    pub range: [f32; 2],
}

/// Computes a job's statistics from its source (the binary provides the stereo engine's).
#[async_trait]
pub trait SourceAnalyzer: Send + Sync + Debug {
    /// `first_frames[k]` is segment `k`'s first frame index in `source`.
    async fn analyze(&self, source: &Path, first_frames: &[u64]) -> Result<JobStats, BackendError>;
}

/// Where a job's statistics are stored (input bucket, beside the segments: deleted with them).
pub fn stats_key(job_id: JobId) -> String {
    format!("segments/{job_id}/stats.json")
}

/// Stores `stats` for the job.
pub(crate) async fn store(
    storage: &dyn ObjectStorage,
    bucket: &str,
    job_id: JobId,
    stats: &JobStats,
) -> Result<(), PlatformError> {
    let body = serde_json::to_vec(stats)
        .map_err(|e| PlatformError::backend("encoding the job statistics", e))?;
    storage
        .put_bytes(bucket, &stats_key(job_id), body.into())
        .await
        .map(|_| ())
}

/// Segment `index`'s depth seed from the job's statistics, if there is one. A missing or
/// unreadable object means no seed (the segment seeds itself); only storage trouble is an error.
pub async fn load_depth_seed(
    storage: &dyn ObjectStorage,
    bucket: &str,
    job_id: JobId,
    index: u32,
) -> Result<Option<DepthSeed>, PlatformError> {
    let stream = match storage.get_stream(bucket, &stats_key(job_id), None).await {
        Ok(s) => s,
        Err(PlatformError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let chunks: Vec<bytes::Bytes> = stream
        .try_collect()
        .await
        .map_err(|e| PlatformError::backend("reading the job statistics", e))?;
    let body: Vec<u8> = chunks.concat();
    let stats: JobStats = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable job statistics; the segment seeds itself");
            return Ok(None);
        }
    };
    Ok(stats
        .depth_seeds
        .get(index as usize)
        .copied()
        .flatten()
        .map(|range| DepthSeed {
            model: stats.depth_model,
            range,
        }))
}
