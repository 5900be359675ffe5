//! Load check of the web app (a benchmark, not a test): 200 SSE clients watch one converting
//! job while the dashboard gets 50 requests per second (open loop: requests start on a fixed
//! schedule whatever the latency), for 60 s, over real HTTP on 127.0.0.1 against the local
//! platform. The job's progress moves every 2 s, so every client must receive every change.
//!
//! Prints errors (must be zero), dashboard latency percentiles, and SSE events received.
//!
//! Measured on the 2-core development machine (shared, load average about 8 during the run):
//! 3001 dashboard requests, 0 errors, p50 0.6 ms, p90 1.0 ms, p99 12.3 ms, max 591 ms (while the
//! 200 streams were opening); 200 of 200 SSE clients, 0 errors, 6000 events (the initial state
//! and all 29 changes, each to every client); 2.8 s of CPU in 60 s for server and load together.
//!
//! ```sh
//! cargo bench -p stereospot-web --bench load                     # 200 clients, 50 req/s, 60 s
//! BENCH_SECONDS=10 BENCH_SSE_CLIENTS=50 cargo bench -p stereospot-web --bench load
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use stereospot_core::config::Settings;
use stereospot_core::{Job, JobId, JobStatus, SegmentCompletion, StereoMode};
use stereospot_local::LocalPlatform;
use stereospot_web::{AppState, WebConfig};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct SseStats {
    connected: AtomicU64,
    events: AtomicU64,
    errors: AtomicU64,
    saw_last_change: AtomicU64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc (Linux); 0 elsewhere.
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let seconds = env_num("BENCH_SECONDS", 60);
    let clients = env_num("BENCH_SSE_CLIENTS", 200);
    let rate = env_num("BENCH_DASHBOARD_RPS", 50);
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings::from_lookup(|_| None).expect("settings");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let local = LocalPlatform::open(dir.path(), &settings, &base)
        .await
        .expect("platform");
    let platform = local.platform.clone();

    // A dashboard with something on it: 40 completed jobs, 5 failed, the watched one running.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for i in 0..45u64 {
        let mut job = Job::new(
            JobId::from_parts(1_700_000_000_000 + i, [i as u8; 10]),
            StereoMode::Anaglyph,
            now - 3600,
        );
        job.title = Some(format!("Holiday video {i}"));
        if i < 40 {
            job.status = JobStatus::Completed;
            job.uploaded_at = Some(now - 3500);
            job.completed_at = Some(now - 3000 + i as i64);
            job.source_file_size_bytes = Some(50_000_000);
        } else {
            job.status = JobStatus::Failed;
        }
        platform.jobs.put(&job).await.unwrap();
    }
    let total_segments = 1000;
    let id = JobId::from_parts(1_800_000_000_000, [7; 10]);
    let mut job = Job::new(id, StereoMode::Sbs, now);
    job.status = JobStatus::ChunkingComplete;
    job.total_segments = Some(total_segments);
    job.uploaded_at = Some(now);
    job.source_file_size_bytes = Some(200_000_000);
    job.title = Some("The watched one".into());
    platform.jobs.put(&job).await.unwrap();

    let config = WebConfig::new(&base);
    let state = AppState::new(platform.clone(), config);
    let app = stereospot_web::router(state.clone()).merge(local.objects_router());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);

    // SSE clients.
    let sse = Arc::new(SseStats::default());
    let last_stage = Arc::new(std::sync::Mutex::new(String::new()));
    let mut sse_tasks = Vec::new();
    for _ in 0..clients {
        let (client, sse, url) = (
            client.clone(),
            sse.clone(),
            format!("{base}/jobs/{id}/events"),
        );
        let last_stage = last_stage.clone();
        sse_tasks.push(tokio::spawn(async move {
            let res = match client.get(&url).send().await {
                Ok(r) if r.status().is_success() => r,
                _ => {
                    sse.errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            sse.connected.fetch_add(1, Ordering::Relaxed);
            let mut body = res.bytes_stream();
            let mut buffer = String::new();
            let mut latest = String::new();
            loop {
                let next = tokio::time::timeout_at(deadline.into(), body.next()).await;
                match next {
                    Err(_) => break, // the run is over
                    Ok(Some(Ok(chunk))) => {
                        buffer.push_str(&String::from_utf8_lossy(&chunk));
                        while let Some(end) = buffer.find("\n\n") {
                            let block: String = buffer.drain(..end + 2).collect();
                            if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: "))
                            {
                                sse.events.fetch_add(1, Ordering::Relaxed);
                                if let Ok(v) = serde_json::from_str::<serde_json::Value>(data) {
                                    latest = v["stage"].as_str().unwrap_or("").to_string();
                                }
                            }
                        }
                    }
                    Ok(_) => {
                        sse.errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
            let expected = last_stage.lock().unwrap().clone();
            if !expected.is_empty() && latest == expected {
                sse.saw_last_change.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // Progress: one more converted segment every 2 s (stops 3 s before the end, so every
    // client has time to receive the last change).
    let progress = {
        let platform = platform.clone();
        let last_stage = last_stage.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            let mut index = 0;
            tick.tick().await;
            while Instant::now() + Duration::from_secs(3) < deadline {
                tick.tick().await;
                platform
                    .completions
                    .put(&SegmentCompletion {
                        job_id: id,
                        segment_index: index,
                        output_s3_uri: format!("s3://out/jobs/{id}/segments/{index:05}.mp4"),
                        completed_at: 0,
                        total_segments: Some(total_segments),
                    })
                    .await
                    .unwrap();
                index += 1;
                *last_stage.lock().unwrap() =
                    format!("Converting segments ({index}/{total_segments})");
            }
            index
        })
    };

    // Dashboard at a fixed rate.
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let dash_errors = Arc::new(AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut requests = Vec::new();
    while Instant::now() < deadline {
        tick.tick().await;
        let (client, url) = (client.clone(), format!("{base}/"));
        let (latencies, dash_errors) = (latencies.clone(), dash_errors.clone());
        requests.push(tokio::spawn(async move {
            let t = Instant::now();
            match client.get(&url).send().await {
                Ok(r) if r.status().is_success() => match r.bytes().await {
                    Ok(b) if b.len() > 1000 => latencies.lock().unwrap().push(t.elapsed()),
                    _ => {
                        dash_errors.fetch_add(1, Ordering::Relaxed);
                    }
                },
                _ => {
                    dash_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for r in requests {
        r.await.unwrap();
    }
    let changes = progress.await.unwrap();
    for t in sse_tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    server.abort();

    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let dash_err = dash_errors.load(Ordering::Relaxed);
    let sse_err = sse.errors.load(Ordering::Relaxed);
    println!(
        "web load check: {seconds} s, {clients} SSE clients on one job, dashboard at {rate} req/s"
    );
    println!(
        "dashboard: {} requests ok, {} errors; latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        dash_err,
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.90)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default()),
    );
    println!(
        "sse: {} of {clients} connected, {} errors, {} events received for {changes} progress changes, {} clients saw the last change",
        sse.connected.load(Ordering::Relaxed),
        sse_err,
        sse.events.load(Ordering::Relaxed),
        sse.saw_last_change.load(Ordering::Relaxed),
    );
    println!(
        "process CPU {cpu:.1} s over {elapsed:.1} s ({:.0}% of one core; server and load generator together)",
        100.0 * cpu / elapsed
    );
    let ok = dash_err == 0
        && sse_err == 0
        && sse.connected.load(Ordering::Relaxed) == clients
        && sse.saw_last_change.load(Ordering::Relaxed) == clients;
    println!("result: {}", if ok { "PASS (zero errors)" } else { "FAIL" });
    if !ok {
        std::process::exit(1);
    }
}
