//! Inference: a segment upload becomes a converted segment.
//!
//! segment event -> the backend converts `segments/{job}/{i}_{n}_{mode}.mp4` into
//! `jobs/{job}/segments/{i:05}.mp4` -> the message is deleted once the output exists. The
//! message's visibility is extended while the segment runs. The completion is recorded by the
//! segment-output handler when the output's own object-created event arrives, not here.

use std::sync::Arc;

use async_trait::async_trait;
use stereospot_core::keys::{parse_s3_uri, s3_uri};
use stereospot_core::payload::VideoWorkerPayload;
use stereospot_core::platform::{Message, Queue};

use crate::analysis::load_depth_seed;
use crate::backend::{BackendData, ConvertContext, InferenceBackend};
use crate::context::{WorkDir, WorkerContext};
use crate::error::{Failure, ForJob, WorkerError};
use crate::events::event_object;
use crate::runner::{Handler, Outcome};

/// Consumes the video-worker (inference) queue.
#[derive(Debug)]
pub struct InferenceHandler {
    ctx: WorkerContext,
    backend: Arc<dyn InferenceBackend>,
}

impl InferenceHandler {
    pub fn new(ctx: WorkerContext, backend: Arc<dyn InferenceBackend>) -> Self {
        Self { ctx, backend }
    }

    async fn convert(
        &self,
        payload: &VideoWorkerPayload,
        output_key: &str,
    ) -> Result<Outcome, Failure> {
        let job_id = payload.job_id;
        let work = self.ctx.work_dir("segment").await.job(job_id)?;
        let result = self.convert_in(&work, payload, output_key).await;
        work.close().await;
        result
    }

    async fn convert_in(
        &self,
        work: &WorkDir,
        payload: &VideoWorkerPayload,
        output_key: &str,
    ) -> Result<Outcome, Failure> {
        let p = &self.ctx.platform;
        let job_id = payload.job_id;
        let depth_seed =
            load_depth_seed(&*p.storage, &p.buckets.input, job_id, payload.segment_index)
                .await
                .job(job_id)?;
        let cctx = ConvertContext {
            job_id,
            segment_index: payload.segment_index,
            total_segments: payload.total_segments,
            input_uri: payload.segment_s3_uri.clone(),
            output_uri: s3_uri(&p.buckets.output, output_key),
            depth_seed,
        };
        let input = work.join("input.mp4");
        let output = work.join("output.mp4");
        let started = std::time::Instant::now();
        let (bucket, key) = parse_s3_uri(&payload.segment_s3_uri)
            .ok_or_else(|| WorkerError::Internal("bad segment URI".into()))
            .job(job_id)?;
        let input_bytes = match self.backend.data() {
            BackendData::LocalFiles => {
                let size = p
                    .storage
                    .get_to_file(bucket, key, &input)
                    .await
                    .job(job_id)?;
                self.backend
                    .convert(&input, &output, payload.mode, &cctx)
                    .await
                    .job(job_id)?;
                p.storage
                    .put_file(&p.buckets.output, output_key, &output)
                    .await
                    .job(job_id)?;
                size
            }
            BackendData::Storage => {
                let size = p
                    .storage
                    .head(bucket, key)
                    .await
                    .job(job_id)?
                    .map_or(0, |m| m.size);
                self.backend
                    .convert(&input, &output, payload.mode, &cctx)
                    .await
                    .job(job_id)?;
                size
            }
        };
        if p.storage
            .head(&p.buckets.output, output_key)
            .await
            .job(job_id)?
            .is_none()
        {
            return Err(Failure::new(
                Some(job_id),
                WorkerError::Internal(format!(
                    "the {} backend reported success but {} does not exist",
                    self.backend.name(),
                    cctx.output_uri
                )),
            ));
        }
        tracing::info!(
            backend = self.backend.name(),
            mode = %payload.mode,
            seconds = started.elapsed().as_secs_f64(),
            "segment converted"
        );
        crate::metrics::segment_converted(self.backend.name(), started.elapsed(), input_bytes);
        Ok(Outcome::Done { job_id })
    }
}

#[async_trait]
impl Handler for InferenceHandler {
    fn name(&self) -> &'static str {
        "inference"
    }

    fn queue(&self) -> &Arc<dyn Queue> {
        &self.ctx.platform.queues.video_worker
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
        let payload = match VideoWorkerPayload::from_segment_key(&obj.bucket, &obj.key) {
            Some(payload) if obj.bucket == p.buckets.input => payload,
            _ => {
                return Ok(Outcome::skipped(
                    None,
                    format!("not a segment: {}/{}", obj.bucket, obj.key),
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
        if job.status.is_terminal() {
            return Ok(Outcome::skipped(
                Some(job_id),
                format!("job is {}", job.status),
            ));
        }
        let output_key = payload.output_key().to_string();
        if p.storage
            .head(&p.buckets.output, &output_key)
            .await
            .job(job_id)?
            .is_some()
        {
            // A duplicate delivery: the output (and its event) exist already.
            return Ok(Outcome::skipped(Some(job_id), "segment already converted"));
        }
        self.ctx
            .with_heartbeat(self.queue(), message, self.convert(&payload, &output_key))
            .await
    }
}
