//! Conformance tests of [`ObjectStorage`](stereospot_core::platform::ObjectStorage).
//!
//! The presigned-URL tests talk plain HTTP to the URLs the storage returns. The tamper and expiry
//! tests need a server that checks signatures (S3 and the local platform do; moto does not, so an
//! AWS harness against moto skips those two). They find the signature, expiry and disposition
//! query parameters by name (`*Signature`, `*Expires`, `*disposition`, case-insensitive), which
//! covers both the local form and S3's SigV4 form.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use stereospot_core::platform::{ByteRange, ByteStream, PlatformError, PresignOptions};

use crate::Harness;

/// Deterministic pseudo-random bytes (xorshift), so corrupted or reordered chunks are caught.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A stream of `total` pattern bytes in chunks of `chunk` bytes, generated lazily.
pub fn pattern_stream(total: usize, chunk: usize, seed: u64) -> ByteStream {
    let data = Bytes::from(pattern(total, seed));
    let chunks = (0..total.div_ceil(chunk)).map(move |i| {
        let end = ((i + 1) * chunk).min(total);
        Ok(data.slice(i * chunk..end))
    });
    Box::pin(futures::stream::iter(chunks))
}

/// Reads a whole stream (tests only).
pub async fn collect(mut stream: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("stream chunk"));
    }
    out
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client")
}

fn opts(secs: u64) -> PresignOptions {
    PresignOptions::expires_in(Duration::from_secs(secs))
}

/// A multi-megabyte stream, in uneven chunks, comes back byte for byte.
pub async fn put_get_round_trip_multi_mb(h: &dyn Harness) {
    let (s, bucket) = h.storage().await;
    let total = 5 * 1024 * 1024 + 123;
    let meta = s
        .put_stream(&bucket, "big/object.bin", pattern_stream(total, 65_537, 1))
        .await
        .expect("put_stream");
    assert_eq!(meta.size, total as u64);
    let got = collect(
        s.get_stream(&bucket, "big/object.bin", None)
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(got.len(), total);
    assert!(got == pattern(total, 1), "round-tripped bytes differ");
}

/// An overwrite replaces the object whole.
pub async fn overwrite_replaces(h: &dyn Harness) {
    let (s, bucket) = h.storage().await;
    s.put_bytes(&bucket, "k", Bytes::from_static(b"first version"))
        .await
        .expect("put 1");
    s.put_bytes(&bucket, "k", Bytes::from_static(b"second"))
        .await
        .expect("put 2");
    assert_eq!(
        collect(s.get_stream(&bucket, "k", None).await.expect("get")).await,
        b"second"
    );
    assert_eq!(
        s.head(&bucket, "k")
            .await
            .expect("head")
            .expect("exists")
            .size,
        6
    );
}

/// Ranges are inclusive, open-ended ranges run to the end, and an end past the object is clamped.
pub async fn range_get(h: &dyn Harness) {
    let (s, bucket) = h.storage().await;
    let data = pattern(1000, 2);
    s.put_bytes(&bucket, "r.bin", Bytes::from(data.clone()))
        .await
        .expect("put");
    let get = |start, end| {
        let s = s.clone();
        let bucket = bucket.clone();
        async move {
            collect(
                s.get_stream(&bucket, "r.bin", Some(ByteRange { start, end }))
                    .await
                    .expect("range get"),
            )
            .await
        }
    };
    assert_eq!(get(10, Some(19)).await, &data[10..20]);
    assert_eq!(get(0, Some(0)).await, &data[0..1]);
    assert_eq!(get(990, None).await, &data[990..]);
    assert_eq!(get(995, Some(5000)).await, &data[995..]);
}

/// `head` reports the size (and an etag that changes with the content); absent keys are `None`.
pub async fn head_reports_size(h: &dyn Harness) {
    let (s, bucket) = h.storage().await;
    assert_eq!(s.head(&bucket, "nope").await.expect("head missing"), None);
    let put = s
        .put_bytes(&bucket, "dir/h.txt", Bytes::from_static(b"hello"))
        .await
        .expect("put");
    let head = s
        .head(&bucket, "dir/h.txt")
        .await
        .expect("head")
        .expect("object exists");
    assert_eq!(head.size, 5);
    assert_eq!(head.etag, put.etag, "head and put report the same etag");
    s.put_bytes(&bucket, "dir/h.txt", Bytes::from_static(b"world"))
        .await
        .expect("put again");
    let again = s
        .head(&bucket, "dir/h.txt")
        .await
        .expect("head")
        .expect("exists");
    assert!(again.etag.is_some());
    // S3's etag is a content hash (equal here only if contents were equal); ours changes with
    // every write. Either way, different content must not keep the etag.
    assert_ne!(again.etag, head.etag);
    // A "directory" is not an object.
    assert_eq!(s.head(&bucket, "dir").await.expect("head dir"), None);
}

/// `delete` removes an object; deleting an absent one succeeds.
pub async fn delete_removes(h: &dyn Harness) {
    let (s, bucket) = h.storage().await;
    s.put_bytes(&bucket, "a/b/c", Bytes::from_static(b"x"))
        .await
        .expect("put");
    s.put_bytes(&bucket, "a/b/d", Bytes::from_static(b"y"))
        .await
        .expect("put");
    s.delete(&bucket, "a/b/c").await.expect("delete");
    assert_eq!(s.head(&bucket, "a/b/c").await.expect("head"), None);
    assert!(s.head(&bucket, "a/b/d").await.expect("head").is_some());
    s.delete(&bucket, "a/b/c").await.expect("delete again");
    s.delete(&bucket, "never/existed")
        .await
        .expect("delete absent");
    assert_eq!(
        s.list_prefix(&bucket, "").await.expect("list"),
        vec!["a/b/d"]
    );
}

fn keys() -> Vec<&'static str> {
    vec![
        "jobs/a/1.mp4",
        "jobs/a/2.mp4",
        "jobs/ab/3.mp4",
        "jobs/b/1.mp4",
        "other.txt",
        "input/a/source.mp4",
    ]
}

