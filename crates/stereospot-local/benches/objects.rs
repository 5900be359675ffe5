//! Object storage throughput against plain file I/O of the same bytes, measured in the same run.
//!
//! `cargo bench -p stereospot-local --bench objects` (set `OBJECT_BENCH_MB` to change the size,
//! 64 by default). Each figure is the median of 5 runs; the ratio is storage / baseline (1.0 =
//! as fast as plain file I/O).
//!
//! - put_stream: an in-memory object in 1 MiB chunks through `put_stream` (temp file, fsync,
//!   rename, directory fsync) vs writing the same chunks to a file with tokio and fsyncing it.
//! - put_file: `put_file` vs `std::fs::copy` + fsync.
//! - get_stream: reading the object through `get_stream` vs reading the file with tokio in
//!   256 KiB chunks (page cache warm in both).
//! - presigned HTTP GET/PUT over loopback vs the same stream calls.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use stereospot_core::platform::{ByteStream, ObjectStorage, PresignOptions};
use stereospot_local::http::router;
use stereospot_local::storage::{FsObjectStorage, FsStorageOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHUNK: usize = 1 << 20;

fn chunks(data: &Bytes) -> ByteStream {
    let data = data.clone();
    let n = data.len().div_ceil(CHUNK);
    Box::pin(futures::stream::iter((0..n).map(move |i| {
        Ok(data.slice(i * CHUNK..((i + 1) * CHUNK).min(data.len())))
    })))
}

async fn median<F, Fut>(runs: usize, mut f: F) -> Duration
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let t = Instant::now();
        f(i).await;
        times.push(t.elapsed());
    }
    times.sort();
    times[runs / 2]
}

fn report(name: &str, bytes: usize, ours: Duration, baseline: Duration) {
    let mbs = |d: Duration| bytes as f64 / (1 << 20) as f64 / d.as_secs_f64();
    println!(
        "{name:<22} {:>8.0} MB/s   baseline {:>8.0} MB/s   ratio {:.2}",
        mbs(ours),
        mbs(baseline),
        mbs(ours) / mbs(baseline)
    );
}

async fn drain(mut s: ByteStream) -> usize {
    let mut n = 0;
    while let Some(c) = s.next().await {
        n += c.unwrap().len();
    }
    n
}

async fn bench_objects(dir: &Path, mb: usize) {
    const RUNS: usize = 5;
    let size = mb << 20;
    let data = Bytes::from((0..size).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
    let storage = Arc::new(
        FsObjectStorage::open(&dir.join("data"), FsStorageOptions::default())
            .await
            .unwrap(),
    );
    let s: Arc<dyn ObjectStorage> = storage.clone();
    let plain = dir.join("plain");
    std::fs::create_dir_all(&plain).unwrap();

    println!("object storage vs plain file I/O, {mb} MiB object, median of {RUNS}");

    let ours = median(RUNS, |i| {
        let (s, data) = (s.clone(), data.clone());
        async move {
            s.put_stream("bench", &format!("put/{i}"), chunks(&data))
                .await
                .unwrap();
        }
    })
    .await;
    let base = median(RUNS, |i| {
        let (data, path) = (data.clone(), plain.join(format!("w{i}")));
        async move {
            let mut f = tokio::fs::File::create(&path).await.unwrap();
            let mut c = chunks(&data);
            while let Some(chunk) = c.next().await {
                f.write_all(&chunk.unwrap()).await.unwrap();
            }
            f.sync_all().await.unwrap();
        }
    })
    .await;
    report("put_stream", size, ours, base);

    let src = plain.join("src");
    std::fs::write(&src, &data).unwrap();
    let ours = median(RUNS, |i| {
        let (s, src) = (s.clone(), src.clone());
        async move {
            s.put_file("bench", &format!("file/{i}"), &src)
                .await
                .unwrap();
        }
    })
    .await;
    let base = median(RUNS, |i| {
        let (src, dst) = (src.clone(), plain.join(format!("c{i}")));
        async move {
            tokio::task::spawn_blocking(move || {
                std::fs::copy(&src, &dst).unwrap();
                std::fs::File::open(&dst).unwrap().sync_all().unwrap();
            })
            .await
            .unwrap();
        }
    })
    .await;
    report("put_file", size, ours, base);

    let ours = median(RUNS, |_| {
        let s = s.clone();
        async move {
            assert_eq!(
                drain(s.get_stream("bench", "put/0", None).await.unwrap()).await,
                size
            );
        }
    })
    .await;
    let base = median(RUNS, |_| {
        let path = plain.join("w0");
        async move {
            let mut f = tokio::fs::File::open(&path).await.unwrap();
            let mut buf = vec![0u8; 256 << 10];
            let mut n = 0;
            loop {
                let r = f.read(&mut buf).await.unwrap();
                if r == 0 {
                    break;
                }
                n += r;
            }
            assert_eq!(n, size);
        }
    })
    .await;
    report("get_stream", size, ours, base);

    // Presigned HTTP over loopback, against the direct stream calls measured above.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    storage.set_base_url(format!("http://{}", listener.local_addr().unwrap()));
    let app = router(storage.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let opts = PresignOptions::expires_in(Duration::from_secs(600));
    let direct_get = ours;
    let ours = median(RUNS, |_| {
        let (s, http, opts) = (s.clone(), http.clone(), opts.clone());
        async move {
            let url = s.presign_get("bench", "put/0", &opts).await.unwrap();
            let resp = http.get(url).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let mut body = resp.bytes_stream();
            let mut n = 0;
            while let Some(c) = body.next().await {
                n += c.unwrap().len();
            }
            assert_eq!(n, size);
        }
    })
    .await;
    report("http GET vs get_stream", size, ours, direct_get);

    let direct_put = median(RUNS, |i| {
        let (s, data) = (s.clone(), data.clone());
        async move {
            s.put_stream("bench", &format!("put2/{i}"), chunks(&data))
                .await
                .unwrap();
        }
    })
    .await;
    let ours = median(RUNS, |i| {
        let (s, http, opts, data) = (s.clone(), http.clone(), opts.clone(), data.clone());
        async move {
            let url = s
                .presign_put("bench", &format!("http/{i}"), &opts)
                .await
                .unwrap();
            let resp = http
                .put(url)
                .body(reqwest::Body::wrap_stream(chunks(&data)))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
    })
    .await;
    report("http PUT vs put_stream", size, ours, direct_put);
}

fn main() {
    let mb = std::env::var("OBJECT_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let dir = tempfile::tempdir().unwrap();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench_objects(dir.path(), mb));
}
