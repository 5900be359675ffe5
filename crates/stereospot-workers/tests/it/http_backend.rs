//! The `http` backend against the inference server's contract, over a real port-0 listener.

use std::sync::Arc;
use std::time::Duration;

use stereospot_core::{JobStatus, ObjectKey, StereoMode};
use stereospot_workers::inference_server::{InferenceServer, router};
use stereospot_workers::{HttpBackend, StubBackend};
use tokio::net::TcpListener;

use crate::helpers::*;

/// Binds port 0 first, so the backend knows the URL before the platform exists.
async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

fn serve(listener: TcpListener, env: &TestEnv) -> tokio::task::JoinHandle<()> {
    let app = router(InferenceServer {
        storage: env.platform.storage.clone(),
        backend: Arc::new(StubBackend),
        work_root: env.work_root.path().to_path_buf(),
    });
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_backend_converts_through_the_inference_server() {
    let (l, url) = listener().await;
    let backend = HttpBackend::new(&url, Duration::from_secs(60)).unwrap();
    let env = env_with(Options {
        backend: Arc::new(backend),
        ..Options::default()
    })
    .await;
    let server = serve(l, &env);
    let source = video("book.mkv");
    let id = env.submit(&source, StereoMode::Sbs).await;
    env.pump().await;
    let job = env.job(id).await;
    assert_status(&job, JobStatus::Completed);
    let out = tempfile::tempdir().unwrap();
    let fin = env.download_final(id, out.path()).await;
    assert_eq!(probe(&fin).frames, probe(&source).frames);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inference_server_contract() {
    let (l, url) = listener().await;
    let env = env().await;
    let server = serve(l, &env);
    let client = reqwest::Client::new();

    let ping = client.get(format!("{url}/ping")).send().await.unwrap();
    assert_eq!(ping.status(), 200);

    let post = |body: String| {
        let client = client.clone();
        let url = format!("{url}/invocations");
        async move {
            let r = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let json: serde_json::Value = r.json().await.unwrap();
            (status, json)
        }
    };
    let id = env.create_job(StereoMode::Anaglyph).await;
    let seg = ObjectKey::segment(id, 0, 1, StereoMode::Anaglyph)
        .unwrap()
        .to_string();
    let out = ObjectKey::segment_output(id, 0).unwrap().to_string();
    let (inb, outb) = (&env.platform.buckets.input, &env.platform.buckets.output);
    let seg_uri = format!("s3://{inb}/{seg}");
    let out_uri = format!("s3://{outb}/{out}");

    for (body, want) in [
        ("{".to_string(), 400),
        (r#"{"s3_input_uri":"s3://a/b"}"#.to_string(), 400),
        (
            format!(r#"{{"s3_input_uri":"{seg_uri}","s3_output_uri":"{out_uri}","mode":"3d"}}"#),
            400,
        ),
        (
            format!(
                r#"{{"s3_input_uri":"s3://{inb}/input/{id}/source.mp4","s3_output_uri":"{out_uri}"}}"#
            ),
            400,
        ),
        (
            format!(
                r#"{{"s3_input_uri":"{seg_uri}","s3_output_uri":"s3://{outb}/jobs/{id}/final.mp4"}}"#
            ),
            400,
        ),
        // The segment does not exist yet.
        (
            format!(r#"{{"s3_input_uri":"{seg_uri}","s3_output_uri":"{out_uri}"}}"#),
            404,
        ),
    ] {
        let (status, json) = post(body.clone()).await;
        assert_eq!(status, want, "{body}: {json}");
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{json}"
        );
    }

    env.platform
        .storage
        .put_file(inb, &seg, &video("realshort.mp4"))
        .await
        .unwrap();
    // The aliases and the default mode.
    let (status, json) = post(format!(
        r#"{{"input_uri":"{seg_uri}","output_uri":"{out_uri}"}}"#
    ))
    .await;
    assert_eq!(
        (status, json["status"].as_str()),
        (200, Some("ok")),
        "{json}"
    );
    let meta = env
        .platform
        .storage
        .head(outb, &out)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        meta.size,
        std::fs::metadata(video("realshort.mp4")).unwrap().len()
    );
    server.abort();
}
