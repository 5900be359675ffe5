//! `GET /jobs/{id}/events`: Server-Sent Events with a job's state.
//!
//! The stream sends `event: status` with the job's JSON view at once, again whenever its
//! status, progress, stage, title or error changes, and `event: done` (the same JSON) when it
//! reaches a terminal state (completed, failed, deleted); then it ends. Comments keep the
//! connection alive every `sse_keep_alive` (15 s by default).
//!
//! The stores have no change notifications, so a job is polled; but one poller per job serves
//! every client watching it (a [`tokio::sync::watch`] channel in the [`Hub`]), so 200 open
//! pages cost one read per interval, not 200. The poller stops when the last client leaves or
//! the job is finished.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use stereospot_core::{Job, JobId, JobStatus};
use tokio::sync::watch;

use crate::AppState;
use crate::error::WebError;
use crate::pages::{load_job, parse_id};
use crate::views::JobView;

type Sender = Arc<watch::Sender<JobView>>;

/// The jobs being watched, each with its one poller.
#[derive(Debug, Default)]
pub struct Hub {
    watched: Mutex<HashMap<JobId, Sender>>,
}

/// Whether two views differ in anything a client shows (the ETA alone counts down on the
/// client and does not make an event).
fn differs(a: &JobView, b: &JobView) -> bool {
    a.status != b.status
        || a.progress_percent != b.progress_percent
        || a.stage != b.stage
        || a.completed_segments != b.completed_segments
        || a.total_segments != b.total_segments
        || a.title != b.title
        || a.error != b.error
        || a.uploaded_at != b.uploaded_at
}

fn is_terminal(view: &JobView) -> bool {
    view.status.is_terminal()
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Sender>> {
        match self.watched.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// How many jobs have a poller (for tests and metrics).
    pub fn watched_jobs(&self) -> usize {
        self.lock().len()
    }

    /// A receiver of `job`'s views, starting from `initial` when no poller runs yet.
    fn subscribe(&self, state: &AppState, job: &Job, initial: JobView) -> watch::Receiver<JobView> {
        let mut watched = self.lock();
        if let Some(tx) = watched.get(&job.job_id) {
            return tx.subscribe();
        }
        let terminal = is_terminal(&initial);
        let (tx, rx) = watch::channel(initial);
        if terminal {
            // Nothing will change: no poller, the stream ends after the first event.
            return rx;
        }
        let tx = Arc::new(tx);
        watched.insert(job.job_id, tx.clone());
        tokio::spawn(poll(state.clone(), job.job_id, tx));
        rx
    }

    /// Forgets `id`'s poller if it is `tx` and nobody listens; `true` when it was forgotten.
    fn release_if_idle(&self, id: JobId, tx: &Sender) -> bool {
        let mut watched = self.lock();
        if tx.receiver_count() > 0 {
            return false;
        }
        if watched.get(&id).is_some_and(|t| Arc::ptr_eq(t, tx)) {
            watched.remove(&id);
        }
        true
    }

    fn release(&self, id: JobId, tx: &Sender) {
        let mut watched = self.lock();
        if watched.get(&id).is_some_and(|t| Arc::ptr_eq(t, tx)) {
            watched.remove(&id);
        }
    }
}

/// Re-reads the job every interval and publishes changes until it is finished or unwatched.
async fn poll(state: AppState, id: JobId, tx: Sender) {
    let mut interval = tokio::time::interval(state.config.sse_poll_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        if state.hub.release_if_idle(id, &tx) {
            return;
        }
        let view = match state.platform.jobs.get(id).await {
            Ok(Some(job)) => match JobView::load(&state, &job).await {
                Ok(v) => v,
                Err(_) => continue,
            },
            // Gone: report it as removed, which ends the streams.
            Ok(None) => {
                let mut gone = tx.borrow().clone();
                gone.status = JobStatus::Deleted;
                gone.stage = "Removed".into();
                gone
            }
            Err(e) => {
                tracing::warn!(job_id = %id, error = %e, "cannot read a watched job; retrying");
                continue;
            }
        };
        let terminal = is_terminal(&view);
        tx.send_if_modified(|current| {
            if differs(current, &view) {
                *current = view;
                true
            } else {
                // Keep the newest ETA for clients that join later.
                current.eta_seconds = view.eta_seconds;
                false
            }
        });
        if terminal {
            // Unregister first: a client arriving now starts from the store's terminal state.
            state.hub.release(id, &tx);
            return;
        }
    }
}

fn event(view: &JobView) -> Event {
    let name = if is_terminal(view) { "done" } else { "status" };
    match Event::default().event(name).json_data(view) {
        Ok(e) => e,
        // A JobView always serialises; never leave a client without an event.
        Err(_) => Event::default().event(name).data("{}"),
    }
}

/// The events of one client: the current view, then every change, ending after a terminal one.
fn stream(rx: watch::Receiver<JobView>) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold((rx, false, false), |(mut rx, started, ended)| async move {
        if ended {
            return None;
        }
        if started && rx.changed().await.is_err() {
            // The poller ended without a terminal view (it cannot, but never hang).
            return None;
        }
        let view = rx.borrow_and_update().clone();
        let end = is_terminal(&view);
        Some((Ok(event(&view)), (rx, true, end)))
    })
}

pub(crate) async fn job_events(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&raw)?;
    let job = load_job(&state, id).await?;
    let initial = JobView::load(&state, &job).await?;
    let rx = state.hub.subscribe(&state, &job, initial);
    let sse = Sse::new(stream(rx)).keep_alive(
        KeepAlive::new()
            .interval(state.config.sse_keep_alive)
            .text("keep-alive"),
    );
    let mut response = sse.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Tells nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
