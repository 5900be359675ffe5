//! The shared object-storage conformance suite run against the filesystem storage and its HTTP
//! routes, plus local-only behaviour: key validation, upload limits, notification routing, temp
//! file sweeping, crash-safe writes.

#![allow(clippy::unwrap_used)] // test helpers, not only #[test] fns

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use futures::StreamExt;
use stereospot_core::event::parse_s3_event;
use stereospot_core::platform::{
    ByteStream, Message, ObjectStorage, PlatformError, PresignOptions, Queue, QueueDepth,
    ReceiveOptions,
};
use stereospot_local::http::{ObjectRoutesConfig, router, router_with_config};
use stereospot_local::notify::{NotificationRule, Notifier};
use stereospot_local::presign::SignedMethod;
use stereospot_local::storage::{FsObjectStorage, FsStorageOptions};
use stereospot_testkit::Harness;
use stereospot_testkit::storage as suite;

use crate::harness::LocalHarness;
use tower::ServiceExt;

const BUCKET: &str = "test-bucket";

/// Serves `storage`'s routes on a fresh 127.0.0.1 port and points its URLs there.
async fn serve(storage: Arc<FsObjectStorage>, config: ObjectRoutesConfig) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    storage.set_base_url(format!("http://{addr}"));
    let app = router_with_config(Arc::clone(&storage), config);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
}

/// Filesystem storage in `dir`, served over HTTP on a port-0 listener, with an empty bucket.
/// The server task lives as long as the calling test's runtime.
pub async fn local_storage(dir: &Path) -> (Arc<dyn ObjectStorage>, String) {
    let storage = Arc::new(
        FsObjectStorage::open(dir, FsStorageOptions::default())
            .await
            .expect("open storage"),
    );
    storage.create_bucket(BUCKET).await.expect("bucket");
    serve(Arc::clone(&storage), ObjectRoutesConfig::default()).await;
    (storage, BUCKET.to_owned())
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let h = LocalHarness::new().await;
                suite::$name(&h).await;
            }
        )*
    };
}

conformance!(
    put_get_round_trip_multi_mb,
    overwrite_replaces,
    range_get,
    head_reports_size,
    delete_removes,
    delete_prefix_only_that_prefix,
    list_prefix_sorted,
    get_missing_is_not_found,
    file_round_trip,
    presigned_get_over_http,
    presigned_put_over_http,
    tampered_urls_rejected,
    expired_url_rejected,
);

// ---- local-only ----

async fn open(dir: &Path) -> Arc<FsObjectStorage> {
    Arc::new(
        FsObjectStorage::open(dir, FsStorageOptions::default())
            .await
            .expect("open"),
    )
}

fn is_invalid<T>(r: Result<T, PlatformError>) -> bool {
    matches!(r, Err(PlatformError::Invalid(_)))
}

