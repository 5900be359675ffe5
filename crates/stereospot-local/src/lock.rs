//! The per-job reassembly record in SQLite: a trigger set once, and a leased claim.
//!
//! Both operations are single conditional upserts, so SQLite's write lock makes them atomic
//! across threads and processes; `changes() == 1` tells the caller whether its write happened.

use async_trait::async_trait;
use rusqlite::params;
use stereospot_core::platform::{ReassemblyLock, Result};
use stereospot_core::{JobId, UnixSeconds};

use crate::db::{Db, SqlContext};

/// [`ReassemblyLock`] on the shared database.
#[derive(Debug, Clone)]
pub struct LocalReassemblyLock {
    db: Db,
}

impl LocalReassemblyLock {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl ReassemblyLock for LocalReassemblyLock {
    async fn try_trigger(&self, job_id: JobId, now: UnixSeconds) -> Result<bool> {
        self.db
            .run(move |conn| {
                // Inserts the record, or sets the trigger of a record a claim created first;
                // a trigger that is already set is left alone (0 rows changed).
                let changed = conn
                    .execute(
                        "INSERT INTO reassembly_locks (job_id, triggered_at) VALUES (?1, ?2)
                         ON CONFLICT (job_id) DO UPDATE SET triggered_at = excluded.triggered_at
                         WHERE reassembly_locks.triggered_at IS NULL",
                        params![job_id.to_string(), now],
                    )
                    .ctx("setting a reassembly trigger")?;
                Ok(changed == 1)
            })
            .await
    }

    async fn try_claim(
        &self,
        job_id: JobId,
        owner: &str,
        now: UnixSeconds,
        lease_secs: u64,
    ) -> Result<bool> {
        let owner = owner.to_owned();
        let until = now.saturating_add(i64::try_from(lease_secs).unwrap_or(i64::MAX));
        self.db
            .run(move |conn| {
                // Takes the claim when nobody holds it, the holder's lease has run out, or the
                // caller already holds it (which renews the lease).
                let changed = conn
                    .execute(
                        "INSERT INTO reassembly_locks (job_id, owner, lease_until) VALUES (?1, ?2, ?3)
                         ON CONFLICT (job_id) DO UPDATE
                             SET owner = excluded.owner, lease_until = excluded.lease_until
                         WHERE reassembly_locks.owner IS NULL
                            OR reassembly_locks.owner = excluded.owner
                            OR reassembly_locks.lease_until <= ?4",
                        params![job_id.to_string(), owner, until, now],
                    )
                    .ctx("claiming a reassembly")?;
                Ok(changed == 1)
            })
            .await
    }

    async fn release(&self, job_id: JobId, owner: &str) -> Result<()> {
        let owner = owner.to_owned();
        self.db
            .run(move |conn| {
                conn.execute(
                    "UPDATE reassembly_locks SET owner = NULL, lease_until = NULL
                     WHERE job_id = ?1 AND owner = ?2",
                    params![job_id.to_string(), owner],
                )
                .ctx("releasing a reassembly claim")?;
                Ok(())
            })
            .await
    }

    async fn clear(&self, job_id: JobId) -> Result<()> {
        self.db
            .run(move |conn| {
                conn.execute(
                    "DELETE FROM reassembly_locks WHERE job_id = ?1",
                    [job_id.to_string()],
                )
                .ctx("clearing a reassembly record")?;
                Ok(())
            })
            .await
    }
}
