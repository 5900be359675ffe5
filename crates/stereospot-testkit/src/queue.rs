//! Conformance tests of [`Queue`]: SQS semantics.
//!
//! Written so that a real SQS (which may return fewer messages than are visible) passes too:
//! tests collect messages in loops rather than expecting one receive to return everything.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stereospot_core::platform::{Message, PlatformError, Queue, QueueDepth, ReceiveOptions};

use crate::Harness;

fn options(max_messages: u32, wait: Duration) -> ReceiveOptions {
    ReceiveOptions {
        max_messages,
        wait,
        visibility_timeout: None,
    }
}

/// Receives at most one message, waiting up to `wait`.
async fn receive_one(q: &dyn Queue, wait: Duration) -> Option<Message> {
    let mut got = q.receive(&options(1, wait)).await.expect("receive");
    assert!(got.len() <= 1, "max_messages 1 returned {}", got.len());
    got.pop()
}

/// send, receive, delete, depth.
pub async fn send_receive_delete(h: &dyn Harness) {
    let (q, _dlq) = h.queue(Duration::from_secs(30), 5).await;
    assert_eq!(q.depth().await.expect("depth"), QueueDepth::default());
    let body = r#"{"Records":[{"s3":{"object":{"key":"input/x/source.mp4"}}}]} ✓"#;
    let id = q.send(body).await.expect("send");
    assert_eq!(
        q.depth().await.expect("depth"),
        QueueDepth {
            visible: 1,
            in_flight: 0
        }
    );
    let m = receive_one(q.as_ref(), Duration::from_secs(2))
        .await
        .expect("a message");
    assert_eq!(m.id, id);
    assert_eq!(m.body, body);
    assert_eq!(m.receive_count, 1);
    assert_eq!(
        q.depth().await.expect("depth"),
        QueueDepth {
            visible: 0,
            in_flight: 1
        }
    );
    assert!(
        receive_one(q.as_ref(), Duration::ZERO).await.is_none(),
        "an in-flight message is not delivered again"
    );
    q.delete(&m.receipt).await.expect("delete");
    assert_eq!(q.depth().await.expect("depth"), QueueDepth::default());
    // Deleting again with the same receipt changes nothing (SQS answers success).
    match q.delete(&m.receipt).await {
        Ok(()) | Err(PlatformError::StaleReceipt) => {}
        Err(e) => panic!("second delete: {e:?}"),
    }
}

/// Batches hold 1 to 10 messages; receives ask for 1 to 10.
pub async fn batch_limits(h: &dyn Harness) {
    let (q, _dlq) = h.queue(Duration::from_secs(30), 5).await;
    let bodies: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    let ids = q.send_batch(&bodies).await.expect("send_batch of 10");
    assert_eq!(ids.len(), 10);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        10,
        "ids are distinct"
    );
    let eleven: Vec<String> = (0..11).map(|i| format!("m{i}")).collect();
    assert!(matches!(
        q.send_batch(&eleven).await,
        Err(PlatformError::Invalid(_))
    ));
    for max in [0, 11] {
        assert!(
            matches!(
                q.receive(&options(max, Duration::ZERO)).await,
                Err(PlatformError::Invalid(_))
            ),
            "max_messages {max}"
        );
    }
    let mut got = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 10 && Instant::now() < deadline {
        for m in q
            .receive(&options(10, Duration::from_secs(1)))
            .await
            .expect("receive")
        {
            assert!(got.insert(m.id.clone(), m.body).is_none(), "duplicate");
        }
    }
    let expected: HashMap<String, String> = ids.into_iter().zip(bodies).collect();
    assert_eq!(got, expected, "every message once, with its own body");
}

