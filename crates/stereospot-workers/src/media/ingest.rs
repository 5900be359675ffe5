//! Ingest: a URL becomes the job's source.
//!
//! ingest message -> job `ingesting` -> yt-dlp downloads through the filtering proxy
//! ([`stereospot_media::ingest::download`]: scheme check, address checks on every connection,
//! height, size and duration limits) -> upload to `input/{job}/source.mp4` -> title,
//! `uploaded_at`, `source_file_size_bytes` and back to `created` in one conditional update.
//! The upload's object-created event then drives chunking as for a browser upload (a chunking
//! message that arrives while the job is still `ingesting` is retried).
//!
//! A URL at fault (bad scheme, forbidden address, unavailable video, too big or too long) fails
//! the job at once with a stable code and a readable reason; machine or network trouble (yt-dlp
//! missing, timeouts, connection errors) is retried with back-off and fails the job at the last
//! attempt, as in every handler.
//!
//! Idempotent under redelivery: a job that is `created` and already has its source is skipped
//! (the ingest finished, or the source was uploaded directly); an `ingesting` job is ingested
//! again (its worker died: the download is repeated and the same key overwritten); any other
//! status means the job moved on and the message is dropped.

use std::sync::Arc;

use async_trait::async_trait;
use stereospot_core::payload::{IngestPayload, IngestSource, decode};
use stereospot_core::platform::{Message, PlatformError, Queue};
use stereospot_core::{Job, JobStatus, JobUpdate, ObjectKey};
use stereospot_media::ingest::download;

use crate::context::{WorkDir, WorkerContext};
use crate::error::{Failure, ForJob};
use crate::runner::{Handler, Outcome};

/// Consumes the ingest queue.
#[derive(Debug)]
pub struct IngestHandler {
    ctx: WorkerContext,
}

impl IngestHandler {
    pub fn new(ctx: WorkerContext) -> Self {
        Self { ctx }
    }

    async fn ingest(&self, job: &Job, url: &str) -> Result<Outcome, Failure> {
        let work = self.ctx.work_dir("ingest").await.job(job.job_id)?;
        let result = self.ingest_in(&work, job, url).await;
        work.close().await;
        result
    }

    async fn ingest_in(&self, work: &WorkDir, job: &Job, url: &str) -> Result<Outcome, Failure> {
        let p = &self.ctx.platform;
        let job_id = job.job_id;
        tracing::info!(url, "ingesting");
        let got = match download(&self.ctx.config.ingest, url, &work.join("download")).await {
            Ok(got) => got,
            Err(e) if e.is_input_error() => {
                let code = e.code();
                self.ctx
                    .fail_job(job_id, code, &e.to_string())
                    .await
                    .job(job_id)?;
                return Ok(Outcome::JobFailed {
                    job_id,
                    code: code.to_string(),
                });
            }
            Err(e) => return Err(Failure::new(Some(job_id), e)),
        };
        let key = ObjectKey::source(job_id).to_string();
        let meta = p
            .storage
            .put_file(&p.buckets.input, &key, &got.path)
            .await
            .job(job_id)?;
        let update = JobUpdate {
            title: got.title.clone(),
            uploaded_at: Some(self.ctx.now()),
            source_file_size_bytes: Some(meta.size),
            ..JobUpdate::transition(JobStatus::Ingesting, JobStatus::Created)
        };
        match p.jobs.update(job_id, &update).await {
            Ok(_) => {}
            Err(PlatformError::Transition(e)) => {
                // Failed or removed meanwhile: chunking will find it so and skip the source.
                return Ok(Outcome::skipped(
                    Some(job_id),
                    format!("job changed while ingesting: {e}"),
                ));
            }
            Err(e) => return Err(Failure::new(Some(job_id), e)),
        }
        tracing::info!(
            bytes = meta.size,
            title = got.title.as_deref().unwrap_or(""),
            extractor = got.extractor.as_deref().unwrap_or(""),
            "source ingested"
        );
        Ok(Outcome::Done { job_id })
    }
}

#[async_trait]
impl Handler for IngestHandler {
    fn name(&self) -> &'static str {
        "ingest"
    }

    fn queue(&self) -> &Arc<dyn Queue> {
        &self.ctx.platform.queues.ingest
    }

    fn context(&self) -> &WorkerContext {
        &self.ctx
    }

    async fn handle(&self, message: &Message) -> Result<Outcome, Failure> {
        let p = &self.ctx.platform;
        let payload: IngestPayload = match decode("ingest", &message.body) {
            Ok(payload) => payload,
            Err(e) => return Ok(Outcome::skipped(None, e.to_string())),
        };
        let job_id = payload.job_id;
        let IngestSource::Url { source_url } = &payload.source;
        let job = match self.ctx.job_of_message(job_id, None).await? {
            Ok(job) => job,
            Err(skip) => return Ok(skip),
        };
        match job.status {
            JobStatus::Created => {
                let key = ObjectKey::source(job_id).to_string();
                if p.storage
                    .head(&p.buckets.input, &key)
                    .await
                    .job(job_id)?
                    .is_some()
                {
                    return Ok(Outcome::skipped(
                        Some(job_id),
                        "the source is already there",
                    ));
                }
            }
            // A redelivery after a crash: download again.
            JobStatus::Ingesting => {}
            other => return Ok(Outcome::skipped(Some(job_id), format!("job is {other}"))),
        }
        let job = match self.ctx.claim(&job, JobStatus::Ingesting).await? {
            Ok(job) => job,
            Err(skip) => return Ok(skip),
        };
        self.ctx
            .with_heartbeat(self.queue(), message, self.ingest(&job, source_url))
            .await
    }
}
