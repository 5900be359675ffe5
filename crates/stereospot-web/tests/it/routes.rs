//! Every route through `tower::ServiceExt::oneshot`, error cases included.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use stereospot_core::payload::{DeletionPayload, IngestPayload, IngestSource, decode};
use stereospot_core::platform::ReceiveOptions;
use stereospot_core::{JobId, JobStatus, ObjectKey, StereoMode};

use crate::helpers::{MAX_UPLOAD, app, app_with};

const HOSTILE: &str = "<script>alert(\"x\")</script> 'q' \"dq\" a\r\nb \u{202E}4pm.exe שלום";

fn job_id_from_location(location: &str) -> JobId {
    JobId::parse(location.strip_prefix("/jobs/").expect("job location")).expect("id")
}

fn receive_all() -> ReceiveOptions {
    ReceiveOptions {
        max_messages: 10,
        wait: std::time::Duration::ZERO,
        visibility_timeout: None,
    }
}

#[tokio::test]
async fn dashboard_offers_every_mode_and_lists_jobs() {
    let app = app().await;
    app.job_in(JobStatus::Completed, Some("Done one")).await;
    app.job_in(JobStatus::ChunkingComplete, Some("Running one"))
        .await;
    let deleted = app.job_in(JobStatus::Deleted, Some("Gone one")).await;
    let r = app.get("/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/html"));
    for mode in StereoMode::ALL {
        assert!(r.body.contains(&format!("value=\"{mode}\"")), "{mode}");
    }
    assert!(r.body.contains("Done one") && r.body.contains("Running one"));
    assert!(r.body.contains("Conversion: 3.0 min (15.0 sec/MB)"));
    assert!(!r.body.contains("Gone one"));
    assert!(!r.body.contains(&deleted.job_id.to_string()));
    // No operator links on the local platform.
    assert!(!r.body.contains("Open logs"));
    assert!(
        r.header("content-security-policy")
            .contains("default-src 'self'")
    );
    assert_eq!(r.header("x-content-type-options"), "nosniff");
}

#[tokio::test]
async fn form_post_creates_a_job_and_redirects_to_its_page() {
    let app = app().await;
    let r = app
        .post_form("/jobs", "mode=sbs&title=%20My+%3Cclip%3E%0D%0A")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let id = job_id_from_location(r.header("location"));
    let job = app
        .local
        .platform
        .jobs
        .get(id)
        .await
        .unwrap()
        .expect("created");
    assert_eq!(job.mode, StereoMode::Sbs);
    assert_eq!(job.status, JobStatus::Created);
    assert_eq!(job.title.as_deref(), Some("My <clip>"));

    let page = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"upload-form\""));
    assert!(
        page.body
            .contains("data-upload-url=\"http://127.0.0.1:9/_objects/")
    );
    assert!(page.body.contains("My &#60;clip&#62;"));
    assert!(
        page.body
            .contains(&format!("data-max-bytes=\"{MAX_UPLOAD}\""))
    );
    // Ingest is enabled in these tests: both sources are offered.
    assert!(page.body.contains("id=\"url-form\""));
}

