//! Crash safety: a real child process writing queue messages, jobs and objects is killed with
//! SIGKILL at a random moment, 100 times, on one data directory. After each kill the parent
//! reopens everything and checks that the database is intact, that every write the child
//! acknowledged (printed after the call returned) is there, and that no partial object is
//! visible.
//!
//! The child is this test binary itself, re-executed to run only the ignored `child_main` test,
//! which does nothing unless `STEREOSPOT_CRASH_DIR` is set.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use rand::Rng;
use stereospot_core::platform::{JobStore, ObjectStorage, Queue, ReceiveOptions};
use stereospot_core::{Job, JobId, JobStatus, JobUpdate, StereoMode};
use stereospot_local::storage::{FsObjectStorage, FsStorageOptions};
use stereospot_local::{Db, LocalJobStore, LocalQueue, QueueConfig};

const DIR_ENV: &str = "STEREOSPOT_CRASH_DIR";
const ITER_ENV: &str = "STEREOSPOT_CRASH_ITER";
const BUCKET: &str = "crash-objects";
const ITERATIONS: usize = 100;

fn queue_name(iter: &str) -> String {
    format!("crash-{iter}")
}

/// The bytes of object number `n`: its length and content follow from `n`, so a reader can
/// tell a whole object from a part of one.
fn object_bytes(n: u64) -> Vec<u8> {
    let len = 64 * 1024 + (n * 7919 % (192 * 1024)) as usize;
    (0..len).map(|i| (i as u64 * 31 + n) as u8).collect()
}

fn object_key(iter: &str, n: u64) -> String {
    format!("it{iter}/obj-{n}")
}

fn ack(line: String) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("stdout");
    out.flush().expect("stdout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
#[ignore = "the child process of sigkill_during_writes_loses_nothing_acknowledged"]
async fn child_main() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let iter = std::env::var(ITER_ENV).expect("iteration");
    let db = Db::open(&dir).await.expect("open the database");
    let queue = LocalQueue::new(db.clone(), queue_name(&iter), QueueConfig::default());
    let jobs = LocalJobStore::new(db.clone());
    let storage = FsObjectStorage::open(Path::new(&dir), FsStorageOptions::default())
        .await
        .expect("open storage");
    ack("ready".into());

    // Three writers at once, so the kill lands among concurrent transactions.
    let sender = tokio::spawn(async move {
        for n in 0u64.. {
            if n % 3 == 0 {
                let bodies: Vec<String> = (0..5).map(|i| format!("batch {n} {i}")).collect();
                for id in queue.send_batch(&bodies).await.expect("send_batch") {
                    ack(format!("msg {id}"));
                }
            } else {
                let id = queue.send(&format!("message {n}")).await.expect("send");
                ack(format!("msg {id}"));
            }
        }
    });
    let job_writer = tokio::spawn(async move {
        loop {
            let id = JobId::from_parts(1_700_000_000_000, rand::random());
            let job = Job::new(id, StereoMode::Sbs, 1_700_000_000);
            jobs.create(&job).await.expect("create");
            ack(format!("job {id}"));
            let update = JobUpdate {
                total_segments: Some(9),
                ..JobUpdate::transition(JobStatus::Created, JobStatus::ChunkingInProgress)
            };
            jobs.update(id, &update).await.expect("update");
            ack(format!("jobup {id}"));
        }
    });
    let object_writer = tokio::spawn(async move {
        for n in 0u64.. {
            let key = object_key(&iter, n);
            storage
                .put_bytes(BUCKET, &key, Bytes::from(object_bytes(n)))
                .await
                .expect("put");
            ack(format!("obj {key}"));
        }
    });
    // The writers run until the parent kills this process; one that stops is a failure.
    let stopped = tokio::select! {
        r = sender => format!("sender: {r:?}"),
        r = job_writer => format!("job writer: {r:?}"),
        r = object_writer => format!("object writer: {r:?}"),
    };
    panic!("a writer stopped before the kill: {stopped}");
}

#[derive(Default, Debug)]
struct Acks {
    messages: Vec<String>,
    jobs: Vec<JobId>,
    updated_jobs: Vec<JobId>,
    objects: Vec<String>,
}

impl Acks {
    fn count(&self) -> usize {
        self.messages.len() + self.jobs.len() + self.updated_jobs.len() + self.objects.len()
    }

    fn record(&mut self, line: &str) {
        match line.split_once(' ') {
            Some(("msg", id)) => self.messages.push(id.to_owned()),
            Some(("job", id)) => self.jobs.push(JobId::parse(id).expect("job id")),
            Some(("jobup", id)) => self.updated_jobs.push(JobId::parse(id).expect("job id")),
            Some(("obj", key)) => self.objects.push(key.to_owned()),
            _ => {} // "ready" and libtest's own output
        }
    }
}

