//! The one SQLite database of the embedded platform: `{data_dir}/stereospot.db`, shared by jobs,
//! segment completions, reassembly locks and every queue.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous=FULL` by default: every commit (a queue send,
//! a job update) is fsynced before the call returns, so an acknowledged write survives a crash of
//! the process *and* a power loss. `synchronous=NORMAL` ([`Synchronous::Normal`]) is offered for
//! throughput: with WAL it is still durable against a crash of the process (the WAL is in the OS
//! page cache), but the last commits may be lost on power loss or a kernel crash. The default is
//! the safe one because an acknowledged send that disappears breaks the pipeline's at-least-once
//! contract. The one exception is queue receives, deletes and visibility changes, which commit
//! without their own fsync even under `FULL` (`Db::run_relaxed`): losing one on power loss only
//! means a message is delivered again, and they are still durable against process crashes.
//!
//! # Threads
//!
//! rusqlite is synchronous. Every statement runs on tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]) against one connection behind a mutex, so async worker
//! threads never block on SQLite. One connection serialises this process's database work, which is
//! simple and fast enough (see `benches/local.rs`); other processes sharing the file are
//! coordinated by SQLite's locks, `busy_timeout` and `BEGIN IMMEDIATE` transactions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};
use stereospot_core::platform::{PlatformError, Result};
use tokio::sync::Notify;

/// The database file name inside the data directory.
pub const DB_FILE_NAME: &str = "stereospot.db";

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// Migrations, in order: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE jobs (
    job_id       TEXT PRIMARY KEY NOT NULL,
    status       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    completed_at INTEGER,
    -- listing order: completed_at (or created_at when absent) for completed jobs, else created_at
    sort_at      INTEGER NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX jobs_by_status ON jobs (status, sort_at DESC, job_id DESC);

CREATE TABLE segment_completions (
    job_id        TEXT NOT NULL,
    segment_index INTEGER NOT NULL,
    body          TEXT NOT NULL,
    PRIMARY KEY (job_id, segment_index)
) WITHOUT ROWID;

CREATE TABLE reassembly_locks (
    job_id       TEXT PRIMARY KEY NOT NULL,
    triggered_at INTEGER,
    owner        TEXT,
    lease_until  INTEGER
);

CREATE TABLE queue_messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL,
    id            TEXT NOT NULL UNIQUE,
    body          TEXT NOT NULL,
    sent_at_ms    INTEGER NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT
);
CREATE INDEX queue_messages_visible ON queue_messages (queue, visible_at_ms, seq);
"#];

/// SQLite's `synchronous` setting (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// fsync on every commit: durable against process crashes and power loss.
    #[default]
    Full,
    /// fsync at checkpoints only: durable against process crashes, not power loss.
    Normal,
}

/// How to open the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbOptions {
    pub synchronous: Synchronous,
    /// How long a statement waits for another process's lock before failing.
    pub busy_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// A handle to the database; cheap to clone, shared by every store and queue of one process.
