//! Deletion: removes everything a `deleted` job left behind (source, segments, segment
//! outputs, final file, completions, reassembly record). The job row stays, `deleted`.
//! Idempotent: a second message finds nothing left to remove.

use std::sync::Arc;

use async_trait::async_trait;
use stereospot_core::payload::{DeletionPayload, decode};
use stereospot_core::platform::{Message, Queue};
use stereospot_core::{JobStatus, ObjectKey};

use crate::context::WorkerContext;
use crate::error::{Failure, ForJob};
use crate::runner::{Handler, Outcome};

/// Consumes the deletion queue.
#[derive(Debug)]
pub struct DeletionHandler {
    ctx: WorkerContext,
}

impl DeletionHandler {
    pub fn new(ctx: WorkerContext) -> Self {
        Self { ctx }
    }
}

#[async_trait]
impl Handler for DeletionHandler {
    fn name(&self) -> &'static str {
        "deletion"
    }

    fn queue(&self) -> &Arc<dyn Queue> {
        &self.ctx.platform.queues.deletion
    }

    fn context(&self) -> &WorkerContext {
        &self.ctx
    }

    async fn handle(&self, message: &Message) -> Result<Outcome, Failure> {
        let p = &self.ctx.platform;
        let payload: DeletionPayload = match decode("deletion", &message.body) {
            Ok(p) => p,
            Err(e) => return Ok(Outcome::skipped(None, e.to_string())),
        };
        let job_id = payload.job_id;
        let job = match self.ctx.job_of_message(job_id, None).await? {
            Ok(job) => job,
            Err(skip) => return Ok(skip),
        };
        if job.status != JobStatus::Deleted {
            return Ok(Outcome::skipped(
                Some(job_id),
                format!("job is {}, not deleted", job.status),
            ));
        }
        let mut removed = 0;
        for (in_input, prefix) in ObjectKey::job_prefixes(job_id) {
            let bucket = if in_input {
                &p.buckets.input
            } else {
                &p.buckets.output
            };
            removed += p.storage.delete_prefix(bucket, &prefix).await.job(job_id)?;
        }
        p.completions.delete_job(job_id).await.job(job_id)?;
        p.reassembly_lock.clear(job_id).await.job(job_id)?;
        tracing::info!(objects = removed, "job data removed");
        Ok(Outcome::Done { job_id })
    }
}