/// A message not deleted within its visibility timeout is delivered again, with receive_count 2
/// and a new receipt.
pub async fn redelivery_after_visibility_timeout(h: &dyn Harness) {
    let (q, _dlq) = h.queue(Duration::from_secs(1), 5).await;
    let id = q.send("again").await.expect("send");
    let first = receive_one(q.as_ref(), Duration::from_secs(2))
        .await
        .expect("first delivery");
    let t0 = Instant::now();
    assert_eq!(first.receive_count, 1);
    let second = receive_one(q.as_ref(), Duration::from_secs(5))
        .await
        .expect("redelivery");
    assert!(
        t0.elapsed() >= Duration::from_millis(800),
        "redelivered after {:?}, before the visibility timeout",
        t0.elapsed()
    );
    assert_eq!(second.id, id);
    assert_eq!(second.receive_count, 2);
    assert_ne!(
        second.receipt, first.receipt,
        "each delivery has its own receipt"
    );
    q.delete(&second.receipt).await.expect("delete");
}

/// After `max_receives` receives without a delete, the next receive moves the message to the
/// dead-letter queue.
pub async fn dead_letter_after_max_receives(h: &dyn Harness) {
    let (q, dlq) = h.queue(Duration::from_secs(30), 2).await;
    let id = q.send("poison").await.expect("send");
    let immediately_visible = ReceiveOptions {
        max_messages: 1,
        wait: Duration::from_secs(2),
        visibility_timeout: Some(Duration::ZERO),
    };
    for n in 1..=2 {
        let got = q.receive(&immediately_visible).await.expect("receive");
        assert_eq!(got.len(), 1, "receive {n}");
        assert_eq!(got[0].id, id);
        assert_eq!(got[0].receive_count, n);
    }
    let third = q
        .receive(&ReceiveOptions {
            wait: Duration::from_millis(500),
            ..immediately_visible.clone()
        })
        .await
        .expect("receive");
    assert!(third.is_empty(), "a third delivery happened: {third:?}");
    let dead = receive_one(dlq.as_ref(), Duration::from_secs(5))
        .await
        .expect("the message in the dead-letter queue");
    assert_eq!(dead.body, "poison");
    assert_eq!(dead.id, id, "the message keeps its id");
    assert_eq!(q.depth().await.expect("depth"), QueueDepth::default());
    dlq.delete(&dead.receipt)
        .await
        .expect("delete from the DLQ");
}

/// A receipt of an earlier delivery cannot delete (or extend) the message.
pub async fn stale_receipt_cannot_delete(h: &dyn Harness) {
    let (q, _dlq) = h.queue(Duration::from_secs(1), 10).await;
    q.send("fenced").await.expect("send");
    let first = receive_one(q.as_ref(), Duration::from_secs(2))
        .await
        .expect("first delivery");
    let second = receive_one(q.as_ref(), Duration::from_secs(5))
        .await
        .expect("redelivery");
    assert_eq!(second.receive_count, 2);

    match q.delete(&first.receipt).await {
        Ok(()) | Err(PlatformError::StaleReceipt) => {}
        Err(e) => panic!("delete with a stale receipt: {e:?}"),
    }
    // Still there: the current receipt still works, and the message comes back.
    q.change_visibility(&second.receipt, Duration::ZERO)
        .await
        .expect("the current receipt still controls the message");
    let third = receive_one(q.as_ref(), Duration::from_secs(2))
        .await
        .expect("the message survived the stale delete");
    assert_eq!(third.receive_count, 3);
    for stale in [&first.receipt, &second.receipt] {
        match q.delete(stale).await {
            Ok(()) | Err(PlatformError::StaleReceipt) => {}
            Err(e) => panic!("delete with a stale receipt: {e:?}"),
        }
    }
    assert_eq!(q.depth().await.expect("depth").in_flight, 1, "not deleted");
    q.delete(&third.receipt).await.expect("delete");
    assert!(
        receive_one(q.as_ref(), Duration::from_millis(1_500))
            .await
            .is_none(),
        "deleted for good"
    );
}

