//! The shared conformance suite's job, completion, lock and queue tests on the local platform.

use crate::harness::LocalHarness;

macro_rules! conformance {
    ($($module:ident :: $test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                let h = LocalHarness::new().await;
                stereospot_testkit::$module::$test(&h).await;
            }
        )*
    };
}

conformance! {
    jobs::job_crud,
    jobs::create_twice_is_already_exists,
    jobs::update_refuses_stale_and_forbidden_transitions,
    jobs::concurrent_updates_exactly_one_wins,
    jobs::list_pagination_covers_every_job_once,
    jobs::completions_ordered_and_idempotent,
    jobs::trigger_exactly_once,
    jobs::claim_exactly_one_and_expiry,
    queue::send_receive_delete,
    queue::batch_limits,
    queue::redelivery_after_visibility_timeout,
    queue::dead_letter_after_max_receives,
    queue::stale_receipt_cannot_delete,
    queue::change_visibility_extends,
    queue::long_poll_wakes_on_send,
    queue::concurrent_consumers_drain_without_duplicates,
}

// Local-only behaviour: what the shared suite cannot see from one process and one handle.

mod local {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use stereospot_core::platform::{JobStore, PlatformError, Queue, ReceiveOptions};
    use stereospot_core::{JobStatus, JobUpdate, TransitionError};
    use stereospot_local::{Db, LocalJobStore, LocalQueue, QueueConfig};
    use stereospot_testkit::jobs::new_job;

    fn config(visibility: Duration) -> QueueConfig {
        QueueConfig {
            visibility_timeout: visibility,
            max_receives: 5,
            dead_letter: None,
        }
    }

    fn wait(wait: Duration) -> ReceiveOptions {
        ReceiveOptions {
            max_messages: 1,
            wait,
            visibility_timeout: None,
        }
    }

