//! Local platform benchmark: `cargo bench -p stereospot-local --bench local`.
//!
//! Queue throughput (send + receive + delete, messages per second) at batch 1 and batch 10,
//! with the default `synchronous=FULL` (an fsync per send; receives and deletes are not fsynced,
//! see `queue.rs`) and with `synchronous=NORMAL` for comparison. A baseline measured in the same run, the cost of one bare fsynced SQLite commit,
//! puts the figures in context. Not run by `cargo test`.
//!
//! Environment: `BENCH_MESSAGES` (default 5000).

use std::path::Path;
use std::time::{Duration, Instant};

use stereospot_core::platform::{Queue, ReceiveOptions};
use stereospot_local::{Db, DbOptions, LocalQueue, QueueConfig, Synchronous};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let messages: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        println!("local queue throughput, {messages} messages per run (send + receive + delete)");
        let baseline = bare_commits(&dir.path().join("baseline"), 1500).await?;
        println!(
            "baseline: bare SQLite commit (WAL, synchronous=FULL): {:.0} commits/s",
            baseline
        );
        for sync in [Synchronous::Full, Synchronous::Normal] {
            for batch in [1usize, 10] {
                let sub = dir.path().join(format!("{sync:?}-{batch}"));
                let rate = queue_round_trip(&sub, sync, batch, messages).await?;
                println!(
                    "queue synchronous={:<6} batch {batch:>2}: {rate:>8.0} messages/s ({:.2} x bare commit rate)",
                    format!("{sync:?}").to_uppercase(),
                    rate / baseline
                );
            }
        }
        // OBJECT STORAGE: put/get throughput of `stereospot_local::storage` goes here (owned by
        // the storage side of the crate).
        Ok::<_, BoxError>(())
    })
}

/// Commits per second of one-row inserts, the floor every durable send pays.
async fn bare_commits(dir: &Path, n: usize) -> Result<f64, BoxError> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("bare.db");
    tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open(path)?;
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute("CREATE TABLE t (v TEXT)", [])?;
        // Warm up past the first WAL checkpoint, so the WAL is reused as in a long run.
        for i in 0..1500 {
            conn.execute("INSERT INTO t (v) VALUES (?1)", [i.to_string()])?;
        }
        let start = Instant::now();
        for i in 0..n {
            conn.execute("INSERT INTO t (v) VALUES (?1)", [i.to_string()])?;
        }
        Ok(n as f64 / start.elapsed().as_secs_f64())
    })
    .await?
}

/// Sends `n` messages in batches of `batch`, then receives (up to `batch` at a time) and deletes
/// each; returns messages per second over the whole round trip.
async fn queue_round_trip(
    dir: &Path,
    synchronous: Synchronous,
    batch: usize,
    n: usize,
) -> Result<f64, BoxError> {
    let db = Db::open_with(
        dir,
        DbOptions {
            synchronous,
            ..DbOptions::default()
        },
    )
    .await?;
    let q = LocalQueue::new(db, "bench", QueueConfig::default());
    let start = Instant::now();
    let mut sent = 0;
    while sent < n {
        let k = batch.min(n - sent);
        if k == 1 {
            q.send(&format!("message {sent}")).await?;
        } else {
            let bodies: Vec<String> = (sent..sent + k).map(|i| format!("message {i}")).collect();
            q.send_batch(&bodies).await?;
        }
        sent += k;
    }
    let options = ReceiveOptions {
        max_messages: batch as u32,
        wait: Duration::ZERO,
        visibility_timeout: None,
    };
    let mut done = 0;
    while done < n {
        let got = q.receive(&options).await?;
        if got.is_empty() {
            return Err(format!("queue ran dry after {done} of {n} messages").into());
        }
        for m in got {
            q.delete(&m.receipt).await?;
            done += 1;
        }
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}
