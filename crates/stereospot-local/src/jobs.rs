//! Jobs and segment completions in SQLite.
//!
//! A job is stored as its JSON plus the columns listings need (status, created_at, completed_at
//! and the listing order `sort_at`). Conditional updates read, call [`JobUpdate::apply`] and
//! write inside one `BEGIN IMMEDIATE` transaction, which holds SQLite's write lock from the read
//! on: a concurrent updater (in this process or another) sees the result of the first one and is
//! refused by the status machine.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use stereospot_core::platform::{
    JobListKind, JobStore, Page, PageRequest, PlatformError, Result, SegmentCompletionStore,
};
use stereospot_core::{Job, JobId, JobStatus, JobUpdate, SegmentCompletion, UnixSeconds};

use crate::db::{Db, SqlContext, is_constraint_violation};

/// The largest page a listing returns, whatever the request asks.
pub const MAX_PAGE_LIMIT: u32 = 1000;

/// [`JobStore`] on the shared database.
#[derive(Debug, Clone)]
pub struct LocalJobStore {
    db: Db,
}

impl LocalJobStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn sort_at(job: &Job) -> UnixSeconds {
    match job.status {
        JobStatus::Completed => job.completed_at.unwrap_or(job.created_at),
        _ => job.created_at,
    }
}

fn to_json(job: &Job) -> Result<String> {
    serde_json::to_string(job)
        .map_err(|e| PlatformError::backend(format!("encoding job {}", job.job_id), e))
}

fn from_json(id: &str, body: &str) -> Result<Job> {
    serde_json::from_str(body)
        .map_err(|e| PlatformError::backend(format!("decoding stored job {id}"), e))
}

fn write_job(
    tx: &Transaction<'_>,
    job: &Job,
    body: &str,
    replace: bool,
) -> rusqlite::Result<usize> {
    let sql = if replace {
        "INSERT INTO jobs (job_id, status, created_at, completed_at, sort_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (job_id) DO UPDATE SET status = excluded.status,
             created_at = excluded.created_at, completed_at = excluded.completed_at,
             sort_at = excluded.sort_at, body = excluded.body"
    } else {
        "INSERT INTO jobs (job_id, status, created_at, completed_at, sort_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    };
    tx.execute(
        sql,
        params![
            job.job_id.to_string(),
            job.status.as_str(),
            job.created_at,
            job.completed_at,
            sort_at(job),
            body
        ],
    )
}

/// The opaque listing cursor: the `(sort_at, job_id)` of the last job of the previous page.
fn encode_cursor(job: &Job) -> String {
    format!("v1.{}.{}", sort_at(job), job.job_id)
}

fn decode_cursor(cursor: &str) -> Result<(i64, String)> {
    let bad = || PlatformError::Invalid("malformed page cursor".into());
    let rest = cursor.strip_prefix("v1.").ok_or_else(bad)?;
    let (at, id) = rest.rsplit_once('.').ok_or_else(bad)?;
    let at: i64 = at.parse().map_err(|_| bad())?;
    let id = JobId::parse(id).map_err(|_| bad())?;
    Ok((at, id.to_string()))
}

#[async_trait]
impl JobStore for LocalJobStore {
    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        self.db
            .run(move |conn| {
                let id = id.to_string();
                let body: Option<String> = conn
                    .query_row("SELECT body FROM jobs WHERE job_id = ?1", [&id], |r| {
                        r.get(0)
                    })
                    .optional()
                    .ctx("reading a job")?;
                body.map(|b| from_json(&id, &b)).transpose()
            })
            .await
    }

    async fn put(&self, job: &Job) -> Result<()> {
        let body = to_json(job)?;
        let job = job.clone();
        self.db
            .run(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .ctx("starting a job write")?;
                write_job(&tx, &job, &body, true).ctx("writing a job")?;
                tx.commit().ctx("committing a job write")
            })
            .await
    }

    async fn create(&self, job: &Job) -> Result<()> {
        let body = to_json(job)?;
        let job = job.clone();
        self.db
            .run(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .ctx("starting a job creation")?;
                match write_job(&tx, &job, &body, false) {
                    Ok(_) => {}
                    Err(e) if is_constraint_violation(&e) => {
                        return Err(PlatformError::AlreadyExists(format!("job {}", job.job_id)));
                    }
                    Err(e) => return Err(e).ctx("creating a job"),
                }
                tx.commit().ctx("committing a job creation")
            })
            .await
    }

    async fn update(&self, id: JobId, update: &JobUpdate) -> Result<Job> {
        let update = update.clone();
        self.db
            .run(move |conn| {
                let key = id.to_string();
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .ctx("starting a job update")?;
                let body: Option<String> = tx
                    .query_row("SELECT body FROM jobs WHERE job_id = ?1", [&key], |r| {
                        r.get(0)
                    })
                    .optional()
                    .ctx("reading a job to update")?;
                let Some(body) = body else {
                    return Err(PlatformError::NotFound(format!("job {key}")));
                };
                let current = from_json(&key, &body)?;
                let next = update.apply(&current)?;
                let next_body = to_json(&next)?;
                write_job(&tx, &next, &next_body, true).ctx("writing an updated job")?;
                tx.commit().ctx("committing a job update")?;
                Ok(next)
            })
            .await
    }

    async fn list(&self, kind: JobListKind, page: PageRequest) -> Result<Page<Job>> {
        if page.limit == 0 {
            return Err(PlatformError::Invalid(
                "page limit must be at least 1".into(),
            ));
        }
        let limit = page.limit.min(MAX_PAGE_LIMIT);
        let after = page.cursor.as_deref().map(decode_cursor).transpose()?;
        let statuses: &[JobStatus] = match kind {
            JobListKind::InProgress => &[
                JobStatus::Created,
                JobStatus::Ingesting,
                JobStatus::ChunkingInProgress,
                JobStatus::ChunkingComplete,
                JobStatus::Reassembling,
            ],
            JobListKind::Completed => &[JobStatus::Completed],
            JobListKind::Failed => &[JobStatus::Failed],
        };
        let placeholders = (0..statuses.len())
            .map(|i| format!("?{}", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        // ?1/?2 = the cursor (when there is one), ?3.. = statuses; the limit is inline.
        let after_cursor = if after.is_some() {
            "AND (sort_at, job_id) < (?1, ?2)"
        } else {
            "AND ?1 IS NULL AND ?2 IS NULL"
        };
        let sql = format!(
            "SELECT job_id, body FROM jobs
             WHERE status IN ({placeholders}) {after_cursor}
             ORDER BY sort_at DESC, job_id DESC
             LIMIT {}",
            u64::from(limit) + 1
        );
        let statuses: Vec<&'static str> = statuses.iter().map(|s| s.as_str()).collect();
        self.db
            .run(move |conn| {
                let mut st = conn.prepare_cached(&sql).ctx("preparing a job listing")?;
                let (at, id) = match after {
                    Some((at, id)) => (Some(at), Some(id)),
                    None => (None, None),
                };
                let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(at), Box::new(id)];
                args.extend(
                    statuses
                        .iter()
                        .map(|s| Box::new(*s) as Box<dyn rusqlite::ToSql>),
                );
                let rows = st
                    .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .ctx("listing jobs")?;
                let mut items = rows
                    .iter()
                    .map(|(id, body)| from_json(id, body))
                    .collect::<Result<Vec<Job>>>()?;
                let next_cursor = if items.len() > limit as usize {
                    items.truncate(limit as usize);
                    items.last().map(encode_cursor)
                } else {
                    None
                };
                Ok(Page { items, next_cursor })
            })
            .await
    }
}

