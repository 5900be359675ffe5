//! Conformance tests of [`JobStore`], [`SegmentCompletionStore`] and [`ReassemblyLock`].

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use stereospot_core::platform::{JobListKind, JobStore, PageRequest, PlatformError};
use stereospot_core::{
    Job, JobId, JobStatus, JobUpdate, SegmentCompletion, StereoMode, TransitionError,
};
use tokio::sync::Barrier;

use crate::Harness;

/// A job id unique across tests and processes (time, process id and a counter).
pub fn new_job_id() -> JobId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut random = [0u8; 10];
    random[..4].copy_from_slice(&std::process::id().to_be_bytes());
    random[4..8].copy_from_slice(&(n as u32).to_be_bytes());
    random[8..].copy_from_slice(&(now as u16).to_be_bytes());
    JobId::from_parts((now / 1_000_000) as u64, random)
}

/// A new job created at `created_at`.
pub fn new_job(created_at: i64) -> Job {
    Job::new(new_job_id(), StereoMode::Anaglyph, created_at)
}

/// get/put/create/update on one job.
pub async fn job_crud(h: &dyn Harness) {
    let store = h.job_store().await;
    let mut job = new_job(1_000);
    assert_eq!(store.get(job.job_id).await.expect("get"), None);

    store.create(&job).await.expect("create");
    assert_eq!(
        store.get(job.job_id).await.expect("get").as_ref(),
        Some(&job)
    );

    job.title = Some("Holiday \"2024\" — ünïcode".into());
    job.source_file_size_bytes = Some(12_345);
    store.put(&job).await.expect("put replaces");
    assert_eq!(
        store.get(job.job_id).await.expect("get").as_ref(),
        Some(&job)
    );

    let update = JobUpdate {
        total_segments: Some(7),
        ..JobUpdate::transition(JobStatus::Created, JobStatus::ChunkingInProgress)
    };
    let next = store.update(job.job_id, &update).await.expect("update");
    assert_eq!(next.status, JobStatus::ChunkingInProgress);
    assert_eq!(next.total_segments, Some(7));
    assert_eq!(next.title, job.title, "untouched fields are kept");
    assert_eq!(store.get(job.job_id).await.expect("get"), Some(next));

    let unknown = new_job_id();
    match store.update(unknown, &JobUpdate::edit()).await {
        Err(PlatformError::NotFound(_)) => {}
        other => panic!("update of an unknown job: expected NotFound, got {other:?}"),
    }
    assert_eq!(store.get(unknown).await.expect("get"), None);
}

