//! Reassembly: the converted segments and the source's audio become `jobs/{job}/final.mp4`.
//!
//! Only the holder of the job's reassembly claim works on it; the claim is a lease, renewed by
//! the heartbeat while the join runs, so a worker that dies releases the job when its lease
//! runs out. A message for a job that is already completed changes nothing.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use stereospot_core::keys::parse_s3_uri;
use stereospot_core::payload::{ReassemblyPayload, decode};
use stereospot_core::platform::{Message, PlatformError, Queue};
use stereospot_core::{Job, JobStatus, JobUpdate, ObjectKey};
use stereospot_media::{JoinOptions, Media};

use crate::context::{Heartbeat, WorkDir, WorkerContext, extend, run_media};
use crate::error::{Failure, ForJob, WorkerError};
use crate::runner::{Handler, Outcome};

/// Consumes the reassembly queue.
#[derive(Debug)]
pub struct ReassemblyHandler {
    ctx: WorkerContext,
    media: Media,
    owner: String,
}

impl ReassemblyHandler {
    pub fn new(ctx: WorkerContext, media: Media) -> Self {
        // Unique per handler: the claim is re-entrant for its owner only.
        let owner = format!(
            "reassembly-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        Self { ctx, media, owner }
    }

    /// The name this handler claims jobs under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn lease_secs(&self) -> u64 {
        self.ctx.config.reassembly_lease.as_secs().max(1)
    }

    async fn reassemble(&self, job: &Job) -> Result<Outcome, Failure> {
        let work = self.ctx.work_dir("join").await.job(job.job_id)?;
        let result = self.reassemble_in(&work, job).await;
        work.close().await;
        result
    }

    async fn reassemble_in(&self, work: &WorkDir, job: &Job) -> Result<Outcome, Failure> {
        let p = &self.ctx.platform;
        let job_id = job.job_id;
        let total = job
            .total_segments
            .ok_or_else(|| WorkerError::Internal("the job has no segment count".into()))
            .job(job_id)?;
        let completions = p.completions.list(job_id).await.job(job_id)?;
        // Exactly one output per index 0..total, in index order.
        let mut uris: Vec<Option<&str>> = vec![None; total as usize];
        for c in &completions {
            if let Some(slot) = uris.get_mut(c.segment_index as usize) {
                *slot = Some(&c.output_s3_uri);
            }
        }
        let started = std::time::Instant::now();
        let mut segments: Vec<PathBuf> = Vec::with_capacity(uris.len());
        for (i, uri) in uris.iter().enumerate() {
            let uri = uri
                .ok_or_else(|| {
                    WorkerError::Internal(format!("segment {i} of {total} has no completion"))
                })
                .job(job_id)?;
            let (bucket, key) = parse_s3_uri(uri)
                .ok_or_else(|| WorkerError::Internal(format!("bad output URI {uri:?}")))
                .job(job_id)?;
            let path = work.join(&format!("{i:05}.mp4"));
            p.storage
                .get_to_file(bucket, key, &path)
                .await
                .job(job_id)?;
            segments.push(path);
        }
        let source = work.join("source.mp4");
        p.storage
            .get_to_file(
                &p.buckets.input,
                &ObjectKey::source(job_id).to_string(),
                &source,
            )
            .await
            .job(job_id)?;
        let output = work.join("final.mp4");
        let (media, joined_path) = (self.media.clone(), output.clone());
        let joined = run_media(move || async move {
            let options = JoinOptions {
                audio_from: Some(source),
                timeout: None,
            };
            media.join(&segments, &joined_path, &options).await
        })
        .await
        .job(job_id)?
        .job(job_id)?;
        p.storage
            .put_file(
                &p.buckets.output,
                &ObjectKey::final_output(job_id).to_string(),
                &output,
            )
            .await
            .job(job_id)?;
        let update = JobUpdate {
            completed_at: Some(self.ctx.now()),
            ..JobUpdate::transition(JobStatus::Reassembling, JobStatus::Completed)
        };
        match p.jobs.update(job_id, &update).await {
            Ok(_) => {}
            Err(PlatformError::Transition(e)) => {
                return Ok(Outcome::skipped(
                    Some(job_id),
                    format!("job changed while joining: {e}"),
                ));
            }
            Err(e) => return Err(Failure::new(Some(job_id), e)),
        }
        tracing::info!(
            segments = total,
            frames = joined.frame_count,
            audio = ?joined.audio,
            seconds = started.elapsed().as_secs_f64(),
            "job completed"
        );
        crate::metrics::reassembled(started.elapsed());
        Ok(Outcome::Done { job_id })
    }
}

