//! Web Push: subscriptions only over HTTPS, and a completed job's notification reaches a push
//! service (a fake one on port 0), encrypted for the subscriber and authorised with VAPID.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use p256::SecretKey;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use stereospot_core::{JobStatus, JobUpdate};
use stereospot_web::VapidKeys;
use stereospot_web::push::{SUBSCRIPTIONS_PREFIX, decrypt};
use tokio::sync::mpsc;

use crate::helpers::{TestApp, app, app_with};

struct Browser {
    secret: SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new() -> Self {
        let secret = loop {
            if let Ok(k) = SecretKey::from_slice(&rand_32()) {
                break k;
            }
        };
        Self {
            secret,
            auth: [9; 16],
        }
    }

    fn subscription(&self, endpoint: &str) -> serde_json::Value {
        serde_json::json!({
            "endpoint": endpoint,
            "keys": {
                "p256dh": B64URL.encode(self.secret.public_key().to_encoded_point(false).as_bytes()),
                "auth": B64URL.encode(self.auth),
            }
        })
    }
}

fn rand_32() -> [u8; 32] {
    let mut b = [0u8; 32];
    for (i, x) in b.iter_mut().enumerate() {
        *x = (i as u8)
            .wrapping_mul(37)
            .wrapping_add(crate::helpers::rand_bytes()[7]);
    }
    b
}

/// A push service on 127.0.0.1:0 that answers `status` and hands every request to the test.
async fn push_service(
    status: StatusCode,
) -> (String, mpsc::UnboundedReceiver<(HeaderMap, Vec<u8>)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let router = axum::Router::new().route(
        "/push/{id}",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body.to_vec()));
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/push/abc"), rx)
}

async fn subscribe(app: &TestApp, body: &serde_json::Value, https: bool) -> StatusCode {
    let mut req = Request::post("/api/push-subscriptions")
        .header("content-type", "application/json")
        .header("sec-fetch-site", "same-origin");
    if https {
        req = req.header("x-forwarded-proto", "https");
    }
    app.send(req.body(Body::from(body.to_string())).unwrap())
        .await
        .status
}

fn vapid() -> VapidKeys {
    VapidKeys::generate("mailto:ops@example.com").unwrap()
}

#[tokio::test]
async fn push_needs_keys_and_https() {
    let off = app().await;
    assert_eq!(
        off.get("/api/vapid-public-key").await.status,
        StatusCode::NOT_FOUND
    );
    let keys = vapid();
    let app = app_with(|c| c.vapid = Some(keys.clone())).await;
    assert_eq!(
        app.get("/api/vapid-public-key").await.status,
        StatusCode::FORBIDDEN
    );
    let r = app
        .send(
            Request::get("/api/vapid-public-key")
                .header("x-forwarded-proto", "https")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["public_key"], keys.public_key());

    let browser = Browser::new();
    let good = browser.subscription("https://fcm.googleapis.com/fcm/send/abc");
    assert_eq!(subscribe(&app, &good, false).await, StatusCode::FORBIDDEN);
    assert_eq!(subscribe(&app, &good, true).await, StatusCode::CREATED);
    let stored = app
        .local
        .platform
        .storage
        .list_prefix(&app.local.platform.buckets.output, SUBSCRIPTIONS_PREFIX)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    // Internal endpoints (the server would POST there) and broken keys are refused.
    for bad in [
        browser.subscription("https://169.254.169.254/latest/meta-data"),
        browser.subscription("http://push.example/x"),
        serde_json::json!({"endpoint": "https://push.example/x", "keys": {"p256dh": "AAAA", "auth": "AAAA"}}),
        serde_json::json!({"endpoint": "https://push.example/x"}),
    ] {
        assert_eq!(subscribe(&app, &bad, true).await.as_u16() / 100, 4, "{bad}");
    }
    // The job page offers notifications only over HTTPS.
    let job = app.job_in(JobStatus::ChunkingComplete, None).await;
    let page = app.get(&format!("/jobs/{}", job.job_id)).await;
    assert!(!page.body.contains("notify-button"));
    let page = app
        .send(
            Request::get(format!("/jobs/{}", job.job_id))
                .header("x-forwarded-proto", "https")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(page.body.contains("notify-button"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_job_is_announced_to_subscribers() {
    let keys = vapid();
    let app = app_with(|c| {
        c.vapid = Some(keys.clone());
        c.push_allow_insecure_endpoints = true;
    })
    .await;
    let (endpoint, mut received) = push_service(StatusCode::CREATED).await;
    let browser = Browser::new();
    assert_eq!(
        subscribe(&app, &browser.subscription(&endpoint), true).await,
        StatusCode::CREATED
    );
    let job = app.job_in(JobStatus::Reassembling, Some("Holiday")).await;
    let notifier = stereospot_web::push::spawn_notifier(
        app.state.clone(),
        Duration::from_millis(20),
        std::future::pending(),
    );
    // Let the notifier see the job running once; its first listing is the signal we can use:
    // the job store's call counter moves.
    let calls = app.job_calls();
    while app.job_calls() == calls {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.local
        .platform
        .jobs
        .update(
            job.job_id,
            &JobUpdate {
                completed_at: Some(2_000_000_000),
                ..JobUpdate::transition(JobStatus::Reassembling, JobStatus::Completed)
            },
        )
        .await
        .unwrap();
    let (headers, body) = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("a push within 10 s")
        .unwrap();
    assert_eq!(headers["content-encoding"], "aes128gcm");
    assert!(headers.contains_key("ttl"));
    let auth = headers["authorization"].to_str().unwrap();
    assert!(auth.starts_with("vapid t="));
    assert!(auth.ends_with(&format!(", k={}", keys.public_key())));
    let plain = decrypt(&browser.secret, &browser.auth, &body).expect("decrypts");
    let message: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(message["title"], "Your 3D video is ready");
    assert_eq!(message["body"], "Holiday");
    assert_eq!(message["url"], format!("/jobs/{}", job.job_id));
    notifier.abort();
}

#[tokio::test]
async fn gone_subscriptions_are_removed() {
    let app = app_with(|c| {
        c.vapid = Some(vapid());
        c.push_allow_insecure_endpoints = true;
    })
    .await;
    let (endpoint, mut received) = push_service(StatusCode::GONE).await;
    assert_eq!(
        subscribe(&app, &Browser::new().subscription(&endpoint), true).await,
        StatusCode::CREATED
    );
    let job = app.job_in(JobStatus::Failed, None).await;
    let n = app
        .state
        .push
        .send_to_all(
            &app.state.platform,
            &stereospot_web::push::Notification::for_job(&job),
        )
        .await;
    assert_eq!(n, 0);
    assert!(received.recv().await.is_some());
    let left = app
        .local
        .platform
        .storage
        .list_prefix(&app.local.platform.buckets.output, SUBSCRIPTIONS_PREFIX)
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}
