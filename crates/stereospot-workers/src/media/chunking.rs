//! Chunking: a source upload becomes segments.
//!
//! source-upload event -> job `chunking_in_progress` -> download the source -> validate and cut
//! ([`Media::chunk`], which validates first) -> upload every segment under its canonical key ->
//! `total_segments` and `chunking_complete` in one conditional update -> reassembly trigger
//! check. Bad input fails the job with the media layer's stable code and message and deletes
//! the message; machine trouble (timeouts, I/O) is retried and fails the job only at the last
//! attempt.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use stereospot_core::platform::{Message, PlatformError, Queue};
use stereospot_core::{Job, JobId, JobStatus, JobUpdate, ObjectKey};
use stereospot_media::{ChunkOptions, Media};

use crate::analysis::{SourceAnalyzer, store};
use crate::context::{WorkDir, WorkerContext, run_media};
use crate::error::{Failure, ForJob, WorkerError};
use crate::events::event_object;
use crate::runner::{Handler, Outcome};
use crate::trigger::maybe_trigger_reassembly;

/// Consumes the chunking queue.
#[derive(Debug)]
pub struct ChunkingHandler {
    ctx: WorkerContext,
    media: Media,
    options: ChunkOptions,
    analyzer: Option<Arc<dyn SourceAnalyzer>>,
}

impl ChunkingHandler {
    /// Segments of the configured duration, with the media layer's default method (stream copy
    /// where the keyframes allow, re-encode otherwise).
    pub fn new(ctx: WorkerContext, media: Media) -> Self {
        let options = ChunkOptions {
            target_duration: ctx.config.segment_duration,
            ..ChunkOptions::default()
        };
        Self {
            ctx,
            media,
            options,
            analyzer: None,
        }
    }

    /// Computes the job's statistics ([`crate::analysis`]) with `analyzer` before the segments
    /// are uploaded.
    pub fn with_analyzer(mut self, analyzer: Option<Arc<dyn SourceAnalyzer>>) -> Self {
        self.analyzer = analyzer;
        self
    }

    /// Replaces the chunking options.
    pub fn with_options(mut self, options: ChunkOptions) -> Self {
        self.options = options;
        self
    }

    async fn chunk(&self, job: &Job, key: &str) -> Result<Outcome, Failure> {
        let work = self.ctx.work_dir("chunk").await.job(job.job_id)?;
        let result = self.chunk_in(&work, job, key).await;
        work.close().await;
        result
    }