#[async_trait]
impl Handler for ReassemblyHandler {
    fn name(&self) -> &'static str {
        "reassembly"
    }

    fn queue(&self) -> &Arc<dyn Queue> {
        &self.ctx.platform.queues.reassembly
    }

    fn context(&self) -> &WorkerContext {
        &self.ctx
    }

    async fn handle(&self, message: &Message) -> Result<Outcome, Failure> {
        let p = &self.ctx.platform;
        let payload: ReassemblyPayload = match decode("reassembly", &message.body) {
            Ok(p) => p,
            Err(e) => return Ok(Outcome::skipped(None, e.to_string())),
        };
        let job_id = payload.job_id;
        let job = match self.ctx.job_of_message(job_id, None).await? {
            Ok(job) => job,
            Err(skip) => return Ok(skip),
        };
        match job.status {
            JobStatus::ChunkingComplete | JobStatus::Reassembling => {}
            JobStatus::Completed => {
                return Ok(Outcome::skipped(Some(job_id), "already completed"));
            }
            other => return Ok(Outcome::skipped(Some(job_id), format!("job is {other}"))),
        }
        let lease = self.lease_secs();
        let claimed = p
            .reassembly_lock
            .try_claim(job_id, &self.owner, self.ctx.now(), lease)
            .await
            .job(job_id)?;
        if !claimed {
            // Someone else is joining. If they finish, the next delivery finds the job
            // completed; if they die, their lease has run out by then.
            return Ok(Outcome::Retry {
                job_id: Some(job_id),
                reason: "another worker holds the reassembly claim".into(),
                delay: self.ctx.config.reassembly_lease,
            });
        }
        let job = if job.status == JobStatus::ChunkingComplete {
            match p
                .jobs
                .update(
                    job_id,
                    &JobUpdate::transition(JobStatus::ChunkingComplete, JobStatus::Reassembling),
                )
                .await
            {
                Ok(job) => job,
                Err(e) => {
                    self.release(job_id).await;
                    return match e {
                        PlatformError::Transition(t) => {
                            Ok(Outcome::skipped(Some(job_id), format!("job changed: {t}")))
                        }
                        e => Err(Failure::new(Some(job_id), e)),
                    };
                }
            }
        } else {
            job
        };
        tracing::info!("reassembling");
        let heartbeat = {
            let queue = self.queue().clone();
            let receipt = message.receipt.clone();
            let lock = p.reassembly_lock.clone();
            let owner = self.owner.clone();
            let ctx = self.ctx.clone();
            let extension = self.ctx.config.visibility_extension;
            Heartbeat::start(self.ctx.config.heartbeat_interval, move || {
                let (queue, receipt, lock, owner, ctx) = (
                    queue.clone(),
                    receipt.clone(),
                    lock.clone(),
                    owner.clone(),
                    ctx.clone(),
                );
                async move {
                    extend(&*queue, &receipt, extension).await;
                    match lock.try_claim(job_id, &owner, ctx.now(), lease).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!("reassembly claim lost to another worker"),
                        Err(e) => tracing::warn!(error = %e, "cannot renew the reassembly claim"),
                    }
                }
            })
        };
        let result = self.reassemble(&job).await;
        heartbeat.stop().await;
        self.release(job_id).await;
        result
    }
}

impl ReassemblyHandler {
    async fn release(&self, job_id: stereospot_core::JobId) {
        if let Err(e) = self
            .ctx
            .platform
            .reassembly_lock
            .release(job_id, &self.owner)
            .await
        {
            tracing::warn!(error = %e, "cannot release the reassembly claim; its lease will expire");
        }
    }
}