async fn put_keys(
    h: &dyn Harness,
) -> (
    std::sync::Arc<dyn stereospot_core::platform::ObjectStorage>,
    String,
) {
    let (s, bucket) = h.storage().await;
    for k in keys() {
        s.put_bytes(&bucket, k, Bytes::from(k.as_bytes().to_vec()))
            .await
            .expect("put");
    }
    (s, bucket)
}

/// `delete_prefix` removes exactly the keys starting with the prefix (string prefix, as S3).
pub async fn delete_prefix_only_that_prefix(h: &dyn Harness) {
    let (s, bucket) = put_keys(h).await;
    assert_eq!(
        s.delete_prefix(&bucket, "jobs/a/")
            .await
            .expect("delete_prefix"),
        2
    );
    assert_eq!(
        s.list_prefix(&bucket, "").await.expect("list"),
        vec![
            "input/a/source.mp4",
            "jobs/ab/3.mp4",
            "jobs/b/1.mp4",
            "other.txt"
        ]
    );
    // Without the slash, "jobs/a" also matches "jobs/ab/...".
    assert_eq!(
        s.delete_prefix(&bucket, "jobs/a")
            .await
            .expect("delete_prefix"),
        1
    );
    assert_eq!(
        s.delete_prefix(&bucket, "nothing/")
            .await
            .expect("delete_prefix"),
        0
    );
    assert_eq!(
        s.list_prefix(&bucket, "").await.expect("list"),
        vec!["input/a/source.mp4", "jobs/b/1.mp4", "other.txt"]
    );
    // The deleted keys can be written again (no leftover directories in the way).
    s.put_bytes(&bucket, "jobs/a", Bytes::from_static(b"now a file"))
        .await
        .expect("put where a prefix was");
}

