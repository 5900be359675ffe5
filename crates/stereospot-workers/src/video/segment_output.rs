//! Segment output: a converted segment's object-created event becomes a `SegmentCompletion`,
//! followed by the reassembly trigger check.

use std::sync::Arc;

use async_trait::async_trait;
use stereospot_core::payload::SegmentOutputPayload;
use stereospot_core::platform::{Message, Queue};
use stereospot_core::{JobStatus, SegmentCompletion};

use crate::context::WorkerContext;
use crate::error::{Failure, ForJob};
use crate::events::event_object;
use crate::runner::{Handler, Outcome};
use crate::trigger::maybe_trigger_reassembly;

/// Consumes the segment-output queue.
#[derive(Debug)]
pub struct SegmentOutputHandler {
    ctx: WorkerContext,
}

impl SegmentOutputHandler {
    pub fn new(ctx: WorkerContext) -> Self {
        Self { ctx }
    }
}

#[async_trait]
impl Handler for SegmentOutputHandler {
    fn name(&self) -> &'static str {
        "segment-output"
    }

    fn queue(&self) -> &Arc<dyn Queue> {
        &self.ctx.platform.queues.segment_output
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
        // `jobs/{job}/final.mp4` arrives on this queue too (same prefix and suffix): skipped.
        let payload = match SegmentOutputPayload::from_output_key(&obj.bucket, &obj.key) {
            Some(payload) if obj.bucket == p.buckets.output => payload,
            _ => {
                return Ok(Outcome::skipped(
                    None,
                    format!("not a segment output: {}/{}", obj.bucket, obj.key),
                ));
            }
        };
        let job_id = payload.job_id;
        let job = match self
            .ctx
            .job_of_message(job_id, Some(payload.segment_index))
            .await?
        {
            Ok(job) => job,
            Err(skip) => return Ok(skip),
        };
        if matches!(job.status, JobStatus::Failed | JobStatus::Deleted) {
            return Ok(Outcome::skipped(
                Some(job_id),
                format!("job is {}", job.status),
            ));
        }
        p.completions
            .put(&SegmentCompletion {
                job_id,
                segment_index: payload.segment_index,
                output_s3_uri: payload.output_s3_uri,
                completed_at: self.ctx.now(),
                total_segments: job.total_segments,
            })
            .await
            .job(job_id)?;
        tracing::debug!("segment completion recorded");
        maybe_trigger_reassembly(&self.ctx, job_id)
            .await
            .job(job_id)?;
        Ok(Outcome::Done { job_id })
    }
}
