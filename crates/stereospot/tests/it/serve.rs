use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let res = reqwest::get(format!("{}/healthz", app.base_url))
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    app.server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn data_directory_holds_the_database() {
    let app = spawn_app().await;
    let dir = app.data_dir.path().to_path_buf();
    app.server.stop().await.expect("clean stop");
    let entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("data dir exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        entries.iter().any(|n| n.ends_with(".db")),
        "expected a SQLite database in {entries:?}"
    );
}

#[tokio::test]
async fn aws_platform_is_refused_with_a_clear_error() {
    let settings = stereospot_core::config::Settings::from_lookup(|k| {
        (k == "PLATFORM").then(|| "aws".to_string())
    })
    .expect("settings");
    let err = stereospot::config::require_local(&settings).unwrap_err();
    assert!(
        err.to_string()
            .contains("PLATFORM=aws is not available yet")
    );
}

/// The foundation end to end: a presigned PUT to the source key, served by this process,
/// produces the S3 event on the chunking queue that will drive the pipeline.
#[tokio::test]
async fn presigned_upload_of_a_source_enqueues_chunking() {
    use std::time::Duration;
    use stereospot_core::event::parse_s3_event;
    use stereospot_core::platform::{PresignOptions, ReceiveOptions};
    use stereospot_core::{JobId, ObjectKey};

    let app = spawn_app().await;
    let platform = app.server.local.platform.clone();
    let job_id = JobId::from_parts(1_700_000_000_000, [7; 10]);
    let key = ObjectKey::source(job_id).to_string();
    let url = platform
        .storage
        .presign_put(
            &platform.buckets.input,
            &key,
            &PresignOptions::expires_in(Duration::from_secs(60)),
        )
        .await
        .expect("presign");
    assert!(
        url.starts_with(&app.base_url),
        "{url} is served by this process"
    );
    let body = vec![42u8; 300_000];
    let res = reqwest::Client::new()
        .put(&url)
        .body(body.clone())
        .send()
        .await
        .expect("upload");
    assert!(res.status().is_success(), "upload status {}", res.status());

    let msgs = platform
        .queues
        .chunking
        .receive(&ReceiveOptions {
            wait: Duration::from_secs(10),
            ..ReceiveOptions::default()
        })
        .await
        .expect("receive");
    assert_eq!(msgs.len(), 1, "one chunking message");
    let objects = parse_s3_event(&msgs[0].body).expect("S3 event");
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].bucket, platform.buckets.input);
    assert_eq!(objects[0].key, key);
    assert_eq!(objects[0].size, Some(body.len() as u64));
    // Nothing else was routed: segments and outputs have their own queues.
    assert_eq!(
        platform
            .queues
            .video_worker
            .depth()
            .await
            .expect("depth")
            .visible,
        0
    );
    app.server.stop().await.expect("clean stop");
}

/// The web UI is merged into `serve`: the dashboard, the JSON API and `/metrics` answer, and
/// the recorder the binary installs is rendered (the workers' metrics appear through it).
#[tokio::test]
async fn web_ui_and_metrics_are_served() {
    let app = spawn_app().await;
    let res = reqwest::get(format!("{}/", app.base_url)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Make a 3D video"));
    let res = reqwest::Client::new()
        .post(format!("{}/jobs", app.base_url))
        .json(&serde_json::json!({"mode": "sbs"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["upload_url"]
            .as_str()
            .unwrap()
            .starts_with(&app.base_url)
    );
    metrics::counter!("stereospot_test_counter_total").increment(3);
    let text = reqwest::get(format!("{}/metrics", app.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("stereospot_jobs{status=\"created\"} 1"),
        "{text}"
    );
    assert!(text.contains("stereospot_test_counter_total 3"), "{text}");
    app.server.stop().await.expect("clean stop");
}

#[test]
fn binding_beyond_loopback_needs_an_access_token() {
    use stereospot::serve::check_bind;
    let public: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let err = check_bind(public, None).unwrap_err();
    assert!(err.to_string().contains("STEREOSPOT_ACCESS_TOKEN"), "{err}");
    assert!(check_bind(public, Some("  ")).is_err());
    assert!(check_bind(public, Some("short")).is_err());
    assert!(check_bind(public, Some("a-long-enough-token-1234")).is_ok());
    assert!(check_bind("127.0.0.1:8080".parse().unwrap(), None).is_ok());
    assert!(check_bind("[::1]:8080".parse().unwrap(), None).is_ok());
}
