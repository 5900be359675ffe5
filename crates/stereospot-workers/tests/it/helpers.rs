//! A local platform in a temp dir, the workers on it with test settings, a pump that drives
//! the step functions until the queues are quiet, and ffprobe oracles.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Once};
use std::time::Duration;

use stereospot_core::config::Settings;
use stereospot_core::platform::{Platform, Queue, Queues};
use stereospot_core::{Job, JobId, JobStatus, ObjectKey, StereoMode};
use stereospot_local::LocalPlatform;
use stereospot_media::{Media, MediaConfig};
use stereospot_workers::{
    InferenceBackend, MediaWorker, Outcome, StubBackend, VideoWorker, WorkerConfig, WorkerContext,
};

/// The shared test videos: `shared/data/video` next to the checkout.
pub fn video(name: &str) -> PathBuf {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/video"
    ))
    .join(name);
    assert!(
        p.is_file(),
        "missing test video {}: the `shared/` folder must sit next to the repository checkout",
        p.display()
    );
    p
}

/// Tracing output in tests only when TEST_LOG is set.
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "stereospot_workers=debug".into()),
                )
                .with_test_writer()
                .try_init();
        }
    });
}

/// Settings for tests: no receive wait (steps return at once), short retry delays, 1 s
/// segments.
pub fn test_config(work_root: &Path) -> WorkerConfig {
    WorkerConfig {
        receive_wait: Duration::ZERO,
        retry_delay: Duration::from_millis(20),
        heartbeat_interval: Duration::from_secs(1),
        visibility_extension: Duration::from_secs(60),
        work_root: work_root.to_path_buf(),
        segment_duration: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(30),
        ..WorkerConfig::default()
    }
}

/// How to build a test environment.
/// Wraps each pipeline queue (e.g. to duplicate deliveries).
pub type QueueWrapper = Box<dyn Fn(Arc<dyn Queue>) -> Arc<dyn Queue>>;

pub struct Options {
    pub config: Box<dyn FnOnce(&mut WorkerConfig)>,
    pub wrap_queues: Option<QueueWrapper>,
    pub backend: Arc<dyn InferenceBackend>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            config: Box::new(|_| {}),
            wrap_queues: None,
            backend: Arc::new(StubBackend),
        }
    }
}

pub struct TestEnv {
    pub _local: LocalPlatform,
    pub platform: Platform,
    pub ctx: WorkerContext,
    pub media_worker: MediaWorker,
    pub video_worker: VideoWorker,
    pub _data_dir: tempfile::TempDir,
    pub work_root: tempfile::TempDir,
    pub media_temp: tempfile::TempDir,
}

pub async fn env() -> TestEnv {
    env_with(Options::default()).await
}

pub async fn env_with(options: Options) -> TestEnv {
    init_tracing();
    let data_dir = tempfile::tempdir().expect("data dir");
    let work_root = tempfile::tempdir().expect("work root");
    let media_temp = tempfile::tempdir().expect("media temp");
    let settings = Settings::from_lookup(|_| None).expect("settings");
    let local = LocalPlatform::open(data_dir.path(), &settings, "http://127.0.0.1:9")
        .await
        .expect("local platform opens");
    let mut platform = local.platform.clone();
    if let Some(wrap) = &options.wrap_queues {
        let q = &platform.queues;
        platform.queues = Queues {
            chunking: wrap(q.chunking.clone()),
            video_worker: wrap(q.video_worker.clone()),
            segment_output: wrap(q.segment_output.clone()),
            reassembly: wrap(q.reassembly.clone()),
            deletion: wrap(q.deletion.clone()),
            ingest: wrap(q.ingest.clone()),
        };
    }
    let mut config = test_config(work_root.path());
    (options.config)(&mut config);
    let ctx = WorkerContext::new(platform.clone(), config);
    let media = Media::new(MediaConfig {
        temp_root: media_temp.path().to_path_buf(),
        ..MediaConfig::default()
    });
    TestEnv {
        media_worker: MediaWorker::new(ctx.clone(), media),
        video_worker: VideoWorker::new(ctx.clone(), options.backend),
        _local: local,
        platform,
        ctx,
        _data_dir: data_dir,
        work_root,
        media_temp,
    }
}

