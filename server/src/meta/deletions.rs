//! Deletions of logs by query: the request as the owner sent it, and where it stands. The
//! engine does the deleting and counts what it removed (its catalog's `erased` table).

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::{decode, encode, Meta, MetaResult, COUNTERS, DELETIONS};

/// A deletion as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeletionRecord {
    /// Also the engine's id for it.
    pub id: u64,
    pub project: u64,
    pub account: String,
    /// µs since the epoch.
    pub created_at: i64,
    /// Logs with a sequence number up to this existed when it was created: the only ones
    /// it may remove.
    pub through: u64,
    /// The request body's conditions (`q`, `start_time`, `end_time`, `/logs` filters).
    pub conditions: serde_json::Map<String, serde_json::Value>,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
    /// Logs removed, once finished (while running, the engine's count so far).
    pub deleted: u64,
}

impl Meta {
    /// A fresh deletion id.
    pub fn next_deletion_id(&self) -> MetaResult<u64> {
        let tx = self.db().begin_write()?;
        let id = {
            let mut counters = tx.open_table(COUNTERS)?;
            let id = counters.get("deletion_seq")?.map_or(0, |v| v.value()) + 1;
            counters.insert("deletion_seq", id)?;
            id
        };
        tx.commit()?;
        Ok(id)
    }

    /// Creates or updates a deletion.
    pub fn put_deletion(&self, d: &DeletionRecord) -> MetaResult<()> {
        let tx = self.db().begin_write()?;
        tx.open_table(DELETIONS)?
            .insert((d.project, d.id), encode(d).as_slice())?;
        tx.commit()?;
        Ok(())
    }

    pub fn deletion(&self, project: u64, id: u64) -> MetaResult<Option<DeletionRecord>> {
        let rtx = self.db().begin_read()?;
        let t = rtx.open_table(DELETIONS)?;
        t.get((project, id))?
            .map(|v| decode("deletions", id, v.value()))
            .transpose()
    }

    /// A project's deletions, newest first (at most `limit`).
    pub fn deletions(&self, project: u64, limit: usize) -> MetaResult<Vec<DeletionRecord>> {
        let rtx = self.db().begin_read()?;
        let t = rtx.open_table(DELETIONS)?;
        let mut out = Vec::new();
        for row in t
            .range((project, 0)..=(project, u64::MAX))?
            .rev()
            .take(limit)
        {
            let (k, v) = row?;
            out.push(decode("deletions", k.value().1, v.value())?);
        }
        Ok(out)
    }

    /// Every deletion still running (to resume after a restart), oldest first.
    pub fn running_deletions(&self) -> MetaResult<Vec<DeletionRecord>> {
        let rtx = self.db().begin_read()?;
        let t = rtx.open_table(DELETIONS)?;
        let mut out: Vec<DeletionRecord> = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let d: DeletionRecord = decode("deletions", k.value().1, v.value())?;
            if d.state == "running" {
                out.push(d);
            }
        }
        out.sort_by_key(|d| d.id);
        Ok(out)
    }
}