#[derive(Debug, Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    synchronous: Synchronous,
    conn: Mutex<Connection>,
    /// One wake-up signal per queue name, for long-polling receivers in this process.
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Db {
    /// Opens (creating if needed) `{data_dir}/stereospot.db` with the default options, creating
    /// `data_dir` too, and migrates the schema.
    pub async fn open(data_dir: impl AsRef<Path>) -> Result<Db> {
        Self::open_with(data_dir, DbOptions::default()).await
    }

    /// [`Db::open`] with explicit options.
    pub async fn open_with(data_dir: impl AsRef<Path>, options: DbOptions) -> Result<Db> {
        let data_dir = data_dir.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(&data_dir, &options))
            .await
            .map_err(|e| PlatformError::backend("opening the database: task failed", e))?
    }

    /// [`Db::open_with`] for synchronous callers (start-up code, tools); blocks the thread.
    pub fn open_blocking(data_dir: &Path, options: &DbOptions) -> Result<Db> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            PlatformError::backend(
                format!("creating the data directory {}", data_dir.display()),
                e,
            )
        })?;
        let path = data_dir.join(DB_FILE_NAME);
        let ctx = |what: &str| format!("{what} ({})", path.display());
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| PlatformError::backend(ctx("opening the database"), e))?;
        conn.busy_timeout(options.busy_timeout)
            .map_err(|e| PlatformError::backend(ctx("setting busy_timeout"), e))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| PlatformError::backend(ctx("enabling WAL mode"), e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(PlatformError::backend(
                ctx("enabling WAL mode"),
                format!("journal_mode is {mode}, not wal"),
            ));
        }
        let sync = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(|e| PlatformError::backend(ctx("setting synchronous"), e))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| PlatformError::backend(ctx("enabling foreign keys"), e))?;
        let mut conn = conn;
        migrate(&mut conn).map_err(|e| match e {
            PlatformError::Backend { context, source } => PlatformError::Backend {
                context: ctx(&context),
                source,
            },
            other => other,
        })?;
        Ok(Db {
            inner: Arc::new(Inner {
                path,
                synchronous: options.synchronous,
                conn: Mutex::new(conn),
                wakers: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `PRAGMA integrity_check`; `"ok"` when the database is sound.
    pub async fn integrity_check(&self) -> Result<String> {
        self.run(|conn| {
            let rows: Vec<String> = conn
                .prepare("PRAGMA integrity_check")
                .and_then(|mut st| {
                    st.query_map([], |r| r.get::<_, String>(0))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .ctx("running the integrity check")?;
            Ok(rows.join("\n"))
        })
        .await
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            // A panic while the lock was held cannot leave a half-done transaction behind
            // (rusqlite rolls back on drop), so a poisoned lock is still usable.
            let mut conn = inner.conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(|e| PlatformError::backend("database task failed", e))?
    }

    /// [`Db::run`] for writes whose loss on *power failure* is harmless, such as receiving or
    /// deleting a queue message (a lost one only means an earlier redelivery, which
    /// at-least-once delivery allows): they commit with `synchronous=NORMAL`, so no fsync of
    /// their own. They stay durable against process crashes, and WAL keeps commit order, so the
    /// next fsynced commit makes them durable too. Everything else keeps the configured level.
    pub(crate) async fn run_relaxed<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        if self.inner.synchronous == Synchronous::Normal {
            return self.run(f).await;
        }
        self.run(|conn| {
            conn.pragma_update(None, "synchronous", "NORMAL")
                .ctx("relaxing synchronous")?;
            let result = f(conn);
            // Restore before anything else can use the connection (the mutex is still held).
            conn.pragma_update(None, "synchronous", "FULL")
                .ctx("restoring synchronous=FULL")?;
            result
        })
        .await
    }

    /// The wake-up signal of a queue (created on first use).
    pub(crate) fn waker(&self, queue: &str) -> Arc<Notify> {
        let mut wakers = self
            .inner
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(wakers.entry(queue.to_owned()).or_default())
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .ctx("starting the schema migration")?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .ctx("reading the schema version")?;
    if version > SCHEMA_VERSION {
        return Err(PlatformError::backend(
            "checking the schema version",
            format!(
                "the database has schema version {version}, newer than this build's {SCHEMA_VERSION}"
            ),
        ));
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(sql)
            .ctx(&format!("migrating the schema from version {from}"))?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .ctx("writing the schema version")?;
    tx.commit().ctx("committing the schema migration")
}

/// Maps rusqlite errors into [`PlatformError::Backend`] with what was being done.
pub(crate) trait SqlContext<T> {
    fn ctx(self, what: &str) -> Result<T>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn ctx(self, what: &str) -> Result<T> {
        self.map_err(|e| PlatformError::backend(format!("sqlite: {what}"), e))
    }
}

/// Whether `e` is a uniqueness or primary-key violation.
pub(crate) fn is_constraint_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
}

/// Milliseconds since the Unix epoch (wall clock: shared with other processes).
pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_in_wal_mode_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("data")).await.unwrap();
        let (mode, version): (String, i64) = db
            .run(|c| {
                let mode = c
                    .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                    .ctx("x")?;
                let v = c
                    .query_row("PRAGMA user_version", [], |r| r.get(0))
                    .ctx("x")?;
                Ok((mode, v))
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(db.integrity_check().await.unwrap(), "ok");
        drop(db);
        let db = Db::open(dir.path().join("data")).await.unwrap();
        assert!(db.path().ends_with(DB_FILE_NAME));
    }

    fn synchronous(c: &Connection) -> Result<i64> {
        c.query_row("PRAGMA synchronous", [], |r| r.get(0)).ctx("x")
    }

    #[tokio::test]
    async fn relaxed_writes_restore_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).await.unwrap();
        // 2 = FULL, 1 = NORMAL
        assert_eq!(db.run(|c| synchronous(c)).await.unwrap(), 2);
        assert_eq!(db.run_relaxed(|c| synchronous(c)).await.unwrap(), 1);
        assert_eq!(db.run(|c| synchronous(c)).await.unwrap(), 2);
        let failed: Result<()> = db
            .run_relaxed(|_| Err(PlatformError::Invalid("boom".into())))
            .await;
        assert!(failed.is_err());
        assert_eq!(db.run(|c| synchronous(c)).await.unwrap(), 2);

        let dir = tempfile::tempdir().unwrap();
        let options = DbOptions {
            synchronous: Synchronous::Normal,
            ..DbOptions::default()
        };
        let db = Db::open_with(dir.path(), options).await.unwrap();
        assert_eq!(db.run_relaxed(|c| synchronous(c)).await.unwrap(), 1);
        assert_eq!(db.run(|c| synchronous(c)).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).await.unwrap();
        db.run(|c| {
            c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .ctx("x")
        })
        .await
        .unwrap();
        drop(db);
        let err = Db::open(dir.path()).await.unwrap_err();
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(
            source.as_deref().is_some_and(|s| s.contains("newer")),
            "{err}: {source:?}"
        );
    }
}
