//! The reassembly trigger: when a `chunking_complete` job has a completion for every segment,
//! create the per-job trigger record conditionally and send exactly one reassembly message.
//!
//! It runs after every segment completion (the spec's trigger-on-write) and also after chunking
//! completes: a job whose segments were all converted before its `chunking_complete` update
//! landed (short jobs, fast backends, redelivered chunking messages) would otherwise never be
//! triggered, since no completion would arrive after the status change.

use std::time::Duration;

use stereospot_core::payload::{ReassemblyPayload, encode};
use stereospot_core::platform::{JobListKind, PageRequest, Result};
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
        // writes is caught later by `sweep_lost_reassemblies`.
        if let Err(clear) = p.reassembly_lock.clear(job_id).await {
            tracing::error!(error = %clear, "cannot undo the reassembly trigger after a failed send");
        }
        return Err(e);
    }
    tracing::info!(total, "all segments converted: reassembly triggered");
    Ok(Trigger::Sent)
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    /// `chunking_complete` jobs looked at.
    pub checked: u32,
    /// Jobs never triggered that the sweep triggered now.
    pub triggered: u32,
    /// Jobs triggered long ago but never reassembled whose reassembly message was sent again.
    pub resent: u32,
}

/// Most jobs one sweep looks at.
const SWEEP_MAX_JOBS: u32 = 10_000;

/// Finds `chunking_complete` jobs whose segments are all converted but whose reassembly never
/// started, and sends their reassembly message (again). Closes the window between creating the
/// trigger record and sending the message: a crash there leaves the record and no message, and
/// every later check finds the job already triggered. A job counts as lost when its newest
/// completion is at least `after` old and it is still `chunking_complete` (the reassembly handler
/// moves it to `reassembling` as soon as it picks the message up). A duplicate message is
/// harmless: reassembly is idempotent.
pub async fn sweep_lost_reassemblies(ctx: &WorkerContext, after: Duration) -> Result<Sweep> {
    let p = &ctx.platform;
    let mut sweep = Sweep::default();
    let mut page = PageRequest::first(100);
    let mut seen = 0;
    loop {
        let jobs = p.jobs.list(JobListKind::InProgress, page.clone()).await?;
        for job in &jobs.items {
            seen += 1;
            if job.status != JobStatus::ChunkingComplete {
                continue;
            }
            sweep.checked += 1;
            let span = tracing::info_span!("reassembly_sweep", job_id = %job.job_id);
            let _entered = span.enter();
            match maybe_trigger_reassembly(ctx, job.job_id).await? {
                Trigger::Sent => sweep.triggered += 1,
                Trigger::AlreadyTriggered => {
                    let completions = p.completions.list(job.job_id).await?;
                    let newest = completions.iter().map(|c| c.completed_at).max();
                    let age = newest.map(|t| ctx.now().saturating_sub(t));
                    if age.is_some_and(|a| a >= i64::try_from(after.as_secs()).unwrap_or(i64::MAX))
                    {
                        p.queues
                            .reassembly
                            .send(&encode(&ReassemblyPayload { job_id: job.job_id }))
                            .await?;
                        crate::metrics::reassembly_resent();
                        tracing::warn!(
                            age_seconds = age,
                            "reassembly triggered but never started: message sent again"
                        );
                        sweep.resent += 1;
                    }
                }
                Trigger::NotReady | Trigger::Waiting { .. } => {}
            }
        }
        match jobs.next_cursor {
            Some(cursor) if seen < SWEEP_MAX_JOBS => page.cursor = Some(cursor),
            _ => break,
        }
    }
    Ok(sweep)
}