    async fn chunk_in(&self, work: &WorkDir, job: &Job, key: &str) -> Result<Outcome, Failure> {
        let p = &self.ctx.platform;
        let job_id = job.job_id;
        let source = work.join("source.mp4");
        let t0 = std::time::Instant::now();
        let size = match p.storage.get_to_file(&p.buckets.input, key, &source).await {
            Ok(size) => size,
            Err(PlatformError::NotFound(_)) => {
                return Ok(Outcome::skipped(Some(job_id), "the source is gone"));
            }
            Err(e) => return Err(Failure::new(Some(job_id), e)),
        };
        tracing::info!(bytes = size, "source downloaded; validating and cutting");
        let started = std::time::Instant::now();
        let (media, options, segments_dir) = (
            self.media.clone(),
            self.options.clone(),
            work.join("segments"),
        );
        let chunked =
            run_media(move || async move { media.chunk(&source, &segments_dir, &options).await })
                .await
                .job(job_id)?;
        let chunked = match chunked {
            Ok(c) => c,
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
        let total = u32::try_from(chunked.segments.len()).unwrap_or(u32::MAX);
        // Before any segment exists (their uploads start the conversions).
        if let Some(analyzer) = &self.analyzer {
            let firsts: Vec<u64> = chunked.segments.iter().map(|s| s.first_frame).collect();
            let t = std::time::Instant::now();
            match analyzer.analyze(&work.join("source.mp4"), &firsts).await {
                Ok(stats) => {
                    store(&*p.storage, &p.buckets.input, job_id, &stats)
                        .await
                        .job(job_id)?;
                    tracing::info!(
                        model = %stats.depth_model,
                        seconds = t.elapsed().as_secs_f64(),
                        "job statistics stored"
                    );
                }
                // The segments seed themselves instead: worse joints, not a failed job.
                Err(e) => tracing::warn!(error = %e, "cannot compute the job statistics"),
            }
        }
        for seg in &chunked.segments {
            let seg_key = ObjectKey::segment(job_id, seg.index, total, job.mode)
                .ok_or_else(|| {
                    WorkerError::Internal(format!(
                        "segment {} of {total} has no valid key",
                        seg.index
                    ))
                })
                .job(job_id)?
                .to_string();
            p.storage
                .put_file(&p.buckets.input, &seg_key, &seg.path)
                .await
                .job(job_id)?;
        }
        tracing::info!(
            segments = total,
            frames = chunked.frame_count,
            method = ?chunked.method,
            why = %chunked.reason,
            seconds = started.elapsed().as_secs_f64(),
            "segments uploaded"
        );
        crate::metrics::chunked(t0.elapsed());
        let update = JobUpdate {
            total_segments: Some(total),
            source_file_size_bytes: job.source_file_size_bytes.is_none().then_some(size),
            ..JobUpdate::transition(JobStatus::ChunkingInProgress, JobStatus::ChunkingComplete)
        };
        match p.jobs.update(job_id, &update).await {
            Ok(_) => {}
            Err(PlatformError::Transition(e)) => {
                return Ok(Outcome::skipped(
                    Some(job_id),
                    format!("job changed while chunking: {e}"),
                ));
            }
            Err(e) => return Err(Failure::new(Some(job_id), e)),
        }
        self.trigger(job_id).await?;
        Ok(Outcome::Done { job_id })
    }

    async fn trigger(&self, job_id: JobId) -> Result<(), Failure> {
        maybe_trigger_reassembly(&self.ctx, job_id)
            .await
            .map(|_| ())
            .job(job_id)
    }
}

#[async_trait]
impl Handler for ChunkingHandler {
    fn name(&self) -> &'static str {
        "chunking"
    }

    fn queue(&self) -> &Arc<dyn Queue> {
        &self.ctx.platform.queues.chunking
    }

    fn context(&self) -> &WorkerContext {
        &self.ctx
    }

    async fn handle(&self, message: &Message) -> Result<Outcome, Failure> {
        let p = &self.ctx.platform;
        let obj = match event_object(&message.body) {
            Ok(o) => o,
            Err(outcome) => return Ok(outcome),
        };
        let job_id = match ObjectKey::parse(&obj.key) {
            Ok(ObjectKey::Source { job_id }) if obj.bucket == p.buckets.input => job_id,
            _ => {
                return Ok(Outcome::skipped(
                    None,
                    format!("not a source upload: {}/{}", obj.bucket, obj.key),
                ));
            }
        };
        let job = match self.ctx.job_of_message(job_id, None).await? {
            Ok(job) => job,
            Err(skip) => return Ok(skip),
        };
        match job.status {
            // A redelivery after a crash re-runs chunking: segment keys are deterministic.
            JobStatus::Created | JobStatus::ChunkingInProgress => {}
            JobStatus::Ingesting => {
                // The ingest handler stores the source and then, milliseconds later, moves the
                // job back to `created`: this event usually beats that update, so look again
                // soon rather than after the full retry delay.
                return Ok(Outcome::Retry {
                    job_id: Some(job_id),
                    reason: "the job is still ingesting".into(),
                    delay: self.ctx.config.retry_delay.min(Duration::from_secs(1)),
                });
            }
            JobStatus::ChunkingComplete => {
                // A duplicate: make sure the trigger check ran (the first delivery may have
                // stopped between the update and the check).
                self.trigger(job_id).await?;
                return Ok(Outcome::skipped(Some(job_id), "already chunked"));
            }
            other => {
                return Ok(Outcome::skipped(Some(job_id), format!("job is {other}")));
            }
        }
        let job = match self.ctx.claim(&job, JobStatus::ChunkingInProgress).await? {
            Ok(job) => job,
            Err(skip) => return Ok(skip),
        };
        self.ctx
            .with_heartbeat(self.queue(), message, self.chunk(&job, &obj.key))
            .await
    }
}
