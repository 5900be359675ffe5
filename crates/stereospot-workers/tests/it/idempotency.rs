//! Reassembly, deletion and the reassembly trigger are idempotent.

use std::sync::Arc;

use stereospot_core::payload::{DeletionPayload, ReassemblyPayload, encode};
use stereospot_core::{JobStatus, JobUpdate, SegmentCompletion, StereoMode};
use stereospot_workers::Outcome;
use stereospot_workers::trigger::{Trigger, maybe_trigger_reassembly};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_reassembly_message_for_a_completed_job_changes_nothing() {
    let env = env().await;
    let id = env
        .submit(&video("realshort.mp4"), StereoMode::Anaglyph)
        .await;
    env.pump().await;
    let before = env.job(id).await;
    assert_status(&before, JobStatus::Completed);
    let b = &env.platform.buckets.output;
    let key = stereospot_core::ObjectKey::final_output(id).to_string();
    let meta = env.platform.storage.head(b, &key).await.unwrap().unwrap();

    let body = encode(&ReassemblyPayload { job_id: id });
    env.platform.queues.reassembly.send(&body).await.unwrap();
    env.platform.queues.reassembly.send(&body).await.unwrap();
    let log = env.pump().await;

    assert_eq!(log.len(), 2, "{log:?}");
    for (w, o) in &log {
        assert_eq!(*w, "reassembly");
        assert!(
            matches!(o, Outcome::Skipped { reason, .. } if reason == "already completed"),
            "{o:?}"
        );
    }
    assert_eq!(env.job(id).await, before);
    assert_eq!(
        env.platform.storage.head(b, &key).await.unwrap().unwrap(),
        meta
    );
    assert_eq!(env.queued().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_removes_everything_of_a_deleted_job_and_runs_twice_harmlessly() {
    let env = env().await;
    let id = env.submit(&video("book.mkv"), StereoMode::Sbs).await;
    let other = env.submit(&video("realshort.mp4"), StereoMode::Sbs).await;
    env.pump().await;
    assert_status(&env.job(id).await, JobStatus::Completed);
    let other_keys = env.job_objects(other).await;
    assert!(env.job_objects(id).await.len() > 3);

    // A deletion message for a job that is not deleted is ignored.
    let body = encode(&DeletionPayload { job_id: id });
    env.platform.queues.deletion.send(&body).await.unwrap();
    let log = env.pump().await;
    assert!(
        matches!(&log[..], [("deletion", Outcome::Skipped { .. })]),
        "{log:?}"
    );
    assert!(!env.job_objects(id).await.is_empty());

    env.platform
        .jobs
        .update(
            id,
            &JobUpdate::transition(JobStatus::Completed, JobStatus::Deleted),
        )
        .await
        .unwrap();
    env.platform.queues.deletion.send(&body).await.unwrap();
    env.platform.queues.deletion.send(&body).await.unwrap();
    let log = env.pump().await;
    assert_eq!(count(&log, "deletion", is_done), 2, "{log:?}");

    assert_eq!(env.job_objects(id).await, Vec::<String>::new());
    assert!(env.platform.completions.list(id).await.unwrap().is_empty());
    // The trigger record is gone too: a new trigger would succeed.
    assert!(
        env.platform
            .reassembly_lock
            .try_trigger(id, 0)
            .await
            .unwrap()
    );
    // The job row stays, deleted; the other job is untouched.
    assert_status(&env.job(id).await, JobStatus::Deleted);
    assert_eq!(env.job_objects(other).await, other_keys);
    assert_eq!(env.queued().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_last_completions_send_exactly_one_reassembly_message() {
    let env = env().await;
    let id = env.create_job(StereoMode::Anaglyph).await;
    let jobs = &env.platform.jobs;
    jobs.update(
        id,
        &JobUpdate::transition(JobStatus::Created, JobStatus::ChunkingInProgress),
    )
    .await
    .unwrap();
    let total = 4;
    for i in 0..total {
        env.platform
            .completions
            .put(&SegmentCompletion {
                job_id: id,
                segment_index: i,
                output_s3_uri: format!("s3://out/jobs/{id}/segments/{i:05}.mp4"),
                completed_at: 0,
                total_segments: None,
            })
            .await
            .unwrap();
    }
    // Every segment done before chunking finished: nothing may be triggered yet.
    assert_eq!(
        maybe_trigger_reassembly(&env.ctx, id).await.unwrap(),
        Trigger::NotReady
    );
    jobs.update(
        id,
        &JobUpdate {
            total_segments: Some(total),
            ..JobUpdate::transition(JobStatus::ChunkingInProgress, JobStatus::ChunkingComplete)
        },
    )
    .await
    .unwrap();

    let ctx = Arc::new(env.ctx.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let ctx = ctx.clone();
        tasks.spawn(async move { maybe_trigger_reassembly(&ctx, id).await.unwrap() });
    }
    let mut results = Vec::new();
    while let Some(r) = tasks.join_next().await {
        results.push(r.unwrap());
    }
    assert_eq!(
        results.iter().filter(|r| **r == Trigger::Sent).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| **r == Trigger::AlreadyTriggered)
            .count(),
        7
    );
    assert_eq!(
        env.platform
            .queues
            .reassembly
            .depth()
            .await
            .unwrap()
            .visible,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trigger_waits_for_every_segment_index() {
    let env = env().await;
    let id = env.create_job(StereoMode::Anaglyph).await;
    let jobs = &env.platform.jobs;
    jobs.update(
        id,
        &JobUpdate::transition(JobStatus::Created, JobStatus::ChunkingInProgress),
    )
    .await
    .unwrap();
    jobs.update(
        id,
        &JobUpdate {
            total_segments: Some(3),
            ..JobUpdate::transition(JobStatus::ChunkingInProgress, JobStatus::ChunkingComplete)
        },
    )
    .await
    .unwrap();
    // Index 7 is out of range and cannot stand in for the missing index 2.
    for i in [0, 1, 7] {
        env.platform
            .completions
            .put(&SegmentCompletion {
                job_id: id,
                segment_index: i,
                output_s3_uri: format!("s3://out/jobs/{id}/segments/{i:05}.mp4"),
                completed_at: 0,
                total_segments: Some(3),
            })
            .await
            .unwrap();
    }
    assert_eq!(
        maybe_trigger_reassembly(&env.ctx, id).await.unwrap(),
        Trigger::Waiting { done: 2, total: 3 }
    );
    assert_eq!(
        env.platform
            .queues
            .reassembly
            .depth()
            .await
            .unwrap()
            .visible,
        0
    );
}
