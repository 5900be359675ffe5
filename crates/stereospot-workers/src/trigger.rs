//! The reassembly trigger: when a `chunking_complete` job has a completion for every segment,
//! create the per-job trigger record conditionally and send exactly one reassembly message.
//!
//! It runs after every segment completion (the spec's trigger-on-write) and also after chunking
//! completes: a job whose segments were all converted before its `chunking_complete` update
//! landed (short jobs, fast backends, redelivered chunking messages) would otherwise never be
//! triggered, since no completion would arrive after the status change.

use stereospot_core::payload::{ReassemblyPayload, encode};
use stereospot_core::platform::Result;
use stereospot_core::{JobId, JobStatus};

use crate::context::WorkerContext;

/// What the trigger check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The job is gone, not yet `chunking_complete`, or past it.
    NotReady,
    /// `done` of `total` segments are complete.
    Waiting { done: u32, total: u32 },
    /// This call created the trigger and sent the reassembly message.
    Sent,
    /// Another call already triggered the job.
    AlreadyTriggered,
}

/// Checks the job and triggers its reassembly when every segment is complete.
pub async fn maybe_trigger_reassembly(ctx: &WorkerContext, job_id: JobId) -> Result<Trigger> {
    let p = &ctx.platform;
    let Some(job) = p.jobs.get(job_id).await? else {
        return Ok(Trigger::NotReady);
    };
    if job.status != JobStatus::ChunkingComplete {
        return Ok(Trigger::NotReady);
    }
    let Some(total) = job.total_segments.filter(|t| *t > 0) else {
        return Ok(Trigger::NotReady);
    };
    let completions = p.completions.list(job_id).await?;
    // Count distinct indices in range: a stray record cannot stand in for a missing segment.
    let mut seen = vec![false; total as usize];
    for c in &completions {
        if let Some(slot) = seen.get_mut(c.segment_index as usize) {
            *slot = true;
        }
    }
    let done = u32::try_from(seen.iter().filter(|s| **s).count()).unwrap_or(u32::MAX);
    if done < total {
        tracing::debug!(done, total, "segments still converting");
        return Ok(Trigger::Waiting { done, total });
    }
    if !p.reassembly_lock.try_trigger(job_id, ctx.now()).await? {
        tracing::debug!("reassembly already triggered");
        return Ok(Trigger::AlreadyTriggered);
    }
    let body = encode(&ReassemblyPayload { job_id });
    if let Err(e) = p.queues.reassembly.send(&body).await {
        // Undo the trigger so the redelivered message can trigger again. (No claim can exist
        // yet: reassembly only starts from this message.) A crash exactly between the two
        // writes still loses the trigger; see the crate docs.
        if let Err(clear) = p.reassembly_lock.clear(job_id).await {
            tracing::error!(error = %clear, "cannot undo the reassembly trigger after a failed send");
        }
        return Err(e);
    }
    tracing::info!(total, "all segments converted: reassembly triggered");
    Ok(Trigger::Sent)
}
