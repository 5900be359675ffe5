//! Progress and ETA, as pure functions of a job and what the stores say about it.

use serde::Serialize;

use crate::{Job, JobStatus, UnixSeconds};

/// What the progress bar shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    /// 0 to 100.
    pub percent: u8,
    /// A short label for the current stage.
    pub stage: String,
}

/// Progress of a job, given how many of its segments are converted.
///
/// Conversion (the long part) spans 10% to 90%, split evenly over segments; chunking and
/// reassembly take the ends.
pub fn progress(job: &Job, completed_segments: u32) -> Progress {
    let (percent, stage) = match job.status {
        JobStatus::Created => (0, "Waiting for upload".to_string()),
        JobStatus::Ingesting => (2, "Downloading from URL".to_string()),
        JobStatus::ChunkingInProgress => (5, "Splitting into segments".to_string()),
        JobStatus::ChunkingComplete => match job.total_segments {
            Some(total) if total > 0 => {
                let done = completed_segments.min(total);
                let pct = 10 + (80 * u64::from(done) / u64::from(total)) as u8;
                (pct, format!("Converting segments ({done}/{total})"))
            }
            _ => (10, "Converting segments".to_string()),
        },
        JobStatus::Reassembling => (92, "Joining segments and audio".to_string()),
        JobStatus::Completed => (100, "Completed".to_string()),
        JobStatus::Failed => (100, "Failed".to_string()),
        JobStatus::Deleted => (100, "Removed".to_string()),
    };
    Progress { percent, stage }
}

/// Average conversion seconds per megabyte (10^6 bytes) over completed jobs that carry upload
/// time, completion time and source size. `None` when no job qualifies.
pub fn average_seconds_per_mb(jobs: &[Job]) -> Option<f64> {
    let (secs, mb) = jobs
        .iter()
        .filter(|j| j.status == JobStatus::Completed)
        .filter_map(|j| {
            let secs = j.conversion_seconds()?;
            let bytes = j.source_file_size_bytes.filter(|b| *b > 0)?;
            Some((secs as f64, bytes as f64 / 1e6))
        })
        .fold((0.0, 0.0), |(s, m), (a, b)| (s + a, m + b));
    (mb > 0.0).then(|| secs / mb)
}

/// Seconds per MB of one finished job, for "Conversion: X min (Y sec/MB)".
pub fn job_seconds_per_mb(job: &Job) -> Option<f64> {
    let secs = job.conversion_seconds()? as f64;
    let mb = job.source_file_size_bytes.filter(|b| *b > 0)? as f64 / 1e6;
    Some(secs / mb)
}

/// Estimated seconds left for a running job: the expected total (average seconds per MB times
/// its size) minus the time since upload, never below zero. `None` when not running or when
/// the inputs are unknown.
pub fn eta_seconds(job: &Job, avg_seconds_per_mb: Option<f64>, now: UnixSeconds) -> Option<u64> {
    if job.status.is_terminal() || job.status == JobStatus::Created {
        return None;
    }
    let avg = avg_seconds_per_mb?;
    let mb = job.source_file_size_bytes? as f64 / 1e6;
    let start = job.uploaded_at?;
    let expected = avg * mb;
    let elapsed = (now - start).max(0) as f64;
    Some((expected - elapsed).max(0.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobId, StereoMode};
    use proptest::prelude::*;

    fn job(status: JobStatus) -> Job {
        Job {
            status,
            ..Job::new(JobId::from_parts(1, [0; 10]), StereoMode::Anaglyph, 0)
        }
    }

    fn done(uploaded: i64, completed: i64, bytes: u64) -> Job {
        Job {
            uploaded_at: Some(uploaded),
            completed_at: Some(completed),
            source_file_size_bytes: Some(bytes),
            ..job(JobStatus::Completed)
        }
    }

    #[test]
    fn conversion_progress_is_proportional() {
        let mut j = job(JobStatus::ChunkingComplete);
        j.total_segments = Some(4);
        assert_eq!(progress(&j, 0).percent, 10);
        assert_eq!(progress(&j, 2).percent, 50);
        assert_eq!(progress(&j, 4).percent, 90);
        assert_eq!(progress(&j, 9).percent, 90);
        assert_eq!(progress(&j, 2).stage, "Converting segments (2/4)");
        assert_eq!(progress(&job(JobStatus::Completed), 0).percent, 100);
    }

    #[test]
    fn average_weights_by_size() {
        // 100 s for 10 MB and 300 s for 10 MB: 20 s/MB overall.
        let jobs = [
            done(0, 100, 10_000_000),
            done(0, 300, 10_000_000),
            job(JobStatus::Failed),
        ];
        assert_eq!(average_seconds_per_mb(&jobs), Some(20.0));
        assert_eq!(average_seconds_per_mb(&[job(JobStatus::Completed)]), None);
        assert_eq!(job_seconds_per_mb(&jobs[0]), Some(10.0));
    }

    #[test]
    fn eta_counts_down_and_stops_at_zero() {
        let mut j = job(JobStatus::ChunkingComplete);
        j.uploaded_at = Some(1000);
        j.source_file_size_bytes = Some(5_000_000);
        assert_eq!(eta_seconds(&j, Some(20.0), 1000), Some(100));
        assert_eq!(eta_seconds(&j, Some(20.0), 1040), Some(60));
        assert_eq!(eta_seconds(&j, Some(20.0), 5000), Some(0));
        assert_eq!(eta_seconds(&j, None, 1040), None);
        assert_eq!(eta_seconds(&job(JobStatus::Completed), Some(1.0), 0), None);
    }

    proptest! {
        #[test]
        fn percent_is_monotonic_in_segments(total in 1u32..1000, a in 0u32..1100, b in 0u32..1100) {
            let mut j = job(JobStatus::ChunkingComplete);
            j.total_segments = Some(total);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let (p, q) = (progress(&j, lo).percent, progress(&j, hi).percent);
            prop_assert!(p <= q && q <= 90 && p >= 10);
        }
    }
}
