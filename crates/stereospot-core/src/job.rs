//! Jobs, their status machine, and segment completions.
//!
//! Every status change in the system goes through [`JobUpdate::apply`]: the stores call it inside
//! their conditional write, so the allowed transitions are enforced in exactly one place.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{JobId, UnixSeconds};

/// Output format of a job. The spec's two modes keep their wire names (`anaglyph`, `sbs`);
/// the others are additional layouts for 3D TVs and players.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StereoMode {
    /// Red/cyan anaglyph (Dubois by default).
    Anaglyph,
    /// Full side-by-side: left and right views at full width, double-width frame.
    Sbs,
    /// Half side-by-side: both views squeezed into the source width.
    Hsbs,
    /// Top-and-bottom: both views squeezed into the source height.
    Tab,
}

impl StereoMode {
    pub const ALL: [StereoMode; 4] = [Self::Anaglyph, Self::Sbs, Self::Hsbs, Self::Tab];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Anaglyph => "anaglyph",
            Self::Sbs => "sbs",
            Self::Hsbs => "hsbs",
            Self::Tab => "tab",
        }
    }

    /// Human label for pages.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Anaglyph => "Anaglyph (red/cyan glasses)",
            Self::Sbs => "Side-by-side (VR headset, 3D TV)",
            Self::Hsbs => "Half side-by-side (3D TV)",
            Self::Tab => "Top-and-bottom (3D TV)",
        }
    }
}

impl fmt::Display for StereoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a known mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode {0:?}: expected anaglyph, sbs, hsbs or tab")]
pub struct UnknownMode(pub String);

impl FromStr for StereoMode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownMode(s.chars().take(64).collect()))
    }
}

/// Where a job is in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Created,
    Ingesting,
    ChunkingInProgress,
    ChunkingComplete,
    Reassembling,
    Completed,
    Failed,
    Deleted,
}

impl JobStatus {
    pub const ALL: [JobStatus; 8] = [
        Self::Created,
        Self::Ingesting,
        Self::ChunkingInProgress,
        Self::ChunkingComplete,
        Self::Reassembling,
        Self::Completed,
        Self::Failed,
        Self::Deleted,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Ingesting => "ingesting",
            Self::ChunkingInProgress => "chunking_in_progress",
            Self::ChunkingComplete => "chunking_complete",
            Self::Reassembling => "reassembling",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Deleted => "deleted",
        }
    }

    /// No further work happens in these states (the SSE stream ends on them).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Deleted)
    }

    /// Whether the status machine allows `self -> to`.
    ///
    /// Self-transitions are allowed for the stages a redelivered message may re-run after a
    /// worker crash (ingesting, chunking, reassembling); any live stage may fail; only finished
    /// jobs (completed or failed) may be removed.
    pub fn can_transition_to(&self, to: JobStatus) -> bool {
        use JobStatus::*;
        matches!(
            (self, to),
            (Created, Ingesting | ChunkingInProgress | Failed)
                | (Ingesting, Ingesting | Created | Failed)
                | (
                    ChunkingInProgress,
                    ChunkingInProgress | ChunkingComplete | Failed
                )
                | (ChunkingComplete, Reassembling | Failed)
                | (Reassembling, Reassembling | Completed | Failed)
                | (Completed | Failed, Deleted)
        )
    }

    /// Whether a user may remove a job in this state.
    pub fn is_removable(&self) -> bool {
        self.can_transition_to(JobStatus::Deleted)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a known status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.chars().take(64).collect()))
    }
}

/// Why a job failed: a stable machine code (e.g. `not_media`, `too_long`) and a message a user
/// can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

/// A conversion job, with the spec's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: JobId,
    pub mode: StereoMode,
    pub status: JobStatus,
    pub created_at: UnixSeconds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_segments: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<UnixSeconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<UnixSeconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_file_size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
}