/// [`SegmentCompletionStore`] on the shared database.
#[derive(Debug, Clone)]
pub struct LocalCompletionStore {
    db: Db,
}

impl LocalCompletionStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl SegmentCompletionStore for LocalCompletionStore {
    async fn put(&self, completion: &SegmentCompletion) -> Result<()> {
        let body = serde_json::to_string(completion).map_err(|e| {
            PlatformError::backend(
                format!(
                    "encoding the completion of segment {}",
                    completion.segment_index
                ),
                e,
            )
        })?;
        let job_id = completion.job_id.to_string();
        let index = completion.segment_index;
        self.db
            .run(move |conn| {
                conn.execute(
                    "INSERT INTO segment_completions (job_id, segment_index, body)
                     VALUES (?1, ?2, ?3)
                     ON CONFLICT (job_id, segment_index) DO UPDATE SET body = excluded.body",
                    params![job_id, index, body],
                )
                .ctx("recording a segment completion")?;
                Ok(())
            })
            .await
    }

    async fn list(&self, job_id: JobId) -> Result<Vec<SegmentCompletion>> {
        self.db
            .run(move |conn| {
                let mut st = conn
                    .prepare_cached(
                        "SELECT body FROM segment_completions WHERE job_id = ?1
                         ORDER BY segment_index",
                    )
                    .ctx("preparing a completion listing")?;
                let bodies = st
                    .query_map([job_id.to_string()], |r| r.get::<_, String>(0))
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .ctx("listing segment completions")?;
                bodies
                    .iter()
                    .map(|b| {
                        serde_json::from_str(b).map_err(|e| {
                            PlatformError::backend(
                                format!("decoding a stored completion of job {job_id}"),
                                e,
                            )
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn delete_job(&self, job_id: JobId) -> Result<()> {
        self.db
            .run(move |conn| {
                conn.execute(
                    "DELETE FROM segment_completions WHERE job_id = ?1",
                    [job_id.to_string()],
                )
                .ctx("deleting a job's segment completions")?;
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let job = Job::new(
            JobId::from_parts(5, [7; 10]),
            stereospot_core::StereoMode::Sbs,
            42,
        );
        let c = encode_cursor(&job);
        assert_eq!(decode_cursor(&c).unwrap(), (42, job.job_id.to_string()));
        for bad in ["", "v1.", "v1.x.y", "v2.1.abc", "v1.1.not-an-id"] {
            assert!(
                matches!(decode_cursor(bad), Err(PlatformError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
