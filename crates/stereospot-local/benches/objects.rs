//! Object storage throughput against plain file I/O of the same bytes, measured in the same run.
//!
//! `cargo bench -p stereospot-local --bench objects` (set `OBJECT_BENCH_MB` to change the size,
//! 64 by default). Each figure is the median of 5 runs; the ratio is storage / baseline (1.0 =
//! as fast as plain file I/O). Storage and baseline runs alternate.
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

/// Medians of `ours` and `base`, run alternately (and in alternating order) so background
/// writeback and other load hit both alike.
async fn pair<F, G, FF, GF>(runs: usize, mut ours: F, mut base: G) -> (Duration, Duration)
where
    F: FnMut(usize) -> FF,
    G: FnMut(usize) -> GF,
    FF: std::future::Future<Output = ()>,
    GF: std::future::Future<Output = ()>,
{
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..runs {
        for first in [i % 2 == 0, i % 2 != 0] {
            let t = Instant::now();
            if first {
                ours(i).await;
                a.push(t.elapsed());
            } else {
                base(i).await;
                b.push(t.elapsed());
            }
        }
    }
    a.sort();
    b.sort();
    (a[runs / 2], b[runs / 2])
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

    println!(
        "object storage vs plain file I/O, {mb} MiB object, median of {RUNS} alternating runs"
    );

    let put_stream = |prefix: &'static str| {
        let (s, data) = (s.clone(), data.clone());
        move |i: usize| {
            let (s, data) = (s.clone(), data.clone());
            async move {
                s.put_stream("bench", &format!("{prefix}/{i}"), chunks(&data))
                    .await
                    .unwrap();
            }
        }
    };
    let (ours, base) = pair(RUNS, put_stream("put"), |i| {
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
    let (ours, base) = pair(
        RUNS,
        |i| {
            let (s, src) = (s.clone(), src.clone());
            async move {
                s.put_file("bench", &format!("file/{i}"), &src)
                    .await
                    .unwrap();
            }
        },
        |i| {
            let (src, dst) = (src.clone(), plain.join(format!("c{i}")));
            async move {
                tokio::task::spawn_blocking(move || {
                    std::fs::copy(&src, &dst).unwrap();
                    std::fs::File::open(&dst).unwrap().sync_all().unwrap();
                })
                .await
                .unwrap();
            }
        },
    )
    .await;
    report("put_file", size, ours, base);

    let get_stream = || {
        let s = s.clone();
        move |_| {
            let s = s.clone();
            async move {
                assert_eq!(
                    drain(s.get_stream("bench", "put/0", None).await.unwrap()).await,
                    size
                );
            }
        }
    };
    let (ours, base) = pair(RUNS, get_stream(), |_| {
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

    // Presigned HTTP over loopback, against the direct stream calls.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    storage.set_base_url(format!("http://{}", listener.local_addr().unwrap()));
    let app = router(storage.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let opts = PresignOptions::expires_in(Duration::from_secs(600));
    let (ours, base) = pair(
        RUNS,
        |_| {
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
        },
        get_stream(),
    )
    .await;
    report("http GET / get_stream", size, ours, base);

    let (ours, base) = pair(
        RUNS,
        |i| {
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
        },
        put_stream("put2"),
    )
    .await;
    report("http PUT / put_stream", size, ours, base);
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