/// Runs one child, kills it at a random point, and returns what it acknowledged.
fn run_child(dir: &Path, iter: usize, rng: &mut impl Rng) -> Acks {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "crash::child_main",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_ENV, dir)
        .env(ITER_ENV, iter.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    let mut acks = Acks::default();
    // Mostly kill after some acknowledged writes; sometimes early, while opening.
    let early = iter.is_multiple_of(10);
    let target = if early { 0 } else { rng.random_range(1..=60) };
    let deadline = Instant::now() + Duration::from_secs(20);
    if early {
        std::thread::sleep(Duration::from_millis(rng.random_range(0..40)));
    } else {
        while acks.count() < target {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => acks.record(&line),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "iteration {iter}: the child stopped early ({e}); stderr:\n{}",
                        errors.join().unwrap_or_default()
                    );
                }
            }
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..3_000)));
    }
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("wait for the child");
    let stderr = errors.join().unwrap_or_default();
    assert_eq!(
        status.signal(),
        Some(9),
        "iteration {iter}: the child was not killed but ended with {status}; stderr:\n{stderr}"
    );
    // Lines already written before the kill are acknowledgements too.
    for line in rx.iter() {
        acks.record(&line);
    }
    reader.join().expect("reader thread");
    acks
}

async fn verify(dir: &Path, iter: usize, acks: &Acks) {
    let db = Db::open(dir).await.expect("reopen the database");
    assert_eq!(
        db.integrity_check().await.expect("integrity check"),
        "ok",
        "iteration {iter}"
    );

    // Every acknowledged message is still in the queue.
    let queue = LocalQueue::new(
        db.clone(),
        queue_name(&iter.to_string()),
        QueueConfig::default(),
    );
    let mut present = HashSet::new();
    loop {
        let got = queue
            .receive(&ReceiveOptions {
                max_messages: 10,
                wait: Duration::ZERO,
                visibility_timeout: Some(Duration::from_secs(600)),
            })
            .await
            .expect("receive");
        if got.is_empty() {
            break;
        }
        for m in got {
            assert!(present.insert(m.id), "iteration {iter}: duplicate delivery");
        }
    }
    for id in &acks.messages {
        assert!(
            present.contains(id),
            "iteration {iter}: acknowledged message {id} was lost ({} acked, {} present)",
            acks.messages.len(),
            present.len()
        );
    }

    // Every acknowledged job write is there.
    let jobs = LocalJobStore::new(db.clone());
    for id in &acks.jobs {
        assert!(
            jobs.get(*id).await.expect("get").is_some(),
            "iteration {iter}: acknowledged job {id} was lost"
        );
    }
    for id in &acks.updated_jobs {
        let job = jobs.get(*id).await.expect("get").expect("job");
        assert_eq!(
            job.status,
            JobStatus::ChunkingInProgress,
            "iteration {iter}: {id}"
        );
        assert_eq!(job.total_segments, Some(9), "iteration {iter}: {id}");
    }

    // Every acknowledged object is whole, and every visible object of this run is whole.
    let storage = FsObjectStorage::open(dir, FsStorageOptions::default())
        .await
        .expect("reopen storage");
    let prefix = format!("it{iter}/");
    let keys = match storage.list_prefix(BUCKET, &prefix).await {
        Ok(keys) => keys,
        Err(_) if acks.objects.is_empty() => Vec::new(),
        Err(e) => panic!("iteration {iter}: listing objects: {e}"),
    };
    let listed: HashSet<&String> = keys.iter().collect();
    for key in &acks.objects {
        assert!(
            listed.contains(key),
            "iteration {iter}: acknowledged object {key} was lost"
        );
    }
    for key in &keys {
        let n: u64 = key
            .rsplit_once("obj-")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or_else(|| panic!("iteration {iter}: unexpected object {key}"));
        let mut stream = storage
            .get_stream(BUCKET, key, None)
            .await
            .expect("get a listed object");
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.expect("read"));
        }
        assert!(
            bytes == object_bytes(n),
            "iteration {iter}: object {key} is partial or corrupt ({} bytes)",
            bytes.len()
        );
    }
}

#[test]
fn sigkill_during_writes_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut rng = rand::rng();
    let started = Instant::now();
    let mut totals = Acks::default();
    for iter in 0..ITERATIONS {
        let acks = run_child(dir.path(), iter, &mut rng);
        rt.block_on(verify(dir.path(), iter, &acks));
        totals.messages.extend(acks.messages);
        totals.jobs.extend(acks.jobs);
        totals.updated_jobs.extend(acks.updated_jobs);
        totals.objects.extend(acks.objects);
    }
    eprintln!(
        "crash: {ITERATIONS} SIGKILLs in {:?}; acknowledged and verified {} messages, {} job creations, {} job updates, {} objects",
        started.elapsed(),
        totals.messages.len(),
        totals.jobs.len(),
        totals.updated_jobs.len(),
        totals.objects.len()
    );
    assert!(
        totals.messages.len() > 500 && !totals.jobs.is_empty() && !totals.objects.is_empty(),
        "too few writes were interrupted to mean anything: {} messages, {} jobs, {} objects",
        totals.messages.len(),
        totals.jobs.len(),
        totals.objects.len()
    );
}