/// Creating an id twice is `AlreadyExists` and leaves the first job as it was.
pub async fn create_twice_is_already_exists(h: &dyn Harness) {
    let store = h.job_store().await;
    let job = new_job(2_000);
    store.create(&job).await.expect("create");
    let mut other = job.clone();
    other.title = Some("second".into());
    other.mode = StereoMode::Sbs;
    match store.create(&other).await {
        Err(PlatformError::AlreadyExists(_)) => {}
        other => panic!("second create: expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(store.get(job.job_id).await.expect("get"), Some(job));
}

/// Updates the status machine or the expected status refuse change nothing.
pub async fn update_refuses_stale_and_forbidden_transitions(h: &dyn Harness) {
    let store = h.job_store().await;
    let job = new_job(3_000);
    store.create(&job).await.expect("create");

    let stale = JobUpdate::transition(JobStatus::ChunkingInProgress, JobStatus::ChunkingComplete);
    match store.update(job.job_id, &stale).await {
        Err(PlatformError::Transition(TransitionError::UnexpectedStatus { .. })) => {}
        other => panic!("stale expected status: got {other:?}"),
    }
    let forbidden = JobUpdate {
        status: Some(JobStatus::Completed),
        ..JobUpdate::default()
    };
    match store.update(job.job_id, &forbidden).await {
        Err(PlatformError::Transition(TransitionError::NotAllowed { .. })) => {}
        other => panic!("created -> completed: got {other:?}"),
    }
    assert_eq!(store.get(job.job_id).await.expect("get"), Some(job.clone()));

    let mut deleted = new_job(3_001);
    deleted.status = JobStatus::Deleted;
    store.put(&deleted).await.expect("put");
    let edit = JobUpdate {
        title: Some("x".into()),
        ..JobUpdate::edit()
    };
    match store.update(deleted.job_id, &edit).await {
        Err(PlatformError::Transition(TransitionError::Frozen(JobStatus::Deleted))) => {}
        other => panic!("edit of a deleted job: got {other:?}"),
    }
    assert_eq!(store.get(deleted.job_id).await.expect("get"), Some(deleted));
}

/// 16 concurrent updaters from the same expected status: exactly one wins, and the stored job
/// is the winner's.
pub async fn concurrent_updates_exactly_one_wins(h: &dyn Harness) {
    let store = h.job_store().await;
    for round in 0..5 {
        let job = new_job(4_000 + round);
        store.create(&job).await.expect("create");
        let barrier = Arc::new(Barrier::new(16));
        let mut tasks = Vec::new();
        for i in 0..16u32 {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let id = job.job_id;
            tasks.push(tokio::spawn(async move {
                let update = JobUpdate {
                    total_segments: Some(i + 1),
                    ..JobUpdate::transition(JobStatus::Created, JobStatus::ChunkingInProgress)
                };
                barrier.wait().await;
                (i + 1, store.update(id, &update).await)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (i, result) = t.await.expect("task");
            match result {
                Ok(j) => {
                    assert_eq!(j.total_segments, Some(i));
                    winners.push(i);
                }
                Err(PlatformError::Transition(TransitionError::UnexpectedStatus {
                    actual: JobStatus::ChunkingInProgress,
                    ..
                })) => {}
                Err(e) => panic!("loser got an unexpected error: {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let stored = store.get(job.job_id).await.expect("get").expect("job");
        assert_eq!(stored.status, JobStatus::ChunkingInProgress);
        assert_eq!(
            stored.total_segments,
            Some(winners[0]),
            "the winner's write is kept"
        );
    }
}

async fn list_all(store: &Arc<dyn JobStore>, kind: JobListKind, limit: u32) -> Vec<Job> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(limit);
    for _ in 0..1000 {
        let p = store.list(kind, page.clone()).await.expect("list");
        assert!(
            p.items.len() <= limit as usize,
            "page larger than its limit"
        );
        out.extend(p.items);
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return out,
        }
    }
    panic!("listing did not end");
}

/// Paging through each listing returns every matching job exactly once, newest first, and never
/// a deleted job.
pub async fn list_pagination_covers_every_job_once(h: &dyn Harness) {
    let store = h.job_store().await;
    let mut in_progress = Vec::new();
    let mut completed = Vec::new();
    let mut failed = Vec::new();
    let statuses = [
        JobStatus::Created,
        JobStatus::Ingesting,
        JobStatus::ChunkingInProgress,
        JobStatus::ChunkingComplete,
        JobStatus::Reassembling,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Deleted,
    ];
    for i in 0..40i64 {
        // Ties in created_at on purpose: pagination must not skip or repeat them.
        let mut job = new_job(10_000 + i / 3);
        job.status = statuses[(i as usize) % statuses.len()];
        if job.status == JobStatus::Completed {
            job.completed_at = Some(20_000 - i);
            completed.push(job.job_id);
        } else if job.status == JobStatus::Failed {
            failed.push(job.job_id);
        } else if job.status != JobStatus::Deleted {
            in_progress.push(job.job_id);
        }
        store.put(&job).await.expect("put");
    }
    for (kind, expected) in [
        (JobListKind::InProgress, &in_progress),
        (JobListKind::Completed, &completed),
        (JobListKind::Failed, &failed),
    ] {
        for limit in [1, 3, 100] {
            let jobs = list_all(&store, kind, limit).await;
            let ids: Vec<JobId> = jobs.iter().map(|j| j.job_id).collect();
            let unique: HashSet<JobId> = ids.iter().copied().collect();
            assert_eq!(
                unique.len(),
                ids.len(),
                "{kind:?} limit {limit}: duplicates"
            );
            assert_eq!(
                unique,
                expected.iter().copied().collect::<HashSet<_>>(),
                "{kind:?} limit {limit}: wrong set"
            );
            assert!(jobs.iter().all(|j| j.status != JobStatus::Deleted));
            let keys: Vec<i64> = jobs
                .iter()
                .map(|j| match kind {
                    JobListKind::Completed => j.completed_at.expect("completed_at"),
                    _ => j.created_at,
                })
                .collect();
            assert!(
                keys.windows(2).all(|w| w[0] >= w[1]),
                "{kind:?} limit {limit}: not newest first: {keys:?}"
            );
        }
    }

    // A job leaves a listing when its status changes, and a removed job is never listed.
    let moved = in_progress[0];
    let current = store.get(moved).await.expect("get").expect("job");
    store
        .update(
            moved,
            &JobUpdate::fail(current.status, "test", "failed on purpose"),
        )
        .await
        .expect("fail");
    store
        .update(
            moved,
            &JobUpdate::transition(JobStatus::Failed, JobStatus::Deleted),
        )
        .await
        .expect("delete");
    for kind in [
        JobListKind::InProgress,
        JobListKind::Completed,
        JobListKind::Failed,
    ] {
        let jobs = list_all(&store, kind, 7).await;
        assert!(
            jobs.iter().all(|j| j.job_id != moved),
            "{kind:?} lists a deleted job"
        );
    }
}

/// Completions are listed by segment index, a repeated put replaces, and delete_job removes one
/// job's completions only.
pub async fn completions_ordered_and_idempotent(h: &dyn Harness) {
    let store = h.completions().await;
    let job = new_job_id();
    let other = new_job_id();
    let completion = |job_id: JobId, i: u32, uri: &str| SegmentCompletion {
        job_id,
        segment_index: i,
        output_s3_uri: uri.to_owned(),
        completed_at: 100 + i64::from(i),
        total_segments: Some(12),
    };
    assert!(store.list(job).await.expect("list").is_empty());
    for i in [3, 0, 11, 2, 1, 10] {
        store
            .put(&completion(job, i, &format!("s3://out/{i}")))
            .await
            .expect("put");
    }
    store
        .put(&completion(other, 0, "s3://other/0"))
        .await
        .expect("put");
    store
        .put(&completion(job, 2, "s3://out/2-again"))
        .await
        .expect("put again");
    store
        .put(&completion(job, 2, "s3://out/2-again"))
        .await
        .expect("put again");

    let listed = store.list(job).await.expect("list");
    let indexes: Vec<u32> = listed.iter().map(|c| c.segment_index).collect();
    assert_eq!(
        indexes,
        vec![0, 1, 2, 3, 10, 11],
        "ordered numerically, no duplicates"
    );
    assert_eq!(listed[2], completion(job, 2, "s3://out/2-again"));
    assert_eq!(listed[5], completion(job, 11, "s3://out/11"));

    store.delete_job(job).await.expect("delete_job");
    assert!(store.list(job).await.expect("list").is_empty());
    assert_eq!(store.list(other).await.expect("list").len(), 1);
}

/// 16 concurrent triggers of one job: exactly one `true`; later ones `false`; clear resets.
pub async fn trigger_exactly_once(h: &dyn Harness) {
    let lock = h.reassembly_lock().await;
    let job = new_job_id();
    let barrier = Arc::new(Barrier::new(16));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let lock = Arc::clone(&lock);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            lock.try_trigger(job, 1_000).await.expect("try_trigger")
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.expect("task"));
    }
    assert_eq!(wins, 1, "exactly one trigger wins");
    assert!(!lock.try_trigger(job, 2_000).await.expect("try_trigger"));
    assert!(
        lock.try_trigger(new_job_id(), 1_000)
            .await
            .expect("another job")
    );
    lock.clear(job).await.expect("clear");
    assert!(lock.try_trigger(job, 3_000).await.expect("after clear"));
}

/// 16 concurrent claimers: exactly one holds the claim; it renews, others wait for expiry or
/// release.
pub async fn claim_exactly_one_and_expiry(h: &dyn Harness) {
    let lock = h.reassembly_lock().await;
    let job = new_job_id();
    assert!(lock.try_trigger(job, 1_000).await.expect("trigger"));
    let barrier = Arc::new(Barrier::new(16));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let lock = Arc::clone(&lock);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let owner = format!("worker-{i}");
            barrier.wait().await;
            let won = lock
                .try_claim(job, &owner, 1_000, 60)
                .await
                .expect("try_claim");
            (owner, won)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (owner, won) = t.await.expect("task");
        if won {
            winners.push(owner);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let holder = winners.remove(0);
    let other = if holder == "worker-0" {
        "worker-1"
    } else {
        "worker-0"
    };

    // The holder may claim again (renewing), others may not while the lease runs.
    assert!(
        lock.try_claim(job, &holder, 1_030, 60)
            .await
            .expect("renew")
    );
    assert!(
        !lock
            .try_claim(job, other, 1_089, 60)
            .await
            .expect("during lease")
    );
    // The claim never blocks the trigger logic.
    assert!(!lock.try_trigger(job, 1_050).await.expect("trigger"));
    // The renewed lease ends at 1_090: then another worker takes over, and the old one is out.
    assert!(
        lock.try_claim(job, other, 1_090, 60)
            .await
            .expect("after expiry")
    );
    assert!(
        !lock
            .try_claim(job, &holder, 1_091, 60)
            .await
            .expect("old holder")
    );

    // Release by a non-holder does nothing; by the holder frees the claim.
    lock.release(job, &holder)
        .await
        .expect("release by non-holder");
    assert!(
        !lock
            .try_claim(job, "worker-x", 1_100, 60)
            .await
            .expect("still held")
    );
    lock.release(job, other).await.expect("release");
    assert!(
        lock.try_claim(job, "worker-x", 1_100, 60)
            .await
            .expect("after release")
    );

    // Clear removes everything for the job.
    lock.clear(job).await.expect("clear");
    assert!(
        lock.try_claim(job, "worker-y", 1_101, 60)
            .await
            .expect("after clear")
    );
    assert!(
        lock.try_trigger(job, 1_102)
            .await
            .expect("trigger after clear")
    );
}