/// change_visibility extends a delivery past its timeout, and 0 makes it visible at once.
pub async fn change_visibility_extends(h: &dyn Harness) {
    let (q, _dlq) = h.queue(Duration::from_secs(1), 10).await;
    q.send("long work").await.expect("send");
    let m = receive_one(q.as_ref(), Duration::from_secs(2))
        .await
        .expect("message");
    q.change_visibility(&m.receipt, Duration::from_secs(4))
        .await
        .expect("extend");
    assert!(
        receive_one(q.as_ref(), Duration::from_secs(2))
            .await
            .is_none(),
        "delivered again although its visibility was extended"
    );
    q.change_visibility(&m.receipt, Duration::ZERO)
        .await
        .expect("release");
    let again = receive_one(q.as_ref(), Duration::from_secs(2))
        .await
        .expect("visible again");
    assert_eq!(again.receive_count, 2);
    assert!(
        q.change_visibility(&m.receipt, Duration::from_secs(5))
            .await
            .is_err(),
        "a stale receipt cannot extend"
    );
    q.delete(&again.receipt).await.expect("delete");
}

/// A long-poll receive returns soon after a message is sent while it waits, and an empty one
/// waits for (about) its whole wait.
pub async fn long_poll_wakes_on_send(h: &dyn Harness) {
    let (q, _dlq) = h.queue(Duration::from_secs(30), 5).await;
    let t0 = Instant::now();
    assert!(
        receive_one(q.as_ref(), Duration::from_secs(1))
            .await
            .is_none()
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "an empty long poll returned after {:?}",
        t0.elapsed()
    );

    let waiter = {
        let q = Arc::clone(&q);
        tokio::spawn(async move {
            let m = receive_one(q.as_ref(), Duration::from_secs(10)).await;
            (m, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent_at = Instant::now();
    let id = q.send("wake up").await.expect("send");
    let (m, returned_at) = waiter.await.expect("task");
    assert_eq!(m.expect("the message").id, id);
    let latency = returned_at.saturating_duration_since(sent_at);
    assert!(
        latency < Duration::from_secs(1),
        "the waiting receive returned {latency:?} after the send"
    );
}

/// 1,000 messages drained by 4 concurrent consumers: none lost, none delivered twice within one
/// visibility window.
pub async fn concurrent_consumers_drain_without_duplicates(h: &dyn Harness) {
    const N: usize = 1000;
    let (q, _dlq) = h.queue(Duration::from_secs(60), 5).await;
    let mut sent = HashSet::new();
    for chunk in 0..N / 10 {
        let bodies: Vec<String> = (0..10).map(|i| format!("msg-{}", chunk * 10 + i)).collect();
        sent.extend(q.send_batch(&bodies).await.expect("send_batch"));
    }
    assert_eq!(sent.len(), N);

    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut consumers = Vec::new();
    for c in 0..4 {
        let q = Arc::clone(&q);
        let seen = Arc::clone(&seen);
        consumers.push(tokio::spawn(async move {
            let mut mine = 0;
            loop {
                let done = seen.lock().expect("lock").len() >= N;
                if done || Instant::now() > deadline {
                    return mine;
                }
                let got = q
                    .receive(&options(10, Duration::from_millis(500)))
                    .await
                    .expect("receive");
                for m in got {
                    assert_eq!(m.receive_count, 1, "consumer {c}: {} redelivered", m.id);
                    let dup = seen
                        .lock()
                        .expect("lock")
                        .insert(m.id.clone(), c)
                        .map(|first| (first, c));
                    assert!(dup.is_none(), "{} delivered twice: consumers {dup:?}", m.id);
                    q.delete(&m.receipt).await.expect("delete");
                    mine += 1;
                }
            }
        }));
    }
    let mut total = 0;
    for c in consumers {
        total += c.await.expect("consumer");
    }
    let delivered: HashSet<String> = seen.lock().expect("lock").keys().cloned().collect();
    assert_eq!(total, N, "deliveries");
    assert_eq!(delivered, sent, "every message delivered once");
    assert_eq!(q.depth().await.expect("depth"), QueueDepth::default());
}
