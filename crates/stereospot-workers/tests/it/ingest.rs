//! URL ingest with the real yt-dlp (scripts/deps.sh installs it) against local servers only:
//! a video site on 127.0.0.1 (reachable only where a test allows it) and a "canary" listener
//! that stands for everything a download must never reach and counts its connections.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use stereospot_core::payload::{IngestPayload, IngestSource, encode};
use stereospot_core::platform::Platform;
use stereospot_core::{JobId, JobStatus, ObjectKey, StereoMode};
use stereospot_media::ingest::AddressPolicy;
use stereospot_workers::{Outcome, WorkerConfig};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

/// A listener that accepts and counts connections, and answers nothing.
struct Canary {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Canary {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(conn);
            }
        });
        Self {
            addr,
            accepted,
            task,
        }
    }

    /// Connections anyone else made. Our own probe connection is accepted after every earlier
    /// one (the backlog is in order), so once it is counted, so are they.
    async fn connections_besides_ours(&self) -> usize {
        let before = self.accepted.load(Ordering::SeqCst);
        let _probe = TcpStream::connect(self.addr).await.unwrap();
        while self.accepted.load(Ordering::SeqCst) == before {
            tokio::task::yield_now().await;
        }
        self.accepted.load(Ordering::SeqCst) - 1
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The video site: serves realshort.mp4, redirects to the canary and elsewhere, and an HLS
/// playlist whose segment lives on the canary. Records the job's status at each request.
struct Site {
    addr: SocketAddr,
    state: Arc<SiteState>,
    task: tokio::task::JoinHandle<()>,
}

struct SiteState {
    video: Vec<u8>,
    canary: SocketAddr,
    requests: AtomicUsize,
    watch: Mutex<Option<(Platform, JobId)>>,
    seen: Mutex<Vec<JobStatus>>,
}

async fn serve_video(State(s): State<Arc<SiteState>>) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let watched = s.watch.lock().unwrap().clone();
    if let Some((platform, id)) = watched {
        let job = platform.jobs.get(id).await.unwrap().unwrap();
        s.seen.lock().unwrap().push(job.status);
    }
    ([(header::CONTENT_TYPE, "video/mp4")], s.video.clone()).into_response()
}