impl Job {
    pub fn new(job_id: JobId, mode: StereoMode, created_at: UnixSeconds) -> Self {
        Self {
            job_id,
            mode,
            status: JobStatus::Created,
            created_at,
            total_segments: None,
            completed_at: None,
            title: None,
            uploaded_at: None,
            source_file_size_bytes: None,
            error: None,
        }
    }

    /// Wall time from upload to completion, when both are known.
    pub fn conversion_seconds(&self) -> Option<i64> {
        match (self.uploaded_at, self.completed_at) {
            (Some(u), Some(c)) if c >= u => Some(c - u),
            _ => None,
        }
    }
}

/// A refused status change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("job is {actual}, expected {expected}")]
    UnexpectedStatus {
        expected: JobStatus,
        actual: JobStatus,
    },
    #[error("a job cannot go from {from} to {to}")]
    NotAllowed { from: JobStatus, to: JobStatus },
    #[error("a job in {0} status cannot be edited")]
    Frozen(JobStatus),
}

/// A conditional change to a job: it applies only while the job is in `expected` status.
/// `None` fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobUpdate {
    pub expected: Option<JobStatus>,
    pub status: Option<JobStatus>,
    pub total_segments: Option<u32>,
    pub completed_at: Option<UnixSeconds>,
    pub title: Option<String>,
    pub uploaded_at: Option<UnixSeconds>,
    pub source_file_size_bytes: Option<u64>,
    pub error: Option<JobError>,
}

impl JobUpdate {
    /// A status change from `from` to `to`.
    pub fn transition(from: JobStatus, to: JobStatus) -> Self {
        Self {
            expected: Some(from),
            status: Some(to),
            ..Self::default()
        }
    }

    /// Fails a job that is in `from`.
    pub fn fail(from: JobStatus, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: Some(JobError {
                code: code.into(),
                message: message.into(),
            }),
            ..Self::transition(from, JobStatus::Failed)
        }
    }

    /// Field edits (title, upload facts) without a status change; refused on deleted jobs.
    pub fn edit() -> Self {
        Self::default()
    }

    /// Applies the update to `job`, enforcing the condition and the status machine.
    pub fn apply(&self, job: &Job) -> Result<Job, TransitionError> {
        if let Some(expected) = self.expected
            && job.status != expected
        {
            return Err(TransitionError::UnexpectedStatus {
                expected,
                actual: job.status,
            });
        }
        if let Some(to) = self.status {
            if !job.status.can_transition_to(to) {
                return Err(TransitionError::NotAllowed {
                    from: job.status,
                    to,
                });
            }
        } else if job.status == JobStatus::Deleted {
            return Err(TransitionError::Frozen(job.status));
        }
        let mut next = job.clone();
        if let Some(s) = self.status {
            next.status = s;
        }
        if let Some(v) = self.total_segments {
            next.total_segments = Some(v);
        }
        if let Some(v) = self.completed_at {
            next.completed_at = Some(v);
        }
        if let Some(v) = &self.title {
            next.title = Some(v.clone());
        }
        if let Some(v) = self.uploaded_at {
            next.uploaded_at = Some(v);
        }
        if let Some(v) = self.source_file_size_bytes {
            next.source_file_size_bytes = Some(v);
        }
        if let Some(v) = &self.error {
            next.error = Some(v.clone());
        }
        Ok(next)
    }
}

