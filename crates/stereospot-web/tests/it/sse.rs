//! Live progress over a real listener on port 0: the initial state, every status change, and
//! the terminal event.

use std::time::Duration;

use futures::StreamExt;
use stereospot_core::{JobStatus, JobUpdate, SegmentCompletion};

use crate::helpers::{TestApp, app, app_with};

/// A server for `app` on 127.0.0.1:0.
async fn serve(app: &TestApp) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (format!("http://{addr}"), task)
}

/// One SSE event or comment.
#[derive(Debug)]
pub enum Item {
    Event {
        name: String,
        data: serde_json::Value,
    },
    Comment(String),
}

/// Reads SSE items from a response body.
pub struct SseClient {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseClient {
    pub async fn connect(url: &str) -> Self {
        let res = reqwest::get(url).await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Self {
            body: res.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next item; `None` when the server ended the stream.
    pub async fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                let mut comment = None;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    } else if let Some(v) = line.strip_prefix(':') {
                        comment = Some(v.trim().to_string());
                    }
                }
                if data.is_empty() {
                    if let Some(c) = comment {
                        return Some(Item::Comment(c));
                    }
                    continue;
                }
                return Some(Item::Event {
                    name,
                    data: serde_json::from_str(&data).unwrap(),
                });
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an SSE item within 10 s")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    }

    /// The next event, skipping keep-alive comments.
    pub async fn next_event(&mut self) -> Option<(String, serde_json::Value)> {
        loop {
            match self.next().await? {
                Item::Event { name, data } => return Some((name, data)),
                Item::Comment(_) => continue,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sees_the_initial_state_every_change_and_the_end() {
    let app = app().await;
    let (base, server) = serve(&app).await;
    let job = app.job_in(JobStatus::Created, Some("Live")).await;
    let id = job.job_id;
    let jobs = app.local.platform.jobs.clone();
    let mut client = SseClient::connect(&format!("{base}/jobs/{id}/events")).await;
    let mut second = SseClient::connect(&format!("{base}/jobs/{id}/events")).await;

    let (name, data) = client.next_event().await.unwrap();
    assert_eq!(name, "status");
    assert_eq!(data["status"], "created");
    assert_eq!(data["title"], "Live");
    assert_eq!(second.next_event().await.unwrap().1["status"], "created");
    assert_eq!(
        app.state.hub.watched_jobs(),
        1,
        "one poller for both clients"
    );

    // Each change is published before the next is made: the client's event is the signal.
    let steps: Vec<(JobUpdate, &str, u64)> = vec![
        (
            JobUpdate::transition(JobStatus::Created, JobStatus::ChunkingInProgress),
            "chunking_in_progress",
            5,
        ),
        (
            JobUpdate {
                total_segments: Some(2),
                ..JobUpdate::transition(JobStatus::ChunkingInProgress, JobStatus::ChunkingComplete)
            },
            "chunking_complete",
            10,
        ),
    ];
    for (update, status, percent) in steps {
        jobs.update(id, &update).await.unwrap();
        let (name, data) = client.next_event().await.unwrap();
        assert_eq!(
            (name.as_str(), data["status"].as_str()),
            ("status", Some(status))
        );
        assert_eq!(data["progress_percent"], percent);
    }
    // A converted segment moves the bar without a status change.
    app.local
        .platform
        .completions
        .put(&SegmentCompletion {
            job_id: id,
            segment_index: 0,
            output_s3_uri: "s3://b/k".into(),
            completed_at: 1,
            total_segments: Some(2),
        })
        .await
        .unwrap();
    let (_, data) = client.next_event().await.unwrap();
    assert_eq!(data["progress_percent"], 50);
    assert_eq!(data["stage"], "Converting segments (1/2)");

    jobs.update(
        id,
        &JobUpdate::transition(JobStatus::ChunkingComplete, JobStatus::Reassembling),
    )
    .await
    .unwrap();
    let (_, data) = client.next_event().await.unwrap();
    assert_eq!(data["status"], "reassembling");
    jobs.update(
        id,
        &JobUpdate {
            completed_at: Some(2_000_000_000),
            ..JobUpdate::transition(JobStatus::Reassembling, JobStatus::Completed)
        },
    )
    .await
    .unwrap();
    let (name, data) = client.next_event().await.unwrap();
    assert_eq!(name, "done");
    assert_eq!(data["status"], "completed");
    assert!(
        client.next().await.is_none(),
        "the stream ends after the terminal event"
    );

    // The second client saw the same sequence and the same end.
    let mut statuses = Vec::new();
    while let Some((name, data)) = second.next_event().await {
        statuses.push((name, data["status"].as_str().unwrap().to_string()));
    }
    let last = statuses.last().unwrap();
    assert_eq!((last.0.as_str(), last.1.as_str()), ("done", "completed"));
    assert_eq!(app.state.hub.watched_jobs(), 0, "the poller stopped");
    server.abort();
}

#[tokio::test]
async fn failure_is_a_terminal_event_with_the_error() {
    let app = app().await;
    let (base, server) = serve(&app).await;
    let job = app.job_in(JobStatus::ChunkingInProgress, None).await;
    let mut client = SseClient::connect(&format!("{base}/jobs/{}/events", job.job_id)).await;
    assert_eq!(
        client.next_event().await.unwrap().1["status"],
        "chunking_in_progress"
    );
    app.local
        .platform
        .jobs
        .update(
            job.job_id,
            &JobUpdate::fail(
                JobStatus::ChunkingInProgress,
                "too_long",
                "The video is too long",
            ),
        )
        .await
        .unwrap();
    let (name, data) = client.next_event().await.unwrap();
    assert_eq!(name, "done");
    assert_eq!(data["error"]["message"], "The video is too long");
    assert!(client.next().await.is_none());
    server.abort();
}

#[tokio::test]
async fn idle_streams_get_keep_alives_and_pollers_stop_when_clients_leave() {
    let app = app_with(|c| c.sse_keep_alive = Duration::from_millis(50)).await;
    let (base, server) = serve(&app).await;
    let job = app.job_in(JobStatus::ChunkingComplete, None).await;
    let mut client = SseClient::connect(&format!("{base}/jobs/{}/events", job.job_id)).await;
    assert!(matches!(client.next().await, Some(Item::Event { .. })));
    assert!(
        matches!(client.next().await, Some(Item::Comment(c)) if c == "keep-alive"),
        "a keep-alive comment on an idle stream"
    );
    assert_eq!(app.state.hub.watched_jobs(), 1);
    drop(client);
    // The poller notices at its next tick (20 ms); no event exists for "a client left".
    let start = std::time::Instant::now();
    while app.state.hub.watched_jobs() != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "poller still running"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.abort();
}
