//! Daily quotas: logs accepted per project per UTC day, reserved before an append and
//! committed after it, persisted to redb.
//!
//! Counting happens in memory so ingest never waits on a redb commit; a background task
//! writes changed days every second and at shutdown. A `kill -9` can therefore forget up to
//! a second of usage (the quota errs towards accepting), never lose logs.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::meta::{DayUsage, Meta, MetaResult};

#[derive(Default)]
struct Entry {
    usage: DayUsage,
    /// Logs granted to appends still in flight.
    reserved: u64,
    dirty: bool,
}

/// The usage book of every project.
pub struct UsageBook {
    meta: Arc<Meta>,
    days: Mutex<HashMap<(u64, i64), Entry>>,
}

impl UsageBook {
    pub fn new(meta: Arc<Meta>) -> UsageBook {
        UsageBook {
            meta,
            days: Mutex::new(HashMap::new()),
        }
    }

    fn ensure_loaded(&self, project: u64, day: i64) -> MetaResult<()> {
        if self.days.lock().contains_key(&(project, day)) {
            return Ok(());
        }
        let stored = self.meta.usage(project, day)?;
        self.days.lock().entry((project, day)).or_insert(Entry {
            usage: stored,
            ..Entry::default()
        });
        Ok(())
    }

    /// Grants up to `want` logs of `quota` for the day and holds them for the caller, who
    /// must then `commit` or `release` them. Returns how many were granted.
    pub fn reserve(&self, project: u64, day: i64, want: u64, quota: u64) -> MetaResult<u64> {
        self.ensure_loaded(project, day)?;
        let mut days = self.days.lock();
        let e = days.entry((project, day)).or_default();
        let room = quota.saturating_sub(e.usage.logs + e.reserved);
        let granted = want.min(room);
        e.reserved += granted;
        Ok(granted)
    }

    /// Like [`reserve`](Self::reserve) when the day is already in memory; `None` (nothing
    /// reserved) when it would need a redb read.
    pub fn reserve_cached(&self, project: u64, day: i64, want: u64, quota: u64) -> Option<u64> {
        let mut days = self.days.lock();
        let e = days.get_mut(&(project, day))?;
        let granted = want.min(quota.saturating_sub(e.usage.logs + e.reserved));
        e.reserved += granted;
        Some(granted)
    }

    /// Turns a reservation into usage once the logs are stored.
    pub fn commit(&self, project: u64, day: i64, reserved: u64, logs: u64, bytes: u64) {
        let mut days = self.days.lock();
        let e = days.entry((project, day)).or_default();
        e.reserved = e.reserved.saturating_sub(reserved);
        e.usage.logs += logs;
        e.usage.bytes += bytes;
        e.dirty = true;
    }

    /// Gives back a reservation whose append failed.
    pub fn release(&self, project: u64, day: i64, reserved: u64) {
        if let Some(e) = self.days.lock().get_mut(&(project, day)) {
            e.reserved = e.reserved.saturating_sub(reserved);
        }
    }

    /// A project's usage on one day, including what is not yet written to redb.
    pub fn day(&self, project: u64, day: i64) -> MetaResult<DayUsage> {
        self.ensure_loaded(project, day)?;
        Ok(self
            .days
            .lock()
            .get(&(project, day))
            .map_or(DayUsage::default(), |e| e.usage))
    }

    /// Usage on days `first..=last` (days without any included as zero), oldest first.
    pub fn range(&self, project: u64, first: i64, last: i64) -> MetaResult<Vec<(i64, DayUsage)>> {
        let mut by_day: HashMap<i64, DayUsage> = self
            .meta
            .usage_range(project, first, last)?
            .into_iter()
            .collect();
        for ((p, d), e) in self.days.lock().iter() {
            if *p == project && (first..=last).contains(d) {
                by_day.insert(*d, e.usage);
            }
        }
        Ok((first..=last)
            .map(|d| (d, by_day.get(&d).copied().unwrap_or_default()))
            .collect())
    }

    /// Writes changed days to redb, and forgets clean days older than `keep_from`.
    pub fn flush(&self, keep_from: i64) -> MetaResult<()> {
        let dirty: HashMap<(u64, i64), DayUsage> = {
            let mut days = self.days.lock();
            days.retain(|(_, d), e| *d >= keep_from || e.dirty || e.reserved > 0);
            days.iter_mut()
                .filter(|(_, e)| e.dirty)
                .map(|(k, e)| {
                    e.dirty = false;
                    (*k, e.usage)
                })
                .collect()
        };
        if let Err(e) = self.meta.put_usage(&dirty) {
            // Mark them again so the next flush retries.
            let mut days = self.days.lock();
            for k in dirty.keys() {
                if let Some(e) = days.get_mut(k) {
                    e.dirty = true;
                }
            }
            return Err(e);
        }
        Ok(())
    }

    /// Forgets a deleted project.
    pub fn forget(&self, project: u64) {
        self.days.lock().retain(|(p, _), _| *p != project);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_respect_the_quota_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let book = UsageBook::new(Arc::new(Meta::open(dir.path()).unwrap()));
            assert_eq!(book.reserve(1, 100, 4, 5).unwrap(), 4);
            assert_eq!(
                book.reserve(1, 100, 4, 5).unwrap(),
                1,
                "one in flight already"
            );
            book.release(1, 100, 1);
            book.commit(1, 100, 4, 4, 400);
            book.flush(100).unwrap();
        }
        let book = UsageBook::new(Arc::new(Meta::open(dir.path()).unwrap()));
        assert_eq!(
            book.day(1, 100).unwrap(),
            DayUsage {
                logs: 4,
                bytes: 400
            }
        );
        assert_eq!(book.reserve(1, 100, 4, 5).unwrap(), 1);
        let r = book.range(1, 99, 100).unwrap();
        assert_eq!(r[0].1, DayUsage::default());
        assert_eq!(r[1].1.logs, 4);
    }
}