    /// Two handles on one file behave like two processes: separate connections, locks and
    /// wake-up signals. The conditional update must still let exactly one updater win (this is
    /// what `BEGIN IMMEDIATE` is for; the in-process mutex cannot help here).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn conditional_update_is_atomic_across_connections() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = Arc::new(LocalJobStore::new(
            Db::open(dir.path()).await.expect("open"),
        ));
        let b = Arc::new(LocalJobStore::new(
            Db::open(dir.path()).await.expect("open"),
        ));
        for round in 0..5 {
            let job = new_job(round);
            a.create(&job).await.expect("create");
            let barrier = Arc::new(tokio::sync::Barrier::new(16));
            let mut tasks = Vec::new();
            for i in 0..16u32 {
                let store: Arc<dyn JobStore> = if i % 2 == 0 { a.clone() } else { b.clone() };
                let barrier = Arc::clone(&barrier);
                tasks.push(tokio::spawn(async move {
                    let update = JobUpdate {
                        total_segments: Some(i + 1),
                        ..JobUpdate::transition(JobStatus::Created, JobStatus::ChunkingInProgress)
                    };
                    barrier.wait().await;
                    store.update(job.job_id, &update).await
                }));
            }
            let mut wins = 0;
            for t in tasks {
                match t.await.expect("task") {
                    Ok(_) => wins += 1,
                    Err(PlatformError::Transition(TransitionError::UnexpectedStatus {
                        ..
                    })) => {}
                    Err(e) => panic!("round {round}: {e:?}"),
                }
            }
            assert_eq!(wins, 1, "round {round}");
        }
    }

    /// With the cross-process re-check pushed out to 30 s, only the in-process signal can wake
    /// a waiting receive this fast.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_wakes_a_waiting_receive_without_polling() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(dir.path()).await.expect("open");
        let q = Arc::new(
            LocalQueue::new(db.clone(), "q", config(Duration::from_secs(30)))
                .with_cross_process_poll(Duration::from_secs(30)),
        );
        // Another handle of the same queue name shares the signal.
        let sender = LocalQueue::new(db, "q", config(Duration::from_secs(30)));
        for _ in 0..3 {
            let waiter = {
                let q = Arc::clone(&q);
                tokio::spawn(async move {
                    let got = q
                        .receive(&wait(Duration::from_secs(10)))
                        .await
                        .expect("receive");
                    (got, Instant::now())
                })
            };
            tokio::time::sleep(Duration::from_millis(200)).await;
            let sent_at = Instant::now();
            let id = sender.send("x").await.expect("send");
            let (got, at) = waiter.await.expect("task");
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].id, id);
            let latency = at.saturating_duration_since(sent_at);
            assert!(
                latency < Duration::from_secs(1),
                "woken {latency:?} after the send"
            );
            q.delete(&got[0].receipt).await.expect("delete");
        }
    }

    /// A waiting receive wakes when an in-flight message's visibility runs out.
    #[tokio::test]
    async fn a_waiting_receive_wakes_when_visibility_expires() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(dir.path()).await.expect("open");
        let q = LocalQueue::new(db, "q", config(Duration::from_secs(1)))
            .with_cross_process_poll(Duration::from_secs(30));
        q.send("x").await.expect("send");
        let first = q.receive(&wait(Duration::ZERO)).await.expect("receive");
        assert_eq!(first.len(), 1);
        let t0 = Instant::now();
        let again = q
            .receive(&wait(Duration::from_secs(10)))
            .await
            .expect("receive");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].receive_count, 2);
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_millis(800) && waited < Duration::from_secs(3),
            "woke after {waited:?}"
        );
    }

    /// A message sent through another handle (another process) is found by the periodic
    /// re-check, within about one interval.
    #[tokio::test]
    async fn a_send_from_another_process_is_found_by_the_recheck() {
        let dir = tempfile::tempdir().expect("temp dir");
        let receiver = Arc::new(LocalQueue::new(
            Db::open(dir.path()).await.expect("open"),
            "q",
            config(Duration::from_secs(30)),
        ));
        let sender = LocalQueue::new(
            Db::open(dir.path()).await.expect("open"),
            "q",
            config(Duration::from_secs(30)),
        );
        let waiter = {
            let receiver = Arc::clone(&receiver);
            tokio::spawn(async move {
                let got = receiver.receive(&wait(Duration::from_secs(10))).await;
                (got, Instant::now())
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let sent_at = Instant::now();
        sender.send("from afar").await.expect("send");
        let (got, at) = waiter.await.expect("task");
        assert_eq!(got.expect("receive").len(), 1);
        let latency = at.saturating_duration_since(sent_at);
        assert!(
            latency < Duration::from_secs(2),
            "found {latency:?} after the send"
        );
    }

    /// Messages, their receive counts and receipts survive closing and reopening the database.
    #[tokio::test]
    async fn queue_state_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (receipt, ids) = {
            let q = LocalQueue::new(
                Db::open(dir.path()).await.expect("open"),
                "q",
                config(Duration::from_secs(60)),
            );
            let ids: HashSet<String> = q
                .send_batch(&["a".to_owned(), "b".to_owned()])
                .await
                .expect("send")
                .into_iter()
                .collect();
            let got = q.receive(&wait(Duration::ZERO)).await.expect("receive");
            (got[0].receipt.clone(), ids)
        };
        let q = LocalQueue::new(
            Db::open(dir.path()).await.expect("reopen"),
            "q",
            config(Duration::from_secs(60)),
        );
        let depth = q.depth().await.expect("depth");
        assert_eq!((depth.visible, depth.in_flight), (1, 1));
        q.delete(&receipt).await.expect("the receipt still works");
        let rest = q.receive(&wait(Duration::ZERO)).await.expect("receive");
        assert_eq!(rest.len(), 1);
        assert!(ids.contains(&rest[0].id));
        assert_eq!(rest[0].receive_count, 1);
    }
}
