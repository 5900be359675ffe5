//! Crash drill: `stereospot media-worker` and `stereospot video-worker` run as child processes
//! on one data directory (the SQLite queues are shared between processes) and are killed with
//! SIGKILL at random points, 20 times across the life of a series of jobs. Every job must
//! complete after redelivery, with one completion per segment and the source's frame count.
//!
//! Queue visibility, heartbeat and reassembly lease are shortened through their environment
//! variables so that a killed worker's message comes back within about a second, and the
//! queues' maximum receive count is raised so that repeated kills on one message cannot send it
//! to the dead-letter queue. The stub backend keeps it fast. The seed is printed; rerun one with
//! `STEREOSPOT_CRASH_SEED=<seed>`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stereospot_core::config::Settings;
use stereospot_core::keys::parse_s3_uri;
use stereospot_core::platform::Queue;
use stereospot_core::{Job, JobId, JobStatus, ObjectKey, StereoMode};
use stereospot_local::{LocalPlatform, LocalQueue, QueueConfig, QueueOverrides};

const KILLS: usize = 20;

fn video(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/video")
        .join(name)
}

fn frames(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

struct Drill {
    data: PathBuf,
    scratch: PathBuf,
}

impl Drill {
    fn spawn(&self, kind: &str) -> Child {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.scratch.join(format!("{kind}.log")))
            .unwrap();
        let tmp = self.scratch.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        Command::new(env!("CARGO_BIN_EXE_stereospot"))
            .arg(kind)
            .env_remove("STEREOSPOT_ENV_FILE")
            .env("STEREOSPOT_DATA_DIR", &self.data)
            .env("STEREOSPOT_WORK_DIR", self.scratch.join("work"))
            .env("TMPDIR", &tmp)
            .env("HF_HUB_OFFLINE", "1")
            .env("INFERENCE_BACKEND", "stub")
            .env("INFERENCE_MAX_IN_FLIGHT", "2")
            .env("SEGMENT_DURATION_SECONDS", "1")
            .env("STEREOSPOT_QUEUE_VISIBILITY_SECONDS", "1")
            .env("STEREOSPOT_QUEUE_MAX_RECEIVES", "100")
            .env("WORKER_HEARTBEAT_SECONDS", "0.25")
            .env("WORKER_VISIBILITY_EXTENSION_SECONDS", "1")
            .env("WORKER_REASSEMBLY_LEASE_SECONDS", "1")
            .env("WORKER_RETRY_DELAY_SECONDS", "0.2")
            .env("WORKER_MAX_ATTEMPTS", "100")
            .env("RUST_LOG", "stereospot_workers=info,warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn a worker")
    }

    fn logs(&self) -> String {
        let mut all = String::new();
        for kind in ["media-worker", "video-worker"] {
            let text = std::fs::read_to_string(self.scratch.join(format!("{kind}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            all.push_str(&format!("--- {kind} (last lines)\n"));
            for l in tail.into_iter().rev() {
                all.push_str(l);
                all.push('\n');
            }
        }
        all
    }
}

fn kill(child: &mut Child) {
    // SIGKILL: no shutdown path runs.
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_at_random_points_lose_nothing() {
    let seed: u64 = std::env::var("STEREOSPOT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash drill seed: {seed} (rerun with STEREOSPOT_CRASH_SEED={seed})");
    eprintln!("crash drill seed: {seed}");
    let mut rng = StdRng::seed_from_u64(seed);

    let dir = tempfile::tempdir().unwrap();
    let drill = Drill {
        data: dir.path().join("data"),
        scratch: dir.path().to_path_buf(),
    };
    let settings = Settings::from_lookup(|_| None).unwrap();
    let local = LocalPlatform::open_with(
        &drill.data,
        &settings,
        "http://127.0.0.1:9",
        &QueueOverrides {
            visibility_timeout: Some(Duration::from_secs(1)),
            max_receives: Some(100),
        },
    )
    .await
    .unwrap();
    let p = local.platform.clone();

    let mut media = drill.spawn("media-worker");
    let mut video_w = drill.spawn("video-worker");
    let sources = [
        (video("book.mkv"), StereoMode::Anaglyph),
        (video("realshort.mp4"), StereoMode::Sbs),
    ];
    let mut jobs: Vec<(JobId, PathBuf)> = Vec::new();
    let mut kill_log = Vec::new();
    let started = Instant::now();
    let limit = Duration::from_secs(100);

    // Each kill picks a stage of the job's life, waits until the job is in it (a new job is
    // submitted whenever the last one has finished), waits a random moment more and kills the
    // worker doing that stage (or, one time in four, the other one).
    let stages = [
        (JobStatus::ChunkingInProgress, "media"),
        (JobStatus::ChunkingComplete, "video"),
        (JobStatus::Reassembling, "media"),
    ];
    for k in 0..KILLS {
        let (want, doer) = stages[rng.random_range(0..stages.len())];
        loop {
            let current = match jobs.last() {
                Some((id, _)) => Some(p.jobs.get(*id).await.unwrap().unwrap().status),
                None => None,
            };
            if current == Some(want) {
                break;
            }
            if current.is_none_or(|s| s.is_terminal()) {
                let (path, mode) = &sources[jobs.len() % sources.len()];
                let millis = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as u64;
                let id = JobId::from_parts(millis, rng.random());
                p.jobs.create(&Job::new(id, *mode, 0)).await.unwrap();
                p.storage
                    .put_file(&p.buckets.input, &ObjectKey::source(id).to_string(), path)
                    .await
                    .unwrap();
                jobs.push((id, path.clone()));
            }
            assert!(started.elapsed() < limit, "{kill_log:#?}\n{}", drill.logs());
            // Another process moves the job: no signal reaches this one, so the status is polled.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A random point within the stage: what is being killed is the point of the drill.
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
        let (id, _) = jobs.last().unwrap();
        let status = p.jobs.get(*id).await.unwrap().unwrap().status;
        let media_victim = (doer == "media") != rng.random_bool(0.25);
        let victim = if media_victim {
            kill(&mut media);
            media = drill.spawn("media-worker");
            "media"
        } else {
            kill(&mut video_w);
            video_w = drill.spawn("video-worker");
            "video"
        };
        kill_log.push(format!(
            "kill {k}: {victim} worker, job {} {status} (aimed at {want})",
            jobs.len()
        ));
        assert!(started.elapsed() < limit, "{kill_log:#?}\n{}", drill.logs());
    }

    // No more kills: every job finishes.
    loop {
        let mut done = true;
        for (id, _) in &jobs {
            done &= p.jobs.get(*id).await.unwrap().unwrap().status.is_terminal();
        }
        if done {
            break;
        }
        assert!(
            started.elapsed() < limit,
            "jobs unfinished: {kill_log:#?}\n{}",
            drill.logs()
        );
        // No cross-process signal for "job finished"; the status is polled.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    kill(&mut media);
    kill(&mut video_w);
    println!("{}", kill_log.join("\n"));
    println!("{} jobs, {KILLS} kills, {elapsed:.1?}", jobs.len());

    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    for (id, source) in &jobs {
        let job = p.jobs.get(*id).await.unwrap().unwrap();
        assert_eq!(
            job.status,
            JobStatus::Completed,
            "{job:?}\n{kill_log:#?}\n{}",
            drill.logs()
        );
        let total = job.total_segments.unwrap();
        // One completion per segment index, each pointing at an existing output.
        let completions = p.completions.list(*id).await.unwrap();
        let indices: Vec<u32> = completions.iter().map(|c| c.segment_index).collect();
        assert_eq!(indices, (0..total).collect::<Vec<_>>(), "{job:?}");
        for c in &completions {
            let (bucket, key) = parse_s3_uri(&c.output_s3_uri).unwrap();
            assert!(
                p.storage.head(bucket, key).await.unwrap().is_some(),
                "{c:?}"
            );
        }
        let segments = p
            .storage
            .list_prefix(&p.buckets.input, &format!("segments/{id}/"))
            .await
            .unwrap();
        assert_eq!(segments.len(), total as usize, "{segments:?}");
        let fin = out.join(format!("{id}.mp4"));
        p.storage
            .get_to_file(
                &p.buckets.output,
                &ObjectKey::final_output(*id).to_string(),
                &fin,
            )
            .await
            .unwrap();
        // No segment twice, none missing: the frame count is the source's.
        assert_eq!(frames(&fin), frames(source), "{job:?}");
    }
    // Nothing was dead-lettered.
    for name in ["chunking", "video-worker", "segment-output", "reassembly"] {
        let dlq = LocalQueue::new(
            local.db.clone(),
            format!("{name}-dlq"),
            QueueConfig::default(),
        );
        assert_eq!(dlq.depth().await.unwrap().visible, 0, "{name}-dlq");
    }
}