/// Every step's outcome, by worker name.
pub type Log = Vec<(&'static str, Outcome)>;

impl TestEnv {
    /// Creates a job in `created` status.
    pub async fn create_job(&self, mode: StereoMode) -> JobId {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let id = JobId::from_parts(millis, rand::random());
        let job = Job::new(id, mode, self.ctx.now());
        self.platform.jobs.create(&job).await.unwrap();
        id
    }

    /// Uploads `path` as the job's source (the object-created event enqueues chunking).
    pub async fn upload(&self, job_id: JobId, path: &Path) {
        self.platform
            .storage
            .put_file(
                &self.platform.buckets.input,
                &ObjectKey::source(job_id).to_string(),
                path,
            )
            .await
            .unwrap();
    }

    /// A job created and uploaded.
    pub async fn submit(&self, path: &Path, mode: StereoMode) -> JobId {
        let id = self.create_job(mode).await;
        self.upload(id, path).await;
        id
    }

    pub async fn job(&self, id: JobId) -> Job {
        self.platform
            .jobs
            .get(id)
            .await
            .unwrap()
            .expect("job exists")
    }

    /// One step of every worker, in pipeline order; the outcomes that were not `Idle`.
    pub async fn step_all(&self) -> Log {
        let m = &self.media_worker;
        let v = &self.video_worker;
        let mut log = Vec::new();
        let steps = [
            ("ingest", m.ingest.try_execute_one().await),
            ("chunking", m.chunking.try_execute_one().await),
            ("inference", v.inference.try_execute_one().await),
            ("segment-output", v.segment_output.try_execute_one().await),
            ("reassembly", m.reassembly.try_execute_one().await),
            ("deletion", m.deletion.try_execute_one().await),
        ];
        for (name, r) in steps {
            let outcome = r.unwrap_or_else(|e| panic!("{name} step failed: {e}"));
            if outcome != Outcome::Idle {
                log.push((name, outcome));
            }
        }
        log
    }

    /// Steps every worker until a whole round finds every queue empty (messages waiting for a
    /// retry delay are not visible, so this can return before they are handled).
    pub async fn pump(&self) -> Log {
        let mut log = Vec::new();
        for _ in 0..2000 {
            let round = self.step_all().await;
            if round.is_empty() {
                return log;
            }
            log.extend(round);
        }
        panic!("the pipeline did not go quiet in 2000 rounds: {log:?}");
    }

    /// Pumps until every job in `ids` is finished (completed, failed or deleted), waiting for
    /// messages hidden by a retry delay; panics after `limit`.
    pub async fn pump_until_finished(&self, ids: &[JobId], limit: Duration) -> Log {
        let start = std::time::Instant::now();
        let mut log = Vec::new();
        loop {
            log.extend(self.pump().await);
            let mut all = true;
            for id in ids {
                all &= self.job(*id).await.status.is_terminal();
            }
            if all {
                return log;
            }
            assert!(
                start.elapsed() < limit,
                "jobs not finished after {limit:?}: {log:?}"
            );
            // Only retry delays (visibility timeouts) are pending: nothing to wait on but time.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Downloads the job's final file into `dir`.
    pub async fn download_final(&self, id: JobId, dir: &Path) -> PathBuf {
        let path = dir.join(format!("{id}.mp4"));
        self.platform
            .storage
            .get_to_file(
                &self.platform.buckets.output,
                &ObjectKey::final_output(id).to_string(),
                &path,
            )
            .await
            .unwrap();
        path
    }

    /// Every object key of the job, in both buckets.
    pub async fn job_objects(&self, id: JobId) -> Vec<String> {
        let mut keys = Vec::new();
        for (input, prefix) in ObjectKey::job_prefixes(id) {
            let bucket = if input {
                &self.platform.buckets.input
            } else {
                &self.platform.buckets.output
            };
            keys.extend(
                self.platform
                    .storage
                    .list_prefix(bucket, &prefix)
                    .await
                    .unwrap(),
            );
        }
        keys
    }

    /// Messages left in every pipeline queue (visible + in flight).
    pub async fn queued(&self) -> u64 {
        let q = &self.platform.queues;
        let mut n = 0;
        for queue in [
            &q.ingest,
            &q.chunking,
            &q.video_worker,
            &q.segment_output,
            &q.reassembly,
            &q.deletion,
        ] {
            let d = queue.depth().await.unwrap();
            n += d.visible + d.in_flight;
        }
        n
    }

    /// The work root and the media temp root are empty: every step cleaned up.
    pub fn assert_clean(&self) {
        for dir in [self.work_root.path(), self.media_temp.path()] {
            let left: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            assert!(left.is_empty(), "temp files left behind: {left:?}");
        }
    }
}

/// Counts outcomes of one worker that match.
pub fn count(log: &Log, worker: &str, pred: impl Fn(&Outcome) -> bool) -> usize {
    log.iter().filter(|(w, o)| *w == worker && pred(o)).count()
}

pub fn is_done(o: &Outcome) -> bool {
    matches!(o, Outcome::Done { .. })
}

/// What ffprobe says about a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Decoded video frames (`-count_frames`).
    pub frames: u64,
    /// Video duration in seconds (stream duration, or the container's when the stream has none).
    pub duration: f64,
    /// Average frame rate.
    pub fps: f64,
    pub width: u32,
    pub height: u32,
    pub has_audio: bool,
}

pub fn probe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,nb_read_frames,duration,avg_frame_rate,width,height:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe must be installed");
    assert!(out.status.success(), "ffprobe failed on {}", path.display());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = v["streams"].as_array().unwrap();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a video stream");
    let num = |x: &serde_json::Value| x.as_str().and_then(|s| s.parse::<f64>().ok());
    let rate = video["avg_frame_rate"].as_str().unwrap_or("0/1");
    let (n, d) = rate.split_once('/').unwrap_or((rate, "1"));
    let fps = n.parse::<f64>().unwrap_or(0.0) / d.parse::<f64>().unwrap_or(1.0);
    Probe {
        frames: num(&video["nb_read_frames"]).unwrap_or(0.0) as u64,
        duration: num(&video["duration"])
            .or_else(|| num(&v["format"]["duration"]))
            .unwrap_or(0.0),
        fps,
        width: video["width"].as_u64().unwrap_or(0) as u32,
        height: video["height"].as_u64().unwrap_or(0) as u32,
        has_audio: streams.iter().any(|s| s["codec_type"] == "audio"),
    }
}

pub fn assert_status(job: &Job, status: JobStatus) {
    assert_eq!(job.status, status, "job {job:?}");
}