async fn redirect(State(s): State<Arc<SiteState>>, Path(to): Path<String>) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let c = s.canary;
    let port = c.port();
    let location = match to.as_str() {
        "canary" => format!("http://{c}/v.mp4"),
        "canary-https" => format!("https://{c}/v.mp4"),
        "localhost" => format!("http://localhost:{port}/v.mp4"),
        "mapped" => format!("http://[::ffff:127.0.0.1]:{port}/v.mp4"),
        "decimal" => format!("http://2130706433:{port}/v.mp4"),
        "metadata" => "http://169.254.169.254/latest/meta-data/".to_string(),
        "private" => "http://10.0.0.1/v.mp4".to_string(),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn playlist(State(s): State<Arc<SiteState>>) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let body = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:4.0,\nhttp://{}/seg0.ts\n#EXT-X-ENDLIST\n",
        s.canary
    );
    (
        [(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")],
        body,
    )
        .into_response()
}

impl Site {
    async fn start(canary: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(SiteState {
            video: std::fs::read(video("realshort.mp4")).unwrap(),
            canary,
            requests: AtomicUsize::new(0),
            watch: Mutex::new(None),
            seen: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/v/realshort.mp4", get(serve_video))
            .route("/redirect/{to}", get(redirect))
            .route("/hls/playlist.m3u8", get(playlist))
            .route(
                "/page.html",
                get(|| async {
                    axum::response::Html(
                        "<html><head><title>No video</title></head><body>text</body></html>",
                    )
                }),
            )
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, state, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A job in `created` with an ingest message for `url`.
async fn submit_url(env: &TestEnv, url: &str) -> JobId {
    let id = env.create_job(StereoMode::Anaglyph).await;
    send_ingest(env, id, url).await;
    id
}

async fn send_ingest(env: &TestEnv, id: JobId, url: &str) {
    let body = encode(&IngestPayload {
        job_id: id,
        source: IngestSource::Url {
            source_url: url.to_string(),
        },
    });
    env.platform.queues.ingest.send(&body).await.unwrap();
}

async fn ingest_step(env: &TestEnv) -> Outcome {
    env.media_worker.ingest.try_execute_one().await.unwrap()
}

fn configure(f: impl FnOnce(&mut WorkerConfig) + 'static) -> Options {
    Options {
        config: Box::new(f),
        ..Options::default()
    }
}

/// The job failed at once (one delivery) with `code`, and its reason reads well.
async fn assert_failed_with(env: &TestEnv, id: JobId, outcome: &Outcome, code: &str) -> String {
    assert_eq!(
        *outcome,
        Outcome::JobFailed {
            job_id: id,
            code: code.into()
        }
    );
    let job = env.job(id).await;
    assert_status(&job, JobStatus::Failed);
    let error = job.error.expect("a reason");
    assert_eq!(error.code, code);
    assert!(
        error.message.len() > 10 && !error.message.ends_with('.'),
        "{error:?}"
    );
    error.message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_is_ingested_and_the_job_completes() {
    let canary = Canary::start().await;
    let site = Site::start(canary.addr).await;
    let env = env_with(configure(|c| c.ingest.policy.allow_loopback = true)).await;
    let id = env.create_job(StereoMode::Anaglyph).await;
    *site.state.watch.lock().unwrap() = Some((env.platform.clone(), id));
    send_ingest(&env, id, &site.url("/v/realshort.mp4")).await;

    assert_eq!(ingest_step(&env).await, Outcome::Done { job_id: id });

    // created -> ingesting (while yt-dlp downloaded) -> created.
    let seen = site.state.seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|s| *s == JobStatus::Ingesting), "{seen:?}");
    let job = env.job(id).await;
    assert_status(&job, JobStatus::Created);
    let size = std::fs::metadata(video("realshort.mp4")).unwrap().len();
    assert_eq!(job.title.as_deref(), Some("realshort"));
    assert!(job.uploaded_at.is_some_and(|t| t >= job.created_at));
    assert_eq!(job.source_file_size_bytes, Some(size));
    let meta = env
        .platform
        .storage
        .head(
            &env.platform.buckets.input,
            &ObjectKey::source(id).to_string(),
        )
        .await
        .unwrap()
        .expect("the source object exists");
    assert_eq!(meta.size, size);

    // A duplicate delivery downloads nothing again.
    let requests = site.state.requests.load(Ordering::SeqCst);
    send_ingest(&env, id, &site.url("/v/realshort.mp4")).await;
    assert!(matches!(
        ingest_step(&env).await,
        Outcome::Skipped { job_id: Some(j), .. } if j == id
    ));
    assert_eq!(site.state.requests.load(Ordering::SeqCst), requests);

    // The upload event drives the rest of the pipeline.
    let log = env
        .pump_until_finished(&[id], Duration::from_secs(120))
        .await;
    assert_status(&env.job(id).await, JobStatus::Completed);
    assert_eq!(count(&log, "chunking", is_done), 1);
    let out = tempfile::tempdir().unwrap();
    let fin = env.download_final(id, out.path()).await;
    assert_eq!(probe(&fin).frames, probe(&video("realshort.mp4")).frames);
    assert_eq!(env.queued().await, 0);
    assert_eq!(canary.connections_besides_ours().await, 0);
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_urls_are_refused_by_default() {
    let canary = Canary::start().await;
    let env = env().await;
    let port = canary.addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/v.mp4"),
        format!("https://127.0.0.1:{port}/v.mp4"),
        format!("http://localhost:{port}/v.mp4"),
        format!("http://127.1:{port}/v.mp4"),
        format!("http://2130706433:{port}/v.mp4"),
        format!("http://0x7f000001:{port}/v.mp4"),
        format!("http://[::ffff:127.0.0.1]:{port}/v.mp4"),
        format!("http://[::1]:{port}/v.mp4"),
        format!("http://0.0.0.0:{port}/v.mp4"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.1.2.3/v.mp4".to_string(),
        "http://192.168.1.1/v.mp4".to_string(),
        "http://[fd00:ec2::254]/latest/meta-data/".to_string(),
    ] {
        let id = submit_url(&env, &url).await;
        let outcome = ingest_step(&env).await;
        let message = assert_failed_with(&env, id, &outcome, "forbidden_address").await;
        assert!(message.starts_with("the URL leads to "), "{url}: {message}");
        assert!(env.job_objects(id).await.is_empty());
    }
    assert_eq!(canary.connections_besides_ours().await, 0);
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_and_manifests_to_private_addresses_are_refused_by_the_proxy() {
    let canary = Canary::start().await;
    let site = Site::start(canary.addr).await;
    // Only the site's exact address counts as "the internet"; every other local port (the
    // canary's) stays forbidden, as loopback is by default.
    let allowed = site.addr;
    let env = env_with(configure(move |c| {
        c.ingest.policy = AddressPolicy {
            allow_exact: vec![allowed],
            ..AddressPolicy::default()
        }
    }))
    .await;
    let cases = [
        ("/redirect/canary", "127.0.0.1"),
        ("/redirect/canary-https", "127.0.0.1"),
        ("/redirect/localhost", "127.0.0.1"),
        ("/redirect/decimal", "127.0.0.1"),
        ("/redirect/mapped", "::ffff:127.0.0.1"),
        ("/redirect/metadata", "169.254.169.254"),
        ("/redirect/private", "10.0.0.1"),
        // The playlist is allowed; its segment on the canary is not.
        ("/hls/playlist.m3u8", "127.0.0.1"),
    ];
    for (path, address) in cases {
        let before = site.state.requests.load(Ordering::SeqCst);
        let id = submit_url(&env, &site.url(path)).await;
        let outcome = ingest_step(&env).await;
        let message = assert_failed_with(&env, id, &outcome, "forbidden_address").await;
        assert!(
            message.contains(&format!("({address})")),
            "{path}: {message}"
        );
        // The first hop went through: yt-dlp did run, through the proxy.
        assert!(
            site.state.requests.load(Ordering::SeqCst) > before,
            "{path}"
        );
        assert!(env.job_objects(id).await.is_empty());
    }
    assert_eq!(canary.connections_besides_ours().await, 0);
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_and_other_schemes_are_refused_before_any_process_starts() {
    // A program that does not exist: had anything been started, the error would be
    // `yt_dlp_missing` (and retried), not `invalid_url`.
    let env = env_with(configure(|c| {
        c.ingest.yt_dlp = Some(PathBuf::from("/nonexistent/yt-dlp-must-not-run"));
        c.ingest.policy.allow_loopback = true;
    }))
    .await;
    for url in [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "ftp://127.0.0.1/v.mp4",
        "data:video/mp4;base64,AAAA",
        "ytsearch:big buck bunny",
        "/etc/passwd",
        "https://user:secret@example.com/v.mp4",
    ] {
        let id = submit_url(&env, url).await;
        let outcome = ingest_step(&env).await;
        let message = assert_failed_with(&env, id, &outcome, "invalid_url").await;
        assert!(message.starts_with("the URL is not accepted"), "{message}");
    }
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_yt_dlp_is_retried_then_fails_saying_what_to_install() {
    let canary = Canary::start().await;
    let site = Site::start(canary.addr).await;
    let env = env_with(configure(|c| {
        c.ingest.yt_dlp = Some(PathBuf::from("/nonexistent/yt-dlp"));
        c.ingest.policy.allow_loopback = true;
        c.max_attempts = 2;
    }))
    .await;
    let id = submit_url(&env, &site.url("/v/realshort.mp4")).await;
    let log = env
        .pump_until_finished(&[id], Duration::from_secs(30))
        .await;
    assert_eq!(
        count(&log, "ingest", |o| matches!(o, Outcome::Retry { .. })),
        1
    );
    let job = env.job(id).await;
    assert_status(&job, JobStatus::Failed);
    let error = job.error.unwrap();
    assert_eq!(error.code, "yt_dlp_missing");
    assert!(error.message.contains("scripts/deps.sh"), "{error:?}");
    assert_eq!(env.queued().await, 0);
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_over_the_size_limit_fails_the_job() {
    let canary = Canary::start().await;
    let site = Site::start(canary.addr).await;
    let env = env_with(configure(|c| {
        c.ingest.policy.allow_loopback = true;
        c.ingest.max_file_size = 10_000;
    }))
    .await;
    let id = submit_url(&env, &site.url("/v/realshort.mp4")).await;
    let outcome = ingest_step(&env).await;
    let message = assert_failed_with(&env, id, &outcome, "too_large").await;
    assert_eq!(message, "the video is larger than the limit of 10000 bytes");
    assert!(env.job_objects(id).await.is_empty());
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_videos_and_pages_without_video_fail_with_readable_reasons() {
    let canary = Canary::start().await;
    let site = Site::start(canary.addr).await;
    let env = env_with(configure(|c| c.ingest.policy.allow_loopback = true)).await;
    for (path, code, starts) in [
        (
            "/v/missing.mp4",
            "video_unavailable",
            "the video cannot be downloaded: Unable to download webpage: HTTP Error 404",
        ),
        (
            "/page.html",
            "unsupported_url",
            "no video was found at the URL: Unsupported URL",
        ),
    ] {
        let id = submit_url(&env, &site.url(path)).await;
        let outcome = ingest_step(&env).await;
        let message = assert_failed_with(&env, id, &outcome, code).await;
        assert!(message.starts_with(starts), "{path}: {message}");
    }
    env.assert_clean();
}
