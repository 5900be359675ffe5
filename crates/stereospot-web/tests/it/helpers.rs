use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, StatusCode};
use stereospot_core::config::Settings;
use stereospot_core::platform::{
    ByteRange, ByteStream, JobListKind, JobStore, ObjectMeta, ObjectStorage, Page, PageRequest,
    PresignOptions, Result,
};
use stereospot_core::{Job, JobId, JobStatus, JobUpdate, StereoMode};
use stereospot_local::LocalPlatform;
use stereospot_local::http::ObjectRoutesConfig;
use stereospot_web::{AppState, WebConfig};
use tower::ServiceExt;

/// Uploads above this are refused in tests.
pub const MAX_UPLOAD: u64 = 64 * 1024;

/// Counts calls into the job store.
#[derive(Debug)]
pub struct CountingJobs {
    pub inner: Arc<dyn JobStore>,
    pub calls: AtomicUsize,
}

#[async_trait]
impl JobStore for CountingJobs {
    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.get(id).await
    }
    async fn put(&self, job: &Job) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.put(job).await
    }
    async fn create(&self, job: &Job) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.create(job).await
    }
    async fn update(&self, id: JobId, update: &JobUpdate) -> Result<Job> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.update(id, update).await
    }
    async fn list(&self, kind: JobListKind, page: PageRequest) -> Result<Page<Job>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.list(kind, page).await
    }
}

/// Counts calls into object storage.
#[derive(Debug)]
pub struct CountingStorage {
    pub inner: Arc<dyn ObjectStorage>,
    pub calls: AtomicUsize,
}

impl CountingStorage {
    fn hit(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl ObjectStorage for CountingStorage {
    async fn presign_put(&self, b: &str, k: &str, o: &PresignOptions) -> Result<String> {
        self.hit();
        self.inner.presign_put(b, k, o).await
    }
    async fn presign_get(&self, b: &str, k: &str, o: &PresignOptions) -> Result<String> {
        self.hit();
        self.inner.presign_get(b, k, o).await
    }
    async fn put_stream(&self, b: &str, k: &str, body: ByteStream) -> Result<ObjectMeta> {
        self.hit();
        self.inner.put_stream(b, k, body).await
    }
    async fn put_file(&self, b: &str, k: &str, p: &Path) -> Result<ObjectMeta> {
        self.hit();
        self.inner.put_file(b, k, p).await
    }
    async fn get_stream(&self, b: &str, k: &str, r: Option<ByteRange>) -> Result<ByteStream> {
        self.hit();
        self.inner.get_stream(b, k, r).await
    }
    async fn get_to_file(&self, b: &str, k: &str, p: &Path) -> Result<u64> {
        self.hit();
        self.inner.get_to_file(b, k, p).await
    }
    async fn head(&self, b: &str, k: &str) -> Result<Option<ObjectMeta>> {
        self.hit();
        self.inner.head(b, k).await
    }
    async fn delete(&self, b: &str, k: &str) -> Result<()> {
        self.hit();
        self.inner.delete(b, k).await
    }
    async fn delete_prefix(&self, b: &str, p: &str) -> Result<u64> {
        self.hit();
        self.inner.delete_prefix(b, p).await
    }
    async fn list_prefix(&self, b: &str, p: &str) -> Result<Vec<String>> {
        self.hit();
        self.inner.list_prefix(b, p).await
    }
}

/// The web router over a fresh local platform, with its object routes (upload limit
/// [`MAX_UPLOAD`]) merged as `serve` does.
pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    pub local: LocalPlatform,
    pub jobs: Arc<CountingJobs>,
    pub storage: Arc<CountingStorage>,
    _dir: tempfile::TempDir,
}

pub async fn app() -> TestApp {
    app_with(|_| {}).await
}

pub async fn app_with(configure: impl FnOnce(&mut WebConfig)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings::from_lookup(|_| None).expect("settings");
    let base = "http://127.0.0.1:9";
    let local = LocalPlatform::open(dir.path(), &settings, base)
        .await
        .expect("platform");
    let jobs = Arc::new(CountingJobs {
        inner: local.platform.jobs.clone(),
        calls: AtomicUsize::new(0),
    });
    let storage = Arc::new(CountingStorage {
        inner: local.platform.storage.clone(),
        calls: AtomicUsize::new(0),
    });
    let mut platform = local.platform.clone();
    platform.jobs = jobs.clone();
    platform.storage = storage.clone();
    let mut config = WebConfig::new(base);
    config.max_upload_bytes = MAX_UPLOAD;
    config.ingest_enabled = true;
    config.sse_poll_interval = Duration::from_millis(20);
    config.eta_cache_ttl = Duration::from_millis(1);
    configure(&mut config);
    let state = AppState::new(platform, config);
    let objects = stereospot_local::http::router_with_config(
        local.storage.clone(),
        ObjectRoutesConfig {
            max_put_bytes: MAX_UPLOAD,
        },
    );
    let router = stereospot_web::router(state.clone()).merge(objects);
    TestApp {
        state,
        router,
        local,
        jobs,
        storage,
        _dir: dir,
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header"))
            .unwrap_or("")
    }
}

pub async fn read(response: Response<Body>) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

impl TestApp {
    pub async fn send(&self, request: Request<Body>) -> Reply {
        read(
            self.router
                .clone()
                .oneshot(request)
                .await
                .expect("infallible"),
        )
        .await
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Request::get(uri).body(Body::empty()).expect("request"))
            .await
    }

    pub async fn get_json(&self, uri: &str) -> Reply {
        self.send(
            Request::get(uri)
                .header("accept", "application/json")
                .body(Body::empty())
                .expect("request"),
        )
        .await
    }

    /// A same-origin form POST, as a browser sends it.
    pub async fn post_form(&self, uri: &str, body: &str) -> Reply {
        self.send(
            Request::post(uri)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("origin", "http://127.0.0.1:9")
                .header("host", "127.0.0.1:9")
                .header("sec-fetch-site", "same-origin")
                .body(Body::from(body.to_string()))
                .expect("request"),
        )
        .await
    }

    pub async fn send_json(&self, method: &str, uri: &str, body: serde_json::Value) -> Reply {
        self.send(
            Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .header("accept", "application/json")
                .body(Body::from(body.to_string()))
                .expect("request"),
        )
        .await
    }

    /// Stores a job in `status` directly (as the workers would have moved it).
    pub async fn job_in(&self, status: JobStatus, title: Option<&str>) -> Job {
        let id = JobId::from_parts(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis() as u64,
            rand_bytes(),
        );
        let mut job = Job::new(id, StereoMode::Anaglyph, 1_700_000_000);
        job.status = status;
        job.title = title.map(str::to_string);
        if status == JobStatus::Completed {
            job.uploaded_at = Some(1_700_000_100);
            job.completed_at = Some(1_700_000_280);
            job.source_file_size_bytes = Some(12_000_000);
            job.total_segments = Some(2);
        }
        if status == JobStatus::Failed {
            job.error = Some(stereospot_core::JobError {
                code: "not_media".into(),
                message: "The upload is not a video file".into(),
            });
        }
        self.local.platform.jobs.put(&job).await.expect("put job");
        job
    }

    pub fn job_calls(&self) -> usize {
        self.jobs.calls.load(Ordering::SeqCst)
    }

    pub fn storage_calls(&self) -> usize {
        self.storage.calls.load(Ordering::SeqCst)
    }
}

pub fn rand_bytes() -> [u8; 10] {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let mut b = [0u8; 10];
    b[..8].copy_from_slice(&n.to_be_bytes());
    b[8] = std::process::id() as u8;
    b
}