/// `list_prefix` returns every key under the prefix, sorted.
pub async fn list_prefix_sorted(h: &dyn Harness) {
    let (s, bucket) = put_keys(h).await;
    assert_eq!(
        s.list_prefix(&bucket, "jobs/").await.expect("list"),
        vec![
            "jobs/a/1.mp4",
            "jobs/a/2.mp4",
            "jobs/ab/3.mp4",
            "jobs/b/1.mp4"
        ]
    );
    assert_eq!(
        s.list_prefix(&bucket, "jobs/a").await.expect("list"),
        vec!["jobs/a/1.mp4", "jobs/a/2.mp4", "jobs/ab/3.mp4"]
    );
    assert_eq!(
        s.list_prefix(&bucket, "jobs/a/2").await.expect("list"),
        vec!["jobs/a/2.mp4"]
    );
    assert_eq!(
        s.list_prefix(&bucket, "").await.expect("list").len(),
        keys().len()
    );
    assert!(
        s.list_prefix(&bucket, "zzz")
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        s.list_prefix(&bucket, "jobs/c/")
            .await
            .expect("list")
            .is_empty()
    );
}

/// Reading an absent object is `NotFound`, for streams and files alike.
pub async fn get_missing_is_not_found(h: &dyn Harness) {
    let (s, bucket) = h.storage().await;
    match s.get_stream(&bucket, "missing/key", None).await {
        Err(PlatformError::NotFound(_)) => {}
        Err(e) => panic!("expected NotFound, got {e:?}"),
        Ok(_) => panic!("expected NotFound, got a stream"),
    }
    let dir = std::env::temp_dir().join(format!("stereospot-testkit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let dst = dir.join("missing.bin");
    match s.get_to_file(&bucket, "missing/key", &dst).await {
        Err(PlatformError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `put_file` and `get_to_file` move whole files.
pub async fn file_round_trip(h: &dyn Harness) {
    let (s, bucket) = h.storage().await;
    let dir = std::env::temp_dir().join(format!(
        "stereospot-testkit-files-{}-{}",
        std::process::id(),
        bucket
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let src = dir.join("src.bin");
    let data = pattern(1_500_000, 3);
    std::fs::write(&src, &data).expect("write src");
    let meta = s
        .put_file(&bucket, "f/file.bin", &src)
        .await
        .expect("put_file");
    assert_eq!(meta.size, data.len() as u64);
    let dst = dir.join("dst.bin");
    assert_eq!(
        s.get_to_file(&bucket, "f/file.bin", &dst)
            .await
            .expect("get_to_file"),
        data.len() as u64
    );
    assert!(std::fs::read(&dst).expect("read dst") == data);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A presigned GET serves the bytes (whole and ranged) with the signed Content-Disposition.
pub async fn presigned_get_over_http(h: &dyn Harness) {
    let (s, bucket) = h.storage().await;
    let data = pattern(3 * 1024 * 1024 + 7, 4);
    let key = "jobs/some job/final file.mp4";
    s.put_bytes(&bucket, key, Bytes::from(data.clone()))
        .await
        .expect("put");
    let disposition = "attachment; filename=\"final 3d.mp4\"; filename*=UTF-8''final%203d.mp4";
    let options = PresignOptions {
        content_disposition: Some(disposition.into()),
        ..opts(60)
    };
    let url = s
        .presign_get(&bucket, key, &options)
        .await
        .expect("presign");
    let http = client();
    let resp = http.get(&url).send().await.expect("GET");
    assert_eq!(resp.status(), 200, "GET {url}");
    assert_eq!(
        resp.headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok()),
        Some(disposition)
    );
    let body = resp.bytes().await.expect("body");
    assert!(body.as_ref() == data.as_slice(), "GET body differs");

    let resp = http
        .get(&url)
        .header("Range", "bytes=100-199")
        .send()
        .await
        .expect("range GET");
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.bytes().await.expect("body").as_ref(), &data[100..200]);
}

/// A presigned PUT uploads over HTTP; the object is then readable.
pub async fn presigned_put_over_http(h: &dyn Harness) {
    let (s, bucket) = h.storage().await;
    let key = "input/upload/source.mp4";
    let url = s
        .presign_put(&bucket, key, &opts(60))
        .await
        .expect("presign put");
    let data = pattern(3 * 1024 * 1024 + 11, 5);
    let resp = client()
        .put(&url)
        .body(data.clone())
        .send()
        .await
        .expect("PUT");
    assert!(resp.status().is_success(), "PUT status {}", resp.status());
    let head = s.head(&bucket, key).await.expect("head").expect("uploaded");
    assert_eq!(head.size, data.len() as u64);
    let got = collect(s.get_stream(&bucket, key, None).await.expect("get")).await;
    assert!(got == data, "uploaded bytes differ");
}

fn set_query(
    url: &reqwest::Url,
    matches: impl Fn(&str) -> bool,
    f: impl Fn(&str) -> String,
) -> reqwest::Url {
    let mut out = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if matches(&k.to_ascii_lowercase()) {
                f(&v)
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    out.query_pairs_mut().clear().extend_pairs(pairs);
    out
}

fn has_param(url: &reqwest::Url, matches: impl Fn(&str) -> bool) -> bool {
    url.query_pairs()
        .any(|(k, _)| matches(&k.to_ascii_lowercase()))
}

/// Changing the key, the expiry, the signature or the disposition of a URL gets it refused.
pub async fn tampered_urls_rejected(h: &dyn Harness) {
    let (s, bucket) = h.storage().await;
    s.put_bytes(&bucket, "t/a.bin", Bytes::from_static(b"aaaa"))
        .await
        .expect("put");
    s.put_bytes(&bucket, "t/b.bin", Bytes::from_static(b"bbbb"))
        .await
        .expect("put");
    let options = PresignOptions {
        content_disposition: Some("attachment; filename=\"a.bin\"".into()),
        ..opts(300)
    };
    let raw = s
        .presign_get(&bucket, "t/a.bin", &options)
        .await
        .expect("presign");
    let url = reqwest::Url::parse(&raw).expect("presigned URL parses");
    let http = client();
    let status = |u: reqwest::Url| {
        let http = http.clone();
        async move { http.get(u).send().await.expect("GET").status().as_u16() }
    };
    // The untouched URL works: the rejections below are about the tampering.
    assert_eq!(status(url.clone()).await, 200);

    // Re-encoding the query without changing a value keeps it valid (so the 403s below are
    // caused by the changes, not by the re-encoding).
    let reencoded = set_query(&url, |_| false, str::to_owned);
    assert_eq!(status(reencoded).await, 200, "re-encoded URL");

    let mut other_key = url.clone();
    other_key.set_path(&url.path().replace("a.bin", "b.bin"));
    assert_ne!(other_key, url);
    assert_eq!(status(other_key).await, 403, "changed key");

    assert!(
        has_param(&url, |k| k.ends_with("expires")),
        "no expiry parameter in {url}"
    );
    let later = set_query(
        &url,
        |k| k.ends_with("expires"),
        |v| (v.parse::<u64>().expect("numeric expiry") + 3600).to_string(),
    );
    assert_eq!(status(later).await, 403, "changed expiry");

    assert!(
        has_param(&url, |k| k.ends_with("signature")),
        "no signature parameter in {url}"
    );
    let flipped = set_query(
        &url,
        |k| k.ends_with("signature"),
        |v| {
            let mut chars: Vec<char> = v.chars().collect();
            chars[0] = if chars[0] == '0' { '1' } else { '0' };
            chars.into_iter().collect()
        },
    );
    assert_eq!(status(flipped).await, 403, "changed signature");

    assert!(
        has_param(&url, |k| k.contains("disposition")),
        "no disposition parameter in {url}"
    );
    let renamed = set_query(
        &url,
        |k| k.contains("disposition"),
        |_| "attachment; filename=\"evil.exe\"".into(),
    );
    assert_eq!(status(renamed).await, 403, "changed disposition");
}

/// A URL is refused once it has expired (this test waits about two seconds).
pub async fn expired_url_rejected(h: &dyn Harness) {
    let (s, bucket) = h.storage().await;
    s.put_bytes(&bucket, "e.bin", Bytes::from_static(b"data"))
        .await
        .expect("put");
    let url = s
        .presign_get(&bucket, "e.bin", &opts(1))
        .await
        .expect("presign");
    let http = client();
    assert_eq!(
        http.get(&url).send().await.expect("GET").status(),
        200,
        "fresh URL"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        http.get(&url).send().await.expect("GET").status(),
        403,
        "expired URL"
    );
}
