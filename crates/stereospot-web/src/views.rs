//! What pages and JSON show of a job, and the page templates (askama: compiled into the binary,
//! every `{{ }}` HTML-escaped).

use askama::Template;
use serde::Serialize;
use stereospot_core::platform::Platform;
use stereospot_core::progress::{eta_seconds, job_seconds_per_mb, progress};
use stereospot_core::{Job, JobError, JobStatus, StereoMode, UnixSeconds};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::AppState;
use crate::error::WebError;

/// A job as the UI and the JSON API show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobView {
    pub job_id: String,
    pub mode: StereoMode,
    pub status: JobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub progress_percent: u8,
    pub stage: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_segments: Option<u32>,
    pub completed_segments: u32,
    pub created_at: UnixSeconds,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<UnixSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<UnixSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_file_size_bytes: Option<u64>,
    /// Seconds left, from the average seconds per MB of recent jobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversion_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_per_mb: Option<f64>,
    /// Presigned playback URL (JSON of a completed job only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playback_url: Option<String>,
}

impl JobView {
    /// The view of `job` with `completed_segments` converted, at `now`.
    pub fn new(
        job: &Job,
        completed_segments: u32,
        avg_seconds_per_mb: Option<f64>,
        now: UnixSeconds,
    ) -> Self {
        let p = progress(job, completed_segments);
        // Past conversion every segment is done.
        let completed_segments = match job.status {
            JobStatus::Reassembling | JobStatus::Completed => {
                job.total_segments.unwrap_or(completed_segments)
            }
            _ => completed_segments,
        };
        Self {
            job_id: job.job_id.to_string(),
            mode: job.mode,
            status: job.status,
            title: job.title.clone(),
            progress_percent: p.percent,
            stage: p.stage,
            error: job.error.clone(),
            total_segments: job.total_segments,
            completed_segments,
            created_at: job.created_at,
            uploaded_at: job.uploaded_at,
            completed_at: job.completed_at,
            source_file_size_bytes: job.source_file_size_bytes,
            eta_seconds: eta_seconds(job, avg_seconds_per_mb, now),
            conversion_seconds: (job.status == JobStatus::Completed)
                .then(|| job.conversion_seconds())
                .flatten(),
            seconds_per_mb: (job.status == JobStatus::Completed)
                .then(|| job_seconds_per_mb(job))
                .flatten(),
            playback_url: None,
        }
    }

    /// Reads what a job's view needs from the stores (segment completions only while
    /// segments are being converted).
    pub async fn load(state: &AppState, job: &Job) -> Result<Self, WebError> {
        let completed = if job.status == JobStatus::ChunkingComplete {
            let n = state.platform.completions.list(job.job_id).await?.len();
            u32::try_from(n).unwrap_or(u32::MAX)
        } else {
            0
        };
        let avg = if job.status.is_terminal() {
            None
        } else {
            state.eta.seconds_per_mb(state.platform.jobs.as_ref()).await
        };
        Ok(Self::new(job, completed, avg, crate::now()))
    }

    /// The views of listed jobs (no per-job store reads: progress of converting jobs shows
    /// their stage without the segment count).
    pub fn list(jobs: &[Job]) -> Vec<Self> {
        let now = crate::now();
        jobs.iter().map(|j| Self::new(j, 0, None, now)).collect()
    }

    pub fn display_title(&self) -> String {
        match &self.title {
            Some(t) => t.clone(),
            None => format!("Untitled job {}", &self.job_id[..8]),
        }
    }