/// A converted segment that exists in the output bucket (written when its object-created event
/// arrives, not by polling).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentCompletion {
    pub job_id: JobId,
    pub segment_index: u32,
    /// `s3://bucket/key` of the converted segment.
    pub output_s3_uri: String,
    pub completed_at: UnixSeconds,
    #[serde(default)]
    pub total_segments: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStatus::*;

    fn job(status: JobStatus) -> Job {
        Job {
            status,
            ..Job::new(JobId::from_parts(1, [1; 10]), StereoMode::Anaglyph, 10)
        }
    }

    #[test]
    fn happy_path_is_allowed() {
        let path = [
            Created,
            ChunkingInProgress,
            ChunkingComplete,
            Reassembling,
            Completed,
            Deleted,
        ];
        for w in path.windows(2) {
            assert!(w[0].can_transition_to(w[1]), "{} -> {}", w[0], w[1]);
        }
        assert!(Created.can_transition_to(Ingesting));
        assert!(Ingesting.can_transition_to(Created));
    }

    #[test]
    fn stale_and_backward_transitions_are_refused() {
        assert!(!Completed.can_transition_to(Reassembling));
        assert!(!ChunkingComplete.can_transition_to(ChunkingInProgress));
        assert!(!Deleted.can_transition_to(Created));
        assert!(!Created.can_transition_to(Deleted));
        assert!(!Reassembling.can_transition_to(Deleted));
        assert!(!Failed.can_transition_to(Created));
        for s in JobStatus::ALL {
            assert!(!Deleted.can_transition_to(s));
            assert_eq!(s.is_removable(), matches!(s, Completed | Failed));
        }
    }

    #[test]
    fn every_live_stage_may_fail() {
        for s in [
            Created,
            Ingesting,
            ChunkingInProgress,
            ChunkingComplete,
            Reassembling,
        ] {
            assert!(s.can_transition_to(Failed), "{s}");
        }
    }

    #[test]
    fn apply_checks_the_expected_status() {
        let u = JobUpdate::transition(ChunkingInProgress, ChunkingComplete);
        let err = u.apply(&job(Created)).unwrap_err();
        assert_eq!(
            err,
            TransitionError::UnexpectedStatus {
                expected: ChunkingInProgress,
                actual: Created
            }
        );
        let next = JobUpdate {
            total_segments: Some(4),
            ..u
        }
        .apply(&job(ChunkingInProgress))
        .unwrap();
        assert_eq!(next.status, ChunkingComplete);
        assert_eq!(next.total_segments, Some(4));
    }

    #[test]
    fn apply_refuses_transitions_the_machine_forbids() {
        let u = JobUpdate {
            status: Some(Reassembling),
            ..JobUpdate::default()
        };
        assert!(matches!(
            u.apply(&job(Completed)),
            Err(TransitionError::NotAllowed { .. })
        ));
    }

    #[test]
    fn edits_are_refused_on_deleted_jobs() {
        let u = JobUpdate {
            title: Some("x".into()),
            ..JobUpdate::edit()
        };
        assert_eq!(
            u.apply(&job(Deleted)),
            Err(TransitionError::Frozen(Deleted))
        );
        assert_eq!(
            u.apply(&job(Completed)).unwrap().title.as_deref(),
            Some("x")
        );
    }

    #[test]
    fn fail_records_the_reason() {
        let j = JobUpdate::fail(ChunkingInProgress, "not_media", "not a video")
            .apply(&job(ChunkingInProgress))
            .unwrap();
        assert_eq!(j.status, Failed);
        assert_eq!(j.error.unwrap().code, "not_media");
    }

    #[test]
    fn wire_names_match_the_spec() {
        assert_eq!(
            serde_json::to_string(&ChunkingInProgress).unwrap(),
            "\"chunking_in_progress\""
        );
        assert_eq!(serde_json::to_string(&StereoMode::Sbs).unwrap(), "\"sbs\"");
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        for m in StereoMode::ALL {
            assert_eq!(m.as_str().parse::<StereoMode>().unwrap(), m);
        }
        assert!("3d".parse::<StereoMode>().is_err());
    }

    #[test]
    fn job_json_round_trips() {
        let mut j = job(Completed);
        j.title = Some("Attack on titan".into());
        j.total_segments = Some(3);
        let s = serde_json::to_string(&j).unwrap();
        assert_eq!(serde_json::from_str::<Job>(&s).unwrap(), j);
    }
}
