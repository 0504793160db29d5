//! Daily usage: logs and bytes accepted per project per UTC day (by `ingested_at`), exact
//! across crashes.
//!
//! Usage is durable with the batch: every WAL batch carries its usage bytes
//! ([`crate::wal::format::FLAG_USAGE`]). The catalog holds the usage of every sealed row
//! (written in the same transaction that raises the project's `sealed` mark); the memtables
//! hold the usage of the rest, which WAL replay counts again after a crash. So after any
//! crash the figures equal what was acknowledged, or stored without an answer.

use std::collections::{BTreeMap, HashMap};

use parking_lot::Mutex;

use crate::model::ProjectId;

/// Microseconds in a UTC day.
pub const DAY_MICROS: i64 = 86_400_000_000;

/// The UTC day (days since the Unix epoch) of a time in µs.
pub fn day_of(micros: i64) -> i64 {
    micros.div_euclid(DAY_MICROS)
}

/// Logs and bytes accepted on one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayUsage {
    pub logs: u64,
    pub bytes: u64,
}

impl DayUsage {
    pub fn add(&mut self, other: DayUsage) {
        self.logs += other.logs;
        self.bytes += other.bytes;
    }
}

/// Usage by day, as a memtable or a seal carries it.
pub type DayMap = BTreeMap<i64, DayUsage>;

/// The node's usage figures: every project, every day.
#[derive(Default)]
pub struct UsageBook {
    days: Mutex<HashMap<(ProjectId, i64), DayUsage>>,
}

impl UsageBook {
    /// Starts from the figures the catalog holds.
    pub fn new(stored: impl IntoIterator<Item = ((ProjectId, i64), DayUsage)>) -> UsageBook {
        UsageBook {
            days: Mutex::new(stored.into_iter().collect()),
        }
    }

    /// Counts a batch in.
    pub fn add(&self, project: ProjectId, day: i64, u: DayUsage) {
        self.days.lock().entry((project, day)).or_default().add(u);
    }

    /// Counts deleted logs out (never below zero).
    pub fn subtract(&self, project: ProjectId, day: i64, u: DayUsage) {
        if let Some(d) = self.days.lock().get_mut(&(project, day)) {
            d.logs = d.logs.saturating_sub(u.logs);
            d.bytes = d.bytes.saturating_sub(u.bytes);
        }
    }

    /// One project's usage on one day.
    pub fn day(&self, project: ProjectId, day: i64) -> DayUsage {
        self.days
            .lock()
            .get(&(project, day))
            .copied()
            .unwrap_or_default()
    }

    /// A project's usage on days `first..=last`, only the days that have any, oldest first.
    pub fn range(&self, project: ProjectId, first: i64, last: i64) -> Vec<(i64, DayUsage)> {
        let mut v: Vec<(i64, DayUsage)> = (self.days.lock().iter())
            .filter(|((p, d), _)| *p == project && (first..=last).contains(d))
            .map(|((_, d), u)| (*d, *u))
            .collect();
        v.sort_by_key(|(d, _)| *d);
        v
    }

    /// Replaces every figure (a read-only node adopting another node's catalog).
    pub fn replace(&self, stored: impl IntoIterator<Item = ((ProjectId, i64), DayUsage)>) {
        *self.days.lock() = stored.into_iter().collect();
    }

    /// Forgets a deleted project.
    pub fn remove_project(&self, project: ProjectId) {
        self.days.lock().retain(|(p, _), _| *p != project);
    }
}
