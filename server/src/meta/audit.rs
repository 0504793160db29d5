//! The audit log: who did what to which project or key, when, and from where.

use serde::{Deserialize, Serialize};

use redb::ReadableTable;

use super::{decode, encode, Meta, MetaResult, AUDIT, COUNTERS};

/// One audited action.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEvent {
    /// µs since the epoch.
    pub at: i64,
    /// `register`, `login`, `login_failed`, `project.create`, `project.update`,
    /// `project.delete`, `key.create`, `key.revoke`.
    pub action: String,
    pub account: String,
    pub project_id: Option<u64>,
    pub key_id: Option<String>,
    /// The client's address.
    pub source: String,
}

/// A page of events, newest first, and where the next page starts.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// The sequence number to pass back as `before` for the next page.
    pub next: Option<u64>,
}

impl Meta {
    /// Appends an event to its account's log.
    pub fn audit(&self, e: &AuditEvent) -> MetaResult<()> {
        let tx = self.db().begin_write()?;
        {
            let mut counters = tx.open_table(COUNTERS)?;
            let seq = counters.get("audit_seq")?.map_or(0, |v| v.value()) + 1;
            counters.insert("audit_seq", seq)?;
            tx.open_table(AUDIT)?
                .insert((e.account.as_str(), seq), encode(e).as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Up to `limit` of an account's events older than sequence `before` (all when `None`),
    /// newest first.
    pub fn audit_page(
        &self,
        account: &str,
        limit: usize,
        before: Option<u64>,
    ) -> MetaResult<AuditPage> {
        let rtx = self.db().begin_read()?;
        let t = rtx.open_table(AUDIT)?;
        let hi = before.unwrap_or(u64::MAX);
        let mut page = AuditPage::default();
        let mut last_seq = None;
        for row in t.range((account, 0)..(account, hi))?.rev() {
            let (k, v) = row?;
            let seq = k.value().1;
            if page.events.len() == limit {
                page.next = last_seq;
                break;
            }
            page.events.push(decode("audit", seq, v.value())?);
            last_seq = Some(seq);
        }
        Ok(page)
    }
}