    pub fn mode_label(&self) -> &'static str {
        self.mode.label()
    }

    pub fn mode_short(&self) -> &'static str {
        match self.mode {
            StereoMode::Anaglyph => "Anaglyph",
            StereoMode::Sbs => "Side-by-side",
            StereoMode::Hsbs => "Half SBS",
            StereoMode::Tab => "Top-bottom",
        }
    }

    pub fn status_str(&self) -> &'static str {
        self.status.as_str()
    }

    pub fn is_completed(&self) -> bool {
        self.status == JobStatus::Completed
    }

    pub fn is_failed(&self) -> bool {
        self.status == JobStatus::Failed
    }

    pub fn is_removable(&self) -> bool {
        self.status.is_removable()
    }

    /// Waiting for its source: the upload (or URL) form is shown.
    pub fn awaits_source(&self) -> bool {
        self.status == JobStatus::Created && self.uploaded_at.is_none()
    }

    /// The stage shown under the progress bar.
    pub fn stage_text(&self) -> String {
        if self.status == JobStatus::Created && self.uploaded_at.is_some() {
            "Uploaded; waiting for a worker".to_string()
        } else {
            self.stage.clone()
        }
    }

    pub fn eta_text(&self) -> String {
        self.eta_seconds.map(duration_text).unwrap_or_default()
    }

    pub fn eta_attr(&self) -> String {
        self.eta_seconds.map(|s| s.to_string()).unwrap_or_default()
    }

    /// "Conversion: 3 min (12.5 sec/MB)".
    pub fn conversion_text(&self) -> Option<String> {
        let secs = self.conversion_seconds?;
        let minutes = secs as f64 / 60.0;
        let time = if minutes < 10.0 {
            format!("{minutes:.1} min")
        } else {
            format!("{minutes:.0} min")
        };
        Some(match self.seconds_per_mb {
            Some(r) => format!("Conversion: {time} ({r:.1} sec/MB)"),
            None => format!("Conversion: {time}"),
        })
    }

    pub fn created_text(&self) -> String {
        date_text(self.created_at)
    }

    pub fn size_text(&self) -> String {
        self.source_file_size_bytes
            .map(|b| format!("{:.1} MB", b as f64 / 1e6))
            .unwrap_or_default()
    }

    pub fn error_message(&self) -> String {
        self.error
            .as_ref()
            .map(|e| e.message.clone())
            .unwrap_or_else(|| "The conversion failed".to_string())
    }

    pub fn error_code(&self) -> String {
        self.error
            .as_ref()
            .map(|e| e.code.clone())
            .unwrap_or_default()
    }
}

/// "1 h 5 min", "3 min 20 s", "45 s".
pub fn duration_text(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min {s} s")
    } else {
        format!("{s} s")
    }
}

/// "2025-03-01 14:05 UTC".
pub fn date_text(t: UnixSeconds) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// Navigation bar contents: operator links only when the platform provides them.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    pub logs_url: Option<String>,
    pub cost_url: Option<String>,
}

impl Nav {
    pub fn plain() -> Self {
        Self::default()
    }

    pub fn from_platform(platform: &Platform) -> Self {
        match &platform.operator_links {
            Some(links) => Self {
                logs_url: links.logs_url(),
                cost_url: links.cost_url(),
            },
            None => Self::default(),
        }
    }
}

pub fn render<T: Template>(t: &T) -> Result<String, WebError> {
    t.render()
        .map_err(|e| WebError::internal("rendering a page failed", &e))
}

/// A mode choice in the create form.
#[derive(Debug, Clone)]
pub struct ModeChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

pub fn mode_choices() -> Vec<ModeChoice> {
    StereoMode::ALL
        .iter()
        .map(|m| ModeChoice {
            value: m.as_str(),
            label: m.label(),
            checked: *m == StereoMode::Anaglyph,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub nav: Nav,
    pub modes: Vec<ModeChoice>,
    pub in_progress: Vec<JobView>,
    pub finished: Vec<JobView>,
    pub notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "jobs.html")]
pub struct JobsPage {
    pub nav: Nav,
    pub in_progress: Vec<JobView>,
    pub completed: Vec<JobView>,
    pub failed: Vec<JobView>,
    pub older_url: Option<String>,
    pub is_first_page: bool,
    pub notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "job.html")]
pub struct JobPage {
    pub nav: Nav,
    pub job: JobView,
    pub upload_url: Option<String>,
    pub max_upload_bytes: u64,
    pub max_upload_text: String,
    pub ingest_enabled: bool,
    pub push_available: bool,
    pub download_name: String,
    pub notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "launch.html")]
pub struct LaunchPage {
    pub nav: Nav,
    pub job: Option<JobView>,
    pub jobs: Vec<JobView>,
    pub pot3d_url: String,
    pub playlist_url: String,
}

#[derive(Template)]
#[template(path = "setup_windows.html")]
pub struct SetupPage {
    pub nav: Nav,
    pub base_url: String,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub nav: Nav,
    pub status: u16,
    pub reason: &'a str,
    pub message: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use stereospot_core::JobId;

    #[test]
    fn conversion_text_and_durations() {
        let mut j = Job::new(JobId::from_parts(1, [0; 10]), StereoMode::Anaglyph, 0);
        j.status = JobStatus::Completed;
        j.uploaded_at = Some(100);
        j.completed_at = Some(280);
        j.source_file_size_bytes = Some(12_000_000);
        let v = JobView::new(&j, 0, None, 300);
        assert_eq!(
            v.conversion_text().as_deref(),
            Some("Conversion: 3.0 min (15.0 sec/MB)")
        );
        assert_eq!(duration_text(200), "3 min 20 s");
        assert_eq!(duration_text(3700), "1 h 1 min");
        assert_eq!(duration_text(9), "9 s");
        assert_eq!(date_text(0), "1970-01-01 00:00 UTC");
    }
}
