//! Projects: their owner and limits. Deleting one removes its keys and usage too.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::{decode, encode, Meta, MetaResult, KEYS, PROJECTS, USAGE};
use crate::meta::KeyRecord;

/// A project and its limits, as stored and as the API shows it (with the id in hex).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Project {
    /// The engine's project id; the API shows it as 16 lower-case hex digits.
    pub id: u64,
    /// The owning account's id.
    pub owner: String,
    pub name: String,
    /// µs since the epoch.
    pub created_at: i64,
    pub retention_days: u64,
    pub daily_quota: u64,
    pub rate_limit_per_minute: u64,
    pub rate_limit_per_hour: u64,
    pub max_queue_depth: u64,
}

impl Project {
    /// The oldest timestamp (µs) that is inside the project's retention at `now`. Reads
    /// return nothing older, even from a segment that retention has not dropped yet.
    pub fn retention_cutoff(&self, now: i64) -> i64 {
        let keep = i64::try_from(self.retention_days)
            .unwrap_or(i64::MAX)
            .saturating_mul(86_400_000_000);
        now.saturating_sub(keep)
    }
}

impl Meta {
    /// Creates or replaces a project record.
    pub fn put_project(&self, p: &Project) -> MetaResult<()> {
        let tx = self.db().begin_write()?;
        tx.open_table(PROJECTS)?
            .insert(p.id, encode(p).as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Every project of every account (loaded once at start into the server's cache).
    pub fn all_projects(&self) -> MetaResult<Vec<Project>> {
        let rtx = self.db().begin_read()?;
        let t = rtx.open_table(PROJECTS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push(decode("projects", k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Removes a project, its keys and its usage rows in one transaction. Returns the ids of
    /// the keys removed.
    pub fn delete_project(&self, id: u64) -> MetaResult<Vec<String>> {
        let tx = self.db().begin_write()?;
        let mut removed = Vec::new();
        {
            tx.open_table(PROJECTS)?.remove(id)?;
            let mut keys = tx.open_table(KEYS)?;
            for row in keys.iter()? {
                let (k, v) = row?;
                let rec: KeyRecord = decode("keys", k.value(), v.value())?;
                if rec.project == id {
                    removed.push(rec.id);
                }
            }
            for k in &removed {
                keys.remove(k.as_str())?;
            }
            tx.open_table(super::DELETIONS)?
                .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
            let mut usage = tx.open_table(USAGE)?;
            let days: Vec<(u64, i64)> = usage
                .range((id, i64::MIN)..=(id, i64::MAX))?
                .map(|r| r.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?;
            for d in days {
                usage.remove(d)?;
            }
        }
        tx.commit()?;
        Ok(removed)
    }
}