/// Recursively lists every file under `dir`, relative.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn go(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                go(base, &e.path(), out);
            } else {
                out.push(e.path().strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    go(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn key_traversal_attempts_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let s = open(&data_dir).await;
    std::fs::write(tmp.path().join("secret.txt"), b"outside").unwrap();
    let before = files_under(tmp.path());
    let bad = [
        "../secret.txt",
        "../../secret.txt",
        "a/../../../secret.txt",
        "/etc/passwd",
        "a//b",
        "a/",
        "",
        ".",
        "..",
        "a/./b",
        "a\\..\\b",
        "a\0b",
    ];
    for key in bad {
        assert!(
            is_invalid(s.put_bytes(BUCKET, key, Bytes::from_static(b"x")).await),
            "put {key:?}"
        );
        assert!(is_invalid(s.head(BUCKET, key).await), "head {key:?}");
        assert!(
            is_invalid(s.get_stream(BUCKET, key, None).await),
            "get {key:?}"
        );
        assert!(is_invalid(s.delete(BUCKET, key).await), "delete {key:?}");
        assert!(
            is_invalid(
                s.presign_get(
                    BUCKET,
                    key,
                    &PresignOptions::expires_in(Duration::from_secs(9))
                )
                .await
            ),
            "presign {key:?}"
        );
    }
    for bucket in ["..", ".tmp", "a/b", "../x", "UPPER"] {
        assert!(
            is_invalid(s.put_bytes(bucket, "k", Bytes::from_static(b"x")).await),
            "bucket {bucket:?}"
        );
        assert!(
            is_invalid(s.list_prefix(bucket, "").await),
            "list bucket {bucket:?}"
        );
    }
    // Prefixes that could only name paths outside the bucket match nothing.
    assert!(s.delete_prefix(BUCKET, "../").await.unwrap() == 0);
    assert!(s.list_prefix(BUCKET, "../secret").await.unwrap().is_empty());
    assert_eq!(
        files_under(tmp.path()),
        before,
        "nothing was written or removed"
    );
    assert!(tmp.path().join("secret.txt").exists());

    // A traversal over HTTP never reaches storage: the path fails the signature (or routing).
    let app = router(Arc::clone(&s));
    let url = s
        .presign_get(
            BUCKET,
            "ok.bin",
            &PresignOptions::expires_in(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let query = url.split_once('?').unwrap().1;
    for path in [
        "/_objects/test-bucket/..%2F..%2Fsecret.txt",
        "/_objects/test-bucket/%2E%2E/secret.txt",
    ] {
        let resp = app
            .clone()
            .oneshot(
                Request::get(format!("{path}?{query}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert!(
            resp.status() == StatusCode::FORBIDDEN || resp.status() == StatusCode::NOT_FOUND,
            "{path}: {}",
            resp.status()
        );
    }
}

#[tokio::test]
async fn key_and_prefix_conflicts_are_invalid_not_corrupting() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path()).await;
    s.put_bytes(BUCKET, "a/b", Bytes::from_static(b"1"))
        .await
        .unwrap();
    assert!(is_invalid(
        s.put_bytes(BUCKET, "a", Bytes::from_static(b"2")).await
    ));
    s.put_bytes(BUCKET, "c", Bytes::from_static(b"3"))
        .await
        .unwrap();
    assert!(is_invalid(
        s.put_bytes(BUCKET, "c/d", Bytes::from_static(b"4")).await
    ));
    assert_eq!(s.list_prefix(BUCKET, "").await.unwrap(), vec!["a/b", "c"]);
    // Reading through an object as if it were a directory is just "absent".
    assert_eq!(s.head(BUCKET, "c/d").await.unwrap(), None);
    assert!(matches!(
        s.get_stream(BUCKET, "c/d", None).await,
        Err(PlatformError::NotFound(_))
    ));
    assert!(
        files_under(&tmp.path().join("objects/.tmp")).is_empty(),
        "no temp files left"
    );
}

async fn put_status(
    app: &axum::Router,
    url: &str,
    body: Body,
    content_length: Option<u64>,
) -> StatusCode {
    let path_and_query = &url[url.find("/_objects").unwrap()..];
    let mut req = Request::put(path_and_query);
    if let Some(n) = content_length {
        req = req.header("content-length", n);
    }
    app.clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn oversize_put_is_413_and_stores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path()).await;
    let app = router_with_config(
        Arc::clone(&s),
        ObjectRoutesConfig {
            max_put_bytes: 1 << 20,
        },
    );
    let url = s
        .presign_put(
            BUCKET,
            "big.bin",
            &PresignOptions::expires_in(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let big = Bytes::from(suite::pattern((1 << 20) + 1, 9));

    // Declared too large: refused before reading.
    assert_eq!(
        put_status(&app, &url, Body::from(big.clone()), Some(big.len() as u64)).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Streamed without a length: refused when the limit is crossed.
    let chunks: Vec<Result<Bytes, std::io::Error>> = big
        .chunks(64 << 10)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    assert_eq!(
        put_status(
            &app,
            &url,
            Body::from_stream(futures::stream::iter(chunks)),
            None
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(s.head(BUCKET, "big.bin").await.unwrap(), None);
    assert!(
        files_under(&tmp.path().join("objects/.tmp")).is_empty(),
        "temp file removed"
    );

    // Exactly the limit is fine.
    let exact = big.slice(..1 << 20);
    assert_eq!(
        put_status(
            &app,
            &url,
            Body::from(exact.clone()),
            Some(exact.len() as u64)
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        s.head(BUCKET, "big.bin").await.unwrap().unwrap().size,
        1 << 20
    );
}

#[tokio::test]
async fn put_content_type_is_enforced_and_get_headers_are_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path()).await;
    let app = router(Arc::clone(&s));
    let options = PresignOptions {
        content_type: Some("video/mp4".into()),
        ..PresignOptions::expires_in(Duration::from_secs(60))
    };
    let url = s
        .presign_put(BUCKET, "v/source.mp4", &options)
        .await
        .unwrap();
    let pq = url[url.find("/_objects").unwrap()..].to_owned();
    let send = |ct: Option<&str>| {
        let mut req = Request::put(pq.as_str());
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        app.clone()
            .oneshot(req.body(Body::from("0123456789")).unwrap())
    };
    assert_eq!(send(None).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        send(Some("text/html")).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(Some("video/mp4")).await.unwrap().status(),
        StatusCode::OK
    );
    // A GET signature does not authorise a PUT, nor the reverse.
    let get_url = s
        .presign_get(BUCKET, "v/source.mp4", &options)
        .await
        .unwrap();
    let get_pq = &get_url[get_url.find("/_objects").unwrap()..];
    let resp = app
        .clone()
        .oneshot(
            Request::put(get_pq)
                .header("content-type", "video/mp4")
                .body(Body::from("x"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = app
        .clone()
        .oneshot(Request::get(pq.as_str()).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let get = |range: Option<&str>, method: &str| {
        let mut req = Request::builder().method(method).uri(get_pq);
        if let Some(r) = range {
            req = req.header("range", r);
        }
        app.clone().oneshot(req.body(Body::empty()).unwrap())
    };
    let resp = get(None, "GET").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    assert_eq!(h["content-type"], "video/mp4");
    assert_eq!(h["content-length"], "10");
    assert_eq!(h["accept-ranges"], "bytes");
    assert!(h.contains_key("etag"));
    let resp = get(Some("bytes=-3"), "GET").await.unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()["content-range"], "bytes 7-9/10");
    assert_eq!(resp.headers()["content-length"], "3");
    let body = axum::body::to_bytes(resp.into_body(), 100).await.unwrap();
    assert_eq!(body.as_ref(), b"789");
    let resp = get(Some("bytes=10-"), "GET").await.unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(resp.headers()["content-range"], "bytes */10");
    let resp = get(None, "HEAD").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-length"], "10");
    assert!(
        axum::body::to_bytes(resp.into_body(), 100)
            .await
            .unwrap()
            .is_empty()
    );

    // Missing object: 404 for GET and HEAD with a valid signature.
    let missing = s
        .presign_get(
            BUCKET,
            "v/missing.mp4",
            &PresignOptions::expires_in(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let mpq = &missing[missing.find("/_objects").unwrap()..];
    for method in ["GET", "HEAD"] {
        let resp = app
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(mpq)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{method}");
    }
}

#[tokio::test]
async fn already_expired_url_is_rejected_without_waiting() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path()).await;
    s.put_bytes(BUCKET, "x", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let app = router(Arc::clone(&s));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let o = PresignOptions::expires_in(Duration::from_secs(1));
    for (expires, want) in [(now - 1, StatusCode::FORBIDDEN), (now + 60, StatusCode::OK)] {
        let url = s
            .presign_at(SignedMethod::Get, BUCKET, "x", &o, expires)
            .unwrap();
        let resp = app
            .clone()
            .oneshot(
                Request::get(&url[url.find("/_objects").unwrap()..])
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), want, "expires {expires} (now {now})");
    }
}

#[tokio::test]
async fn secret_persists_so_urls_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let s1 = open(tmp.path()).await;
    s1.put_bytes(BUCKET, "k", Bytes::from_static(b"v"))
        .await
        .unwrap();
    let url = s1
        .presign_get(
            BUCKET,
            "k",
            &PresignOptions::expires_in(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    drop(s1);
    let s2 = open(tmp.path()).await;
    let resp = router(Arc::clone(&s2))
        .oneshot(
            Request::get(&url[url.find("/_objects").unwrap()..])
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // A different data directory has a different secret.
    let other = tempfile::tempdir().unwrap();
    let s3 = open(other.path()).await;
    s3.put_bytes(BUCKET, "k", Bytes::from_static(b"v"))
        .await
        .unwrap();
    let resp = router(s3)
        .oneshot(
            Request::get(&url[url.find("/_objects").unwrap()..])
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn temp_files_of_dead_writers_are_swept_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path()).await;
    drop(s);
    let tmp_dir = tmp.path().join("objects/.tmp");
    // pid 4294967295 cannot exist; junk names are swept too; our own pid's may be in use.
    let dead = tmp_dir.join("4294967295.0123456789abcdef.tmp");
    let junk = tmp_dir.join("junk");
    let ours = tmp_dir.join(format!("{}.0000000000000000.tmp", std::process::id()));
    for p in [&dead, &junk, &ours] {
        std::fs::write(p, b"partial upload").unwrap();
    }
    let _s = open(tmp.path()).await;
    assert!(!dead.exists(), "dead writer's temp file swept");
    assert!(!junk.exists(), "junk swept");
    assert!(ours.exists(), "a live writer's temp file is kept");
}

/// A stream that fails after some bytes: the put fails and nothing becomes visible.
#[tokio::test]
async fn failed_put_leaves_old_object_and_no_temp_file() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path()).await;
    s.put_bytes(BUCKET, "k", Bytes::from_static(b"old"))
        .await
        .unwrap();
    let chunks: Vec<std::io::Result<Bytes>> = vec![
        Ok(Bytes::from(vec![1u8; 300_000])),
        Ok(Bytes::from(vec![2u8; 3_000_000])),
        Err(std::io::Error::other("client went away")),
    ];
    let body: ByteStream = Box::pin(futures::stream::iter(chunks));
    assert!(s.put_stream(BUCKET, "k", body).await.is_err());
    let got = suite::collect(s.get_stream(BUCKET, "k", None).await.unwrap()).await;
    assert_eq!(got, b"old");
    assert!(files_under(&tmp.path().join("objects/.tmp")).is_empty());
    // And a dropped (cancelled) put cleans up too.
    let pending: ByteStream = Box::pin(
        futures::stream::once(async { Ok(Bytes::from_static(b"abc")) })
            .chain(futures::stream::pending()),
    );
    let r = tokio::time::timeout(
        Duration::from_millis(200),
        s.put_stream(BUCKET, "k", pending),
    )
    .await;
    assert!(r.is_err(), "put of a stalled stream cannot finish");
    assert!(
        files_under(&tmp.path().join("objects/.tmp")).is_empty(),
        "cancelled put cleaned up"
    );
    assert_eq!(
        suite::collect(s.get_stream(BUCKET, "k", None).await.unwrap()).await,
        b"old"
    );
}

#[tokio::test]
async fn concurrent_writers_of_one_key_leave_one_whole_version() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path()).await;
    let versions: Vec<Vec<u8>> = (0..8)
        .map(|i| suite::pattern(400_000 + i * 1000, i as u64 + 1))
        .collect();
    let mut tasks = Vec::new();
    for v in versions.clone() {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            s.put_stream(BUCKET, "race/k", chunked(v)).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let got = suite::collect(s.get_stream(BUCKET, "race/k", None).await.unwrap()).await;
    assert!(
        versions.contains(&got),
        "object is exactly one of the written versions"
    );
}

/// `data` as a stream of 10 kB chunks.
fn chunked(data: Vec<u8>) -> ByteStream {
    let data = Bytes::from(data);
    let chunks: Vec<std::io::Result<Bytes>> = (0..data.len().div_ceil(10_000))
        .map(|i| Ok(data.slice(i * 10_000..((i + 1) * 10_000).min(data.len()))))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

/// An in-memory queue recording what was sent.
#[derive(Debug, Default)]
struct RecordingQueue {
    name: String,
    sent: Mutex<Vec<String>>,
    fail: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Queue for RecordingQueue {
    fn name(&self) -> &str {
        &self.name
    }
    async fn send(&self, body: &str) -> stereospot_core::platform::Result<String> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PlatformError::backend("send", "queue unavailable"));
        }
        let mut sent = self.sent.lock().unwrap();
        sent.push(body.to_owned());
        Ok(sent.len().to_string())
    }
    async fn send_batch(
        &self,
        bodies: &[String],
    ) -> stereospot_core::platform::Result<Vec<String>> {
        let mut ids = Vec::new();
        for b in bodies {
            ids.push(self.send(b).await?);
        }
        Ok(ids)
    }
    async fn receive(&self, _: &ReceiveOptions) -> stereospot_core::platform::Result<Vec<Message>> {
        unreachable!("not used by notifications")
    }
    async fn delete(&self, _: &str) -> stereospot_core::platform::Result<()> {
        unreachable!("not used by notifications")
    }
    async fn change_visibility(
        &self,
        _: &str,
        _: Duration,
    ) -> stereospot_core::platform::Result<()> {
        unreachable!("not used by notifications")
    }
    async fn depth(&self) -> stereospot_core::platform::Result<QueueDepth> {
        unreachable!("not used by notifications")
    }
}

fn recording(name: &str) -> Arc<RecordingQueue> {
    Arc::new(RecordingQueue {
        name: name.into(),
        ..Default::default()
    })
}

/// (bucket, decoded key, size) of every event a queue got.
fn events(q: &RecordingQueue) -> Vec<(String, String, Option<u64>)> {
    q.sent
        .lock()
        .unwrap()
        .iter()
        .flat_map(|b| parse_s3_event(b).unwrap())
        .map(|e| {
            assert_eq!(e.event_name, "ObjectCreated:Put");
            (e.bucket, e.key, e.size)
        })
        .collect()
}

/// (bucket, decoded key, size) of every event waiting in a real queue.
async fn received(q: &dyn Queue) -> Vec<(String, String, Option<u64>)> {
    let options = ReceiveOptions {
        max_messages: 10,
        wait: Duration::ZERO,
        visibility_timeout: None,
    };
    let mut out = Vec::new();
    for m in q.receive(&options).await.unwrap() {
        for e in parse_s3_event(&m.body).unwrap() {
            assert_eq!(e.event_name, "ObjectCreated:Put");
            out.push((e.bucket, e.key, e.size));
        }
    }
    out
}

#[tokio::test]
async fn notifications_are_routed_by_bucket_prefix_and_suffix() {
    let tmp = tempfile::tempdir().unwrap();
    // Real SQLite queues for routing; a recording fake where a failure must be injected.
    let h = LocalHarness::new().await;
    let chunking = recording("chunking");
    let (inference, _) = h.queue(Duration::from_secs(30), 5).await;
    let (outputs, _) = h.queue(Duration::from_secs(30), 5).await;
    let rule = |bucket: &str, prefix: &str, suffix: &str, q: Arc<dyn Queue>| NotificationRule {
        bucket: bucket.into(),
        prefix: prefix.into(),
        suffix: suffix.into(),
        queue: q,
    };
    let notifier = Notifier::new(vec![
        rule("in-bucket", "input/", ".mp4", chunking.clone()),
        rule("in-bucket", "segments/", ".mp4", Arc::clone(&inference)),
        rule("out-bucket", "jobs/", ".mp4", Arc::clone(&outputs)),
    ]);
    let s = Arc::new(
        FsObjectStorage::open(
            tmp.path(),
            FsStorageOptions {
                notifier,
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    serve(Arc::clone(&s), ObjectRoutesConfig::default()).await;
    let b = |x: &'static [u8]| Bytes::from_static(x);
    // A key that needs form encoding (space, plus, percent, non-ASCII) round-trips decoded.
    let odd = "input/a b+c%d é/source.mp4";
    s.put_bytes("in-bucket", odd, b(b"12345")).await.unwrap();
    s.put_bytes("in-bucket", "input/x/notes.txt", b(b"no"))
        .await
        .unwrap(); // suffix mismatch
    s.put_bytes("in-bucket", "jobs/x/final.mp4", b(b"no"))
        .await
        .unwrap(); // prefix mismatch
    s.put_bytes("out-bucket", "input/y/source.mp4", b(b"no"))
        .await
        .unwrap(); // bucket mismatch
    s.put_bytes(
        "in-bucket",
        "segments/j/00001_00002_anaglyph.mp4",
        b(b"seg"),
    )
    .await
    .unwrap();
    // Uploads through a presigned PUT notify as well.
    let url = s
        .presign_put(
            "out-bucket",
            "jobs/j/segments/00001.mp4",
            &PresignOptions::expires_in(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .put(url)
        .body("out!")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    assert_eq!(
        events(&chunking),
        vec![("in-bucket".into(), odd.into(), Some(5))]
    );
    assert_eq!(
        received(&*inference).await,
        vec![(
            "in-bucket".into(),
            "segments/j/00001_00002_anaglyph.mp4".into(),
            Some(3)
        )]
    );
    assert_eq!(
        received(&*outputs).await,
        vec![(
            "out-bucket".into(),
            "jobs/j/segments/00001.mp4".into(),
            Some(4)
        )]
    );
    // The raw body carries a form-encoded key, as AWS sends it.
    let raw = chunking.sent.lock().unwrap()[0].clone();
    assert!(raw.contains("input/a+b%2Bc%25d+%C3%A9/source.mp4"), "{raw}");

    // A failed send fails the put (so the caller retries), but the object is durable.
    chunking
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        s.put_bytes("in-bucket", "input/z/source.mp4", b(b"zz"))
            .await
            .is_err()
    );
    assert!(
        s.head("in-bucket", "input/z/source.mp4")
            .await
            .unwrap()
            .is_some()
    );
    chunking
        .fail
        .store(false, std::sync::atomic::Ordering::SeqCst);
    s.put_bytes("in-bucket", "input/z/source.mp4", b(b"zz"))
        .await
        .unwrap();
    assert_eq!(events(&chunking).len(), 2);
}

#[tokio::test]
async fn unsent_notifications_are_replayed_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let q = recording("chunking");
    let notifier = Notifier::new(vec![NotificationRule {
        bucket: "in-bucket".into(),
        prefix: "input/".into(),
        suffix: String::new(),
        queue: Arc::clone(&q) as Arc<dyn Queue>,
    }]);
    let options = FsStorageOptions {
        notifier,
        ..Default::default()
    };
    let s = FsObjectStorage::open(tmp.path(), options.clone())
        .await
        .unwrap();
    // The queue is down: the object is stored, the notification is not sent, and (as after a
    // crash between rename and send) nobody retries the put.
    q.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        s.put_bytes(
            "in-bucket",
            "input/j/source.mp4",
            Bytes::from_static(b"src")
        )
        .await
        .is_err()
    );
    // Records of writes that crashed before their rename (object absent), or torn records.
    let outbox = tmp.path().join("objects/.outbox");
    std::fs::write(
        outbox.join("never.json"),
        br#"{"bucket":"in-bucket","key":"input/never/source.mp4"}"#,
    )
    .unwrap();
    std::fs::write(outbox.join("torn.json"), br#"{"bucket":"in-b"#).unwrap();
    assert_eq!(files_under(&outbox).len(), 3);
    drop(s);
    assert!(events(&q).is_empty());

    q.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    let s = FsObjectStorage::open(tmp.path(), options.clone())
        .await
        .unwrap();
    assert_eq!(
        events(&q),
        vec![("in-bucket".into(), "input/j/source.mp4".into(), Some(3))]
    );
    assert!(
        files_under(&tmp.path().join("objects/.outbox")).is_empty(),
        "outbox drained"
    );
    // Sent records are not replayed again.
    drop(s);
    let _s = FsObjectStorage::open(tmp.path(), options).await.unwrap();
    assert_eq!(events(&q).len(), 1);
}
