//! Daily usage per project as versions before 0.2 kept it: logs and bytes accepted per UTC
//! day, snapshotted from memory every second (so a crash could lose the last second). The
//! engine now keeps usage with the WAL, exactly; these rows are only read, and added in.

#[cfg(test)]
use std::collections::HashMap;

pub use ledger_engine::DayUsage;

use super::{Meta, MetaResult, USAGE};

impl Meta {
    /// A project's usage on days `first..=last`, only the days that have any.
    pub fn usage_range(
        &self,
        project: u64,
        first: i64,
        last: i64,
    ) -> MetaResult<Vec<(i64, DayUsage)>> {
        let rtx = self.db().begin_read()?;
        let t = rtx.open_table(USAGE)?;
        let mut out = Vec::new();
        for row in t.range((project, first)..=(project, last))? {
            let (k, v) = row?;
            let (logs, bytes) = v.value();
            out.push((k.value().1, DayUsage { logs, bytes }));
        }
        Ok(out)
    }

    /// Writes absolute usage figures, as the old versions did (tests make legacy data with it).
    #[cfg(test)]
    pub fn put_usage(&self, rows: &HashMap<(u64, i64), DayUsage>) -> MetaResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let tx = self.db().begin_write()?;
        {
            let mut t = tx.open_table(USAGE)?;
            for ((project, day), u) in rows {
                t.insert((*project, *day), (u.logs, u.bytes))?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