#[tokio::test]
async fn json_post_answers_the_job_id_and_upload_url() {
    let app = app().await;
    let r = app
        .send_json(
            "POST",
            "/jobs",
            serde_json::json!({"mode": "anaglyph", "title": "t"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let v = r.json();
    let id = JobId::parse(v["job_id"].as_str().unwrap()).unwrap();
    let url = v["upload_url"].as_str().unwrap();
    assert!(url.contains(&format!(
        "/_objects/stereospot-input/input/{id}/source.mp4?"
    )));
    assert_eq!(r.header("location"), format!("/jobs/{id}"));

    // A form body with Accept: application/json answers JSON too.
    let r = app
        .send(
            Request::post("/jobs")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(Body::from("mode=tab"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.json()["upload_url"].is_string());

    for bad in [
        serde_json::json!({"mode": "3d"}),
        serde_json::json!({"title": "no mode"}),
        serde_json::json!({"mode": 5}),
    ] {
        let r = app.send_json("POST", "/jobs", bad.clone()).await;
        assert_eq!(r.status.as_u16() / 100, 4, "{bad}");
        assert!(r.json()["error"].is_string(), "{}", r.body);
    }
    let r = app
        .send(
            Request::post("/jobs")
                .header("content-type", "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn cross_site_state_changes_are_refused() {
    let app = app().await;
    let done = app.job_in(JobStatus::Completed, None).await;
    let before = app.job_calls();
    let attempts = [
        ("POST", "/jobs".to_string(), "mode=sbs"),
        ("POST", format!("/jobs/{}/delete", done.job_id), ""),
        ("PATCH", format!("/jobs/{}", done.job_id), "{}"),
        (
            "POST",
            format!("/jobs/{}/ingest-from-url", done.job_id),
            "url=https://x.example/v",
        ),
    ];
    for (method, uri, body) in &attempts {
        for (name, value) in [
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
            ("origin", "http://evil.example"),
            ("origin", "null"),
        ] {
            let r = app
                .send(
                    Request::builder()
                        .method(*method)
                        .uri(uri)
                        .header("host", "127.0.0.1:9")
                        .header("content-type", "application/x-www-form-urlencoded")
                        .header(name, value)
                        .body(Body::from(body.to_string()))
                        .unwrap(),
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{method} {uri} {name}={value}"
            );
            assert!(r.body.contains("cross-site request refused"));
        }
    }
    assert_eq!(app.job_calls(), before, "refused before any store access");
    let job = app
        .local
        .platform
        .jobs
        .get(done.job_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Completed);
}

#[tokio::test]
async fn bad_and_unknown_ids_are_404_without_touching_storage() {
    let app = app().await;
    let unknown = JobId::from_parts(1_700_000_000_000, [1; 10]);
    let bad_ids = [
        "nope",
        "../../etc/passwd",
        "01a1fcbe-5f8b-7306-99a4-C5E47965BF09",
        "01a1fcbe-5f8b-4306-99a4-c5e47965bf09",
        "%2e%2e",
    ];
    for bad in bad_ids {
        for path in [
            format!("/jobs/{bad}"),
            format!("/jobs/{bad}/events"),
            format!("/jobs/{bad}/play"),
            format!("/jobs/{bad}/download"),
            format!("/launch/{bad}"),
            format!("/playlist/{bad}.m3u"),
        ] {
            let r = app.get(&path).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        }
        let r = app.post_form(&format!("/jobs/{bad}/delete"), "").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = app
            .send_json("PATCH", &format!("/jobs/{bad}"), serde_json::json!({}))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(
        app.job_calls(),
        0,
        "malformed ids never reach the job store"
    );
    for path in [
        format!("/jobs/{unknown}"),
        format!("/jobs/{unknown}/events"),
        format!("/jobs/{unknown}/play"),
        format!("/launch/{unknown}"),
        format!("/playlist/{unknown}.m3u"),
    ] {
        assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let r = app.get_json(&format!("/jobs/{unknown}")).await;
    assert_eq!(r.json()["error"], "No such job");
    assert_eq!(
        app.storage_calls(),
        0,
        "no object storage access for unknown jobs"
    );
    // A deleted job is as absent as an unknown one.
    let gone = app.job_in(JobStatus::Deleted, None).await;
    assert_eq!(
        app.get(&format!("/jobs/{}", gone.job_id)).await.status,
        StatusCode::NOT_FOUND
    );
    // Unknown pages are 404 pages.
    let r = app.get("/nothing/here").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("Page not found"));
}

#[tokio::test]
async fn hostile_titles_are_escaped_and_sanitised_everywhere() {
    let app = app().await;
    let r = app
        .send_json(
            "POST",
            "/jobs",
            serde_json::json!({"mode": "sbs", "title": HOSTILE}),
        )
        .await;
    let id = JobId::parse(r.json()["job_id"].as_str().unwrap()).unwrap();
    let stored = app.local.platform.jobs.get(id).await.unwrap().unwrap();
    let title = stored.title.clone().unwrap();
    assert!(!title.contains(['\r', '\n', '\u{202E}']), "{title:?}");
    assert!(title.contains("שלום"), "right-to-left text is kept");

    let page = app.get(&format!("/jobs/{id}")).await;
    assert!(
        !page.body.contains("<script>alert"),
        "title must be escaped"
    );
    assert!(
        page.body
            .contains("&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;")
    );
    assert!(page.body.contains("&#39;q&#39;"));

    // Complete it, then check the download header, the playlist and the lists.
    let mut job = stored;
    job.status = JobStatus::Completed;
    job.completed_at = Some(job.created_at + 10);
    app.local.platform.jobs.put(&job).await.unwrap();
    app.local
        .platform
        .storage
        .put_bytes(
            &app.local.platform.buckets.output,
            &ObjectKey::final_output(id).to_string(),
            bytes::Bytes::from_static(b"not really a video"),
        )
        .await
        .unwrap();
    let r = app.get(&format!("/jobs/{id}/download")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let location = r.header("location").to_string();
    let path = location.strip_prefix("http://127.0.0.1:9").unwrap();
    let object = app.get(path).await;
    assert_eq!(object.status, StatusCode::OK, "{}", object.body);
    let disposition = object.header("content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    assert!(disposition.contains("filename*=UTF-8''"), "{disposition}");
    assert!(disposition.ends_with("3d.mp4"), "{disposition}");
    assert!(!disposition.contains(['\r', '\n']));
    // The quoted ASCII fallback holds no quote, backslash or non-ASCII byte.
    let fallback = disposition
        .split("filename=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(
        fallback.is_ascii() && !fallback.contains('\\'),
        "{fallback}"
    );

    let m3u = app.get(&format!("/playlist/{id}.m3u")).await;
    assert_eq!(m3u.status, StatusCode::OK);
    let lines: Vec<&str> = m3u.body.lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], "#EXTM3U");
    assert!(lines[1].starts_with("#EXTINF:-1,<script>"));
    assert!(lines[2].starts_with("http://127.0.0.1:9/_objects/"));

    for path in ["/", "/jobs", "/launch", &format!("/launch/{id}")] {
        let r = app.get(path).await;
        assert!(!r.body.contains("<script>alert"), "{path}");
    }
}

#[tokio::test]
async fn patch_records_the_upload() {
    let app = app().await;
    let r = app
        .send_json("POST", "/jobs", serde_json::json!({"mode": "anaglyph"}))
        .await;
    let v = r.json();
    let id = v["job_id"].as_str().unwrap().to_string();
    // Upload through the presigned URL (served by the merged object routes).
    let url = v["upload_url"].as_str().unwrap();
    let path = url.strip_prefix("http://127.0.0.1:9").unwrap();
    let put = app
        .send(
            Request::put(path)
                .body(Body::from(vec![7u8; 1000]))
                .unwrap(),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);

    let r = app
        .send_json(
            "PATCH",
            &format!("/jobs/{id}"),
            serde_json::json!({
                "file_name": "Attack on Titan.mp4",
                "source_file_size_bytes": 5,
                "uploaded_at": 1
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert_eq!(v["title"], "Attack on Titan");
    assert_eq!(v["source_file_size_bytes"], 1000, "the stored size wins");
    assert!(
        v["uploaded_at"].as_i64().unwrap() > 1_700_000_000,
        "server clock"
    );
    let page = app.get(&format!("/jobs/{id}")).await;
    assert!(
        !page.body.contains("id=\"upload-form\""),
        "uploaded: no form"
    );
    assert!(page.body.contains("Uploaded; waiting for a worker"));

    // An explicit title replaces; a file name does not replace an existing title.
    let r = app
        .send_json(
            "PATCH",
            &format!("/jobs/{id}"),
            serde_json::json!({"file_name": "other.mp4"}),
        )
        .await;
    assert_eq!(r.json()["title"], "Attack on Titan");
    let r = app
        .send_json(
            "PATCH",
            &format!("/jobs/{id}"),
            serde_json::json!({"title": "New\r\nname"}),
        )
        .await;
    assert_eq!(r.json()["title"], "New name");

    let r = app
        .send_json(
            "PATCH",
            &format!("/jobs/{id}"),
            serde_json::json!({"source_file_size_bytes": MAX_UPLOAD + 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = app
        .send_json(
            "PATCH",
            &format!("/jobs/{id}"),
            serde_json::json!({"status": "completed"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused"
    );
    let r = app
        .send(
            Request::patch(format!("/jobs/{id}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from("title=x"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn oversize_uploads_are_refused_with_413() {
    let app = app().await;
    let r = app
        .send_json("POST", "/jobs", serde_json::json!({"mode": "anaglyph"}))
        .await;
    let url = r.json()["upload_url"].as_str().unwrap().to_string();
    let path = url.strip_prefix("http://127.0.0.1:9").unwrap();
    let r = app
        .send(
            Request::put(path)
                .body(Body::from(vec![0u8; MAX_UPLOAD as usize + 1]))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing was stored, so nothing was queued for chunking.
    let depth = app.local.platform.queues.chunking.depth().await.unwrap();
    assert_eq!(depth.visible, 0);
    // Form bodies of the web routes are small too.
    let r = app
        .post_form("/jobs", &format!("mode=sbs&title={}", "x".repeat(100_000)))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn job_page_shows_progress_result_or_error() {
    let app = app().await;
    let running = app
        .job_in(JobStatus::ChunkingComplete, Some("Running"))
        .await;
    let r = app.get(&format!("/jobs/{}", running.job_id)).await;
    assert!(r.body.contains("id=\"progress-section\""));
    assert!(r.body.contains(&format!(
        "data-events-url=\"/jobs/{}/events\"",
        running.job_id
    )));
    assert!(
        !r.body.contains("id=\"delete-button\""),
        "running jobs cannot be removed"
    );

    let done = app
        .job_in(JobStatus::Completed, Some("attack-on-titan"))
        .await;
    let r = app.get(&format!("/jobs/{}", done.job_id)).await;
    assert!(r.body.contains("<video"));
    assert!(
        r.body
            .contains(&format!("src=\"/jobs/{}/play\"", done.job_id))
    );
    assert!(r.body.contains("download=\"attack-on-titan3d.mp4\""));
    assert!(r.body.contains("Conversion: 3.0 min (15.0 sec/MB)"));
    assert!(r.body.contains(&format!("/launch/{}", done.job_id)));
    let v = app.get_json(&format!("/jobs/{}", done.job_id)).await.json();
    assert_eq!(v["status"], "completed");
    assert_eq!(v["progress_percent"], 100);
    assert!(v["playback_url"].as_str().unwrap().contains("/final.mp4?"));
    assert_eq!(v["completed_segments"], 2);

    let failed = app.job_in(JobStatus::Failed, None).await;
    let r = app.get(&format!("/jobs/{}", failed.job_id)).await;
    assert!(r.body.contains("The upload is not a video file"));
    assert!(r.body.contains("not_media"));
    assert!(r.body.contains("id=\"delete-button\""));
    let v = app
        .get_json(&format!("/jobs/{}", failed.job_id))
        .await
        .json();
    assert_eq!(v["error"]["code"], "not_media");

    let created = app.job_in(JobStatus::Created, None).await;
    let v = app
        .get_json(&format!("/jobs/{}", created.job_id))
        .await
        .json();
    assert_eq!(v["status"], "created");
    assert!(v["upload_url"].is_string());
}

#[tokio::test]
async fn play_redirects_to_a_four_hour_presigned_url() {
    let app = app().await;
    let done = app.job_in(JobStatus::Completed, None).await;
    let r = app.get(&format!("/jobs/{}/play", done.job_id)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let location = r.header("location");
    assert!(location.contains(&format!("/jobs/{}/final.mp4?", done.job_id)));
    let expires: i64 = location
        .split("X-Expires=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((expires - now - 4 * 3600).abs() <= 5, "{}", expires - now);
    assert_eq!(r.header("cache-control"), "no-store");
    let running = app.job_in(JobStatus::Reassembling, None).await;
    assert_eq!(
        app.get(&format!("/jobs/{}/play", running.job_id))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn delete_removes_finished_jobs_only() {
    let app = app().await;
    let running = app.job_in(JobStatus::ChunkingComplete, None).await;
    let r = app
        .post_form(&format!("/jobs/{}/delete", running.job_id), "")
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.body
            .contains("Only completed or failed jobs can be removed")
    );
    let job = app
        .local
        .platform
        .jobs
        .get(running.job_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::ChunkingComplete);

    let done = app.job_in(JobStatus::Completed, Some("Bye")).await;
    let r = app
        .post_form(&format!("/jobs/{}/delete", done.job_id), "")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), "/?notice=removed");
    let job = app
        .local
        .platform
        .jobs
        .get(done.job_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Deleted);
    let msgs = app
        .local
        .platform
        .queues
        .deletion
        .receive(&receive_all())
        .await
        .unwrap();
    assert_eq!(msgs.len(), 1);
    let p: DeletionPayload = decode("deletion", &msgs[0].body).unwrap();
    assert_eq!(p.job_id, done.job_id);
    let dash = app.get("/?notice=removed").await;
    assert!(dash.body.contains("Job removed. Cleanup in progress."));
    assert!(!dash.body.contains("Bye"));
    // Again: it is gone.
    let r = app
        .post_form(&format!("/jobs/{}/delete", done.job_id), "")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let failed = app.job_in(JobStatus::Failed, None).await;
    let r = app
        .send_json(
            "POST",
            &format!("/jobs/{}/delete", failed.job_id),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["message"], "Job removed. Cleanup in progress.");
}

#[tokio::test]
async fn ingest_from_url_queues_the_download() {
    let app = app().await;
    let created = app.job_in(JobStatus::Created, None).await;
    let id = created.job_id;
    let r = app
        .post_form(
            &format!("/jobs/{id}/ingest-from-url"),
            "url=https%3A%2F%2Fvideos.example%2Fwatch%3Fv%3D1",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.header("location"), format!("/jobs/{id}?notice=ingest"));
    let msgs = app
        .local
        .platform
        .queues
        .ingest
        .receive(&receive_all())
        .await
        .unwrap();
    assert_eq!(msgs.len(), 1);
    let p: IngestPayload = decode("ingest", &msgs[0].body).unwrap();
    assert_eq!(p.job_id, id);
    assert_eq!(
        p.source,
        IngestSource::Url {
            source_url: "https://videos.example/watch?v=1".into()
        }
    );
    for bad in [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "",
        "https://a b",
    ] {
        let r = app
            .send_json(
                "POST",
                &format!("/jobs/{id}/ingest-from-url"),
                serde_json::json!({ "source_url": bad }),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let done = app.job_in(JobStatus::Completed, None).await;
    let r = app
        .send_json(
            "POST",
            &format!("/jobs/{}/ingest-from-url", done.job_id),
            serde_json::json!({ "url": "https://videos.example/v" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    let off = app_with(|c| c.ingest_enabled = false).await;
    let created = off.job_in(JobStatus::Created, None).await;
    let r = off
        .post_form(
            &format!("/jobs/{}/ingest-from-url", created.job_id),
            "url=https%3A%2F%2Fvideos.example%2Fv",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let page = off.get(&format!("/jobs/{}", created.job_id)).await;
    assert!(!page.body.contains("url-form"));
}

#[tokio::test]
async fn jobs_list_paginates_and_hides_deleted() {
    let app = app().await;
    let mut completed = Vec::new();
    for i in 0..23 {
        let mut job = app
            .job_in(JobStatus::Completed, Some(&format!("c{i:02}")))
            .await;
        job.completed_at = Some(1_700_001_000 + i);
        app.local.platform.jobs.put(&job).await.unwrap();
        completed.push(job);
    }
    app.job_in(JobStatus::Deleted, Some("deleted-one")).await;
    app.job_in(JobStatus::ChunkingInProgress, Some("running-one"))
        .await;
    app.job_in(JobStatus::Failed, Some("failed-one")).await;
    let r = app.get("/jobs").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("running-one") && r.body.contains("failed-one"));
    assert!(!r.body.contains("deleted-one"));
    assert!(r.body.contains("c22") && !r.body.contains(">c02<"));
    let older = r
        .body
        .split("href=\"/jobs?completed_cursor=")
        .nth(1)
        .expect("older link")
        .split('"')
        .next()
        .unwrap()
        .replace("&#37;", "%");
    let r2 = app.get(&format!("/jobs?completed_cursor={older}")).await;
    assert_eq!(r2.status, StatusCode::OK, "{}", r2.body);
    assert!(r2.body.contains(">c02<") && !r2.body.contains(">c22<"));
    assert!(!r2.body.contains("running-one"));

    let v = app.get_json("/jobs").await.json();
    assert_eq!(v["completed"].as_array().unwrap().len(), 20);
    assert_eq!(v["in_progress"].as_array().unwrap().len(), 1);
    assert!(v["next_completed_cursor"].is_string());
    let r = app.get("/jobs?completed_cursor=garbage").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn launch_pages_and_playlists() {
    let app = app().await;
    let done = app.job_in(JobStatus::Completed, Some("Film")).await;
    let other = app.job_in(JobStatus::Completed, Some("Other")).await;
    let running = app.job_in(JobStatus::ChunkingComplete, None).await;
    let r = app.get("/launch").await;
    assert!(r.body.contains("pot3d://all") && r.body.contains("/playlist.m3u"));
    assert!(r.body.contains("Film") && r.body.contains("Other"));
    let r = app.get(&format!("/launch/{}", done.job_id)).await;
    assert!(r.body.contains(&format!("pot3d://job/{}", done.job_id)));
    assert!(r.body.contains(&format!("/playlist/{}.m3u", done.job_id)));
    assert!(r.body.contains("/setup/windows"));
    assert_eq!(
        app.get(&format!("/launch/{}", running.job_id)).await.status,
        StatusCode::NOT_FOUND
    );
    let r = app.get("/playlist.m3u").await;
    assert!(r.header("content-type").starts_with("audio/x-mpegurl"));
    assert!(r.header("content-disposition").contains("stereospot.m3u"));
    assert_eq!(r.body.lines().count(), 5);
    assert!(
        r.body
            .contains(&format!("/jobs/{}/final.mp4?", other.job_id))
    );
    let r = app.get(&format!("/playlist/{}.m3u", done.job_id)).await;
    assert!(r.header("content-disposition").contains("Film3d.m3u"));
    assert_eq!(
        app.get(&format!("/playlist/{}", done.job_id)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn windows_setup_resists_hostile_hosts() {
    let app = app().await;
    let page = app.get("/setup/windows").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("/setup/windows/pot3d.reg"));
    let reg = app.get("/setup/windows/pot3d.reg").await;
    assert!(reg.body.starts_with("Windows Registry Editor Version 5.00"));
    assert!(
        reg.body
            .contains("[HKEY_CURRENT_USER\\Software\\Classes\\pot3d]")
    );
    assert!(reg.header("content-disposition").contains("pot3d.reg"));

    let script = |host: &'static str| {
        let app = &app;
        async move {
            app.send(
                Request::get("/setup/windows/pot3d-handler.ps1")
                    .header("host", host)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .body
        }
    };
    let good = script("stereo.example:8080").await;
    assert!(good.contains("$Base = 'http://stereo.example:8080'"));
    for hostile in [
        "x';Start-Process calc;'",
        "x\"$(calc)",
        "a b",
        "evil.example/`calc`",
        "evil.example:80@x",
    ] {
        let body = script(hostile).await;
        assert!(
            body.contains("$Base = 'http://127.0.0.1:9'"),
            "{hostile}: {body}"
        );
        assert!(!body.contains("calc"), "{hostile}");
    }
    let configured = app_with(|c| c.public_base_url = Some("https://stereo.example".into())).await;
    let r = configured
        .send(
            Request::get("/setup/windows/pot3d-handler.ps1")
                .header("host", "evil.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(r.body.contains("$Base = 'https://stereo.example'"));
    assert_eq!(
        app.get("/setup/windows/other.exe").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn health_metrics_and_assets() {
    let app = app().await;
    app.job_in(JobStatus::Completed, None).await;
    app.job_in(JobStatus::Completed, None).await;
    app.job_in(JobStatus::Failed, None).await;
    app.job_in(JobStatus::Deleted, None).await;
    app.local.platform.queues.chunking.send("{}").await.unwrap();
    let r = app.get("/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ok");
    let r = app.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.header("content-type")
            .starts_with("text/plain; version=0.0.4")
    );
    assert!(
        r.body.contains("stereospot_jobs{status=\"completed\"} 2"),
        "{}",
        r.body
    );
    assert!(r.body.contains("stereospot_jobs{status=\"failed\"} 1"));
    assert!(!r.body.contains("status=\"deleted\""));
    assert!(
        r.body
            .contains("stereospot_queue_messages{queue=\"chunking\",state=\"visible\"} 1")
    );
    assert!(
        r.body
            .contains("stereospot_queue_messages{queue=\"ingest\",state=\"in_flight\"} 0")
    );
    for (path, ty) in [
        ("/static/app.js", "text/javascript"),
        ("/static/app.css", "text/css"),
        ("/static/icon.svg", "image/svg+xml"),
        ("/sw.js", "text/javascript"),
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.header("content-type").starts_with(ty), "{path}");
    }
}

#[tokio::test]
async fn access_token_guards_everything_but_health() {
    let token = "s3cret-token-for-tests";
    let app = app_with(|c| c.access_token = Some(token.into())).await;
    let r = app.get("/").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").starts_with("Basic"));
    assert_eq!(app.get_json("/jobs").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/metrics").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    let with = |name: &'static str, value: String| {
        Request::get("/")
            .header(name, value)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        app.send(with("authorization", format!("Bearer {token}")))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.send(with("authorization", "Bearer wrong".into()))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("me:{token}"));
    assert_eq!(
        app.send(with("authorization", format!("Basic {basic}")))
            .await
            .status,
        StatusCode::OK
    );
    let r = app.get(&format!("/?token={token}")).await;
    assert_eq!(r.status, StatusCode::OK);
    let cookie = r
        .header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(r.header("set-cookie").contains("HttpOnly"));
    assert_eq!(
        app.send(with("cookie", cookie)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn events_route_errors() {
    let app = app().await;
    let r = app.get("/jobs/not-an-id/events").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A finished job's stream is one `done` event, then it ends.
    let done = app.job_in(JobStatus::Completed, None).await;
    let r = app.get(&format!("/jobs/{}/events", done.job_id)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/event-stream"));
    assert!(r.body.starts_with("event: done\ndata: {"), "{}", r.body);
    assert_eq!(r.body.matches("event:").count(), 1);
}
