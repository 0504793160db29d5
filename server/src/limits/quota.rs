//! Daily quotas: logs accepted per project per UTC day, reserved before an append and
//! settled after it.
//!
//! The figures themselves are the engine's ([`Engine::usage`]): every WAL batch carries its
//! usage, so they are exact across any crash. This book adds what is in flight: the logs
//! granted to appends that have not finished. A grant is a [`Reservation`] that gives itself
//! back when dropped, whatever ends the request (an answer, an error, a client that went
//! away, shutdown), so a reservation is settled exactly once.
//!
//! Days counted before usage moved into the engine were kept in the metadata database; they
//! are read from there (never written) and added in.

use std::collections::HashMap;
use std::sync::Arc;

use ledger_engine::Engine;
use parking_lot::Mutex;

use crate::meta::{DayUsage, Meta, MetaResult};

/// The usage book of every project.
pub struct UsageBook {
    meta: Arc<Meta>,
    engine: Engine,
    /// Logs granted to appends still in flight, by `(project, day)`.
    reserved: Mutex<HashMap<(u64, i64), u64>>,
    /// Every day of a project counted before the engine kept usage (none on a data
    /// directory that never had them), oldest first, read once: they never change, so a
    /// day or a range of days needs no database read after the first.
    legacy: Mutex<HashMap<u64, Arc<Days>>>,
}

/// Usage by day, oldest first.
type Days = Vec<(i64, DayUsage)>;

/// Logs granted to one append. Dropping it gives the grant back: by then the engine has
/// counted whatever it stored, or stored nothing.
#[must_use = "a reservation is given back as soon as it is dropped"]
pub struct Reservation {
    book: Arc<UsageBook>,
    project: u64,
    day: i64,
    granted: u64,
}

impl Reservation {
    /// How many logs were granted.
    pub fn granted(&self) -> u64 {
        self.granted
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.granted == 0 {
            return;
        }
        let mut r = self.book.reserved.lock();
        if let Some(n) = r.get_mut(&(self.project, self.day)) {
            *n = n.saturating_sub(self.granted);
            if *n == 0 {
                r.remove(&(self.project, self.day));
            }
        }
    }
}

impl UsageBook {
    pub fn new(meta: Arc<Meta>, engine: Engine) -> UsageBook {
        UsageBook {
            meta,
            engine,
            reserved: Mutex::new(HashMap::new()),
            legacy: Mutex::new(HashMap::new()),
        }
    }

    fn legacy_days_cached(&self, project: u64) -> Option<Arc<Days>> {
        self.legacy.lock().get(&project).cloned()
    }

    fn legacy_days(&self, project: u64) -> MetaResult<Arc<Days>> {
        if let Some(days) = self.legacy_days_cached(project) {
            return Ok(days);
        }
        let days = Arc::new(self.meta.usage_range(project, i64::MIN, i64::MAX)?);
        self.legacy.lock().insert(project, days.clone());
        Ok(days)
    }

    fn on(days: &[(i64, DayUsage)], day: i64) -> DayUsage {
        days.binary_search_by_key(&day, |(d, _)| *d)
            .map_or(DayUsage::default(), |i| days[i].1)
    }

    fn legacy_cached(&self, project: u64, day: i64) -> Option<DayUsage> {
        Some(Self::on(&self.legacy_days_cached(project)?[..], day))
    }

    fn legacy(&self, project: u64, day: i64) -> MetaResult<DayUsage> {
        Ok(Self::on(&self.legacy_days(project)?[..], day))
    }

    fn grant(
        self: &Arc<Self>,
        project: u64,
        day: i64,
        want: u64,
        quota: u64,
        legacy: DayUsage,
    ) -> Reservation {
        let used = self.engine.usage(project, day).logs + legacy.logs;
        let mut reserved = self.reserved.lock();
        let held = reserved.entry((project, day)).or_default();
        let granted = want.min(quota.saturating_sub(used + *held));
        *held += granted;
        Reservation {
            book: self.clone(),
            project,
            day,
            granted,
        }
    }

    /// Grants up to `want` logs of `quota` for the day, held until the reservation drops.
    pub fn reserve(
        self: &Arc<Self>,
        project: u64,
        day: i64,
        want: u64,
        quota: u64,
    ) -> MetaResult<Reservation> {
        let legacy = self.legacy(project, day)?;
        Ok(self.grant(project, day, want, quota, legacy))
    }

    /// Like [`reserve`](Self::reserve) when it needs no database read; `None` otherwise.
    pub fn reserve_cached(
        self: &Arc<Self>,
        project: u64,
        day: i64,
        want: u64,
        quota: u64,
    ) -> Option<Reservation> {
        let legacy = self.legacy_cached(project, day)?;
        Some(self.grant(project, day, want, quota, legacy))
    }

    /// Logs granted to appends in flight for a project on a day.
    pub fn reserved(&self, project: u64, day: i64) -> u64 {
        self.reserved
            .lock()
            .get(&(project, day))
            .copied()
            .unwrap_or(0)
    }

    /// Logs granted to appends in flight, over every project and day.
    pub fn reserved_total(&self) -> u64 {
        self.reserved.lock().values().sum()
    }

    /// A project's usage on one day.
    pub fn day(&self, project: u64, day: i64) -> MetaResult<DayUsage> {
        let mut u = self.legacy(project, day)?;
        let e = self.engine.usage(project, day);
        u.logs += e.logs;
        u.bytes += e.bytes;
        Ok(u)
    }

    /// Usage on days `first..=last` (days without any included as zero), oldest first.
    pub fn range(&self, project: u64, first: i64, last: i64) -> MetaResult<Vec<(i64, DayUsage)>> {
        let legacy = self.legacy_days(project)?;
        Ok(self.with_engine(&legacy, project, first, last))
    }

    /// Like [`range`](Self::range) when it needs no database read (the project's legacy
    /// days were read before); `None` otherwise. Microseconds, in memory: the request need
    /// not go to the blocking pool.
    pub fn range_cached(
        &self,
        project: u64,
        first: i64,
        last: i64,
    ) -> Option<Vec<(i64, DayUsage)>> {
        let legacy = self.legacy_days_cached(project)?;
        Some(self.with_engine(&legacy, project, first, last))
    }

    fn with_engine(
        &self,
        legacy: &[(i64, DayUsage)],
        project: u64,
        first: i64,
        last: i64,
    ) -> Vec<(i64, DayUsage)> {
        let mut by_day: HashMap<i64, DayUsage> = legacy
            .iter()
            .filter(|(d, _)| (first..=last).contains(d))
            .copied()
            .collect();
        for (d, e) in self.engine.usage_range(project, first, last) {
            let u = by_day.entry(d).or_default();
            u.logs += e.logs;
            u.bytes += e.bytes;
        }
        (first..=last)
            .map(|d| (d, by_day.get(&d).copied().unwrap_or_default()))
            .collect()
    }

    /// Forgets a deleted project (the engine forgets its own figures).
    pub fn forget(&self, project: u64) {
        self.legacy.lock().remove(&project);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_engine::{AppendOptions, EngineConfig, Importance, Level, LogType, NewLog};

    fn engine(dir: &std::path::Path) -> Engine {
        let cfg = EngineConfig {
            search: false,
            ..EngineConfig::default()
        };
        Engine::open(&dir.join("data"), cfg).unwrap().0
    }

    fn logs(n: usize) -> Vec<NewLog> {
        (0..n)
            .map(|i| NewLog::new(i as i64, Level::Info, LogType::Logger, Importance::Low))
            .collect()
    }

    #[test]
    fn reservations_respect_the_quota_and_give_back_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(Meta::open(dir.path()).unwrap());
        let e = engine(dir.path());
        let book = Arc::new(UsageBook::new(meta, e.clone()));
        let day = ledger_engine::day_of(ledger_engine::now_micros());
        let a = book.reserve(1, day, 4, 5).unwrap();
        assert_eq!(a.granted(), 4);
        let b = book.reserve(1, day, 4, 5).unwrap();
        assert_eq!(b.granted(), 1, "four are in flight already");
        drop(b);
        assert_eq!(book.reserved(1, day), 4);
        let opts = AppendOptions {
            usage_bytes: 400,
            ..AppendOptions::default()
        };
        e.append(1, logs(4), opts).unwrap();
        drop(a);
        assert_eq!(book.reserved_total(), 0, "every grant is given back");
        assert_eq!(
            book.day(1, day).unwrap(),
            DayUsage {
                logs: 4,
                bytes: 400
            }
        );
        assert_eq!(book.reserve(1, day, 4, 5).unwrap().granted(), 1);
        let r = book.range(1, day - 1, day).unwrap();
        assert_eq!(r[0].1, DayUsage::default());
        assert_eq!(r[1].1.logs, 4);
    }

    #[test]
    fn days_counted_in_the_metadata_database_still_count() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(Meta::open(dir.path()).unwrap());
        let day = ledger_engine::day_of(ledger_engine::now_micros());
        meta.put_usage(&HashMap::from([(
            (1, day),
            DayUsage { logs: 3, bytes: 30 },
        )]))
        .unwrap();
        let book = Arc::new(UsageBook::new(meta, engine(dir.path())));
        assert_eq!(book.reserve(1, day, 5, 5).unwrap().granted(), 2);
        assert_eq!(book.day(1, day).unwrap().logs, 3);
    }

    #[test]
    fn a_range_of_days_is_read_from_the_database_once_then_answered_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(Meta::open(dir.path()).unwrap());
        let day = ledger_engine::day_of(ledger_engine::now_micros());
        let legacy = |logs| DayUsage {
            logs,
            bytes: 10 * logs,
        };
        meta.put_usage(&HashMap::from([
            ((1, day - 40), legacy(7)),
            ((1, day - 2), legacy(5)),
            ((1, day), legacy(3)),
            ((2, day), legacy(9)),
        ]))
        .unwrap();
        let e = engine(dir.path());
        let book = UsageBook::new(meta, e.clone());
        assert!(
            book.range_cached(1, day - 29, day).is_none(),
            "nothing read yet: the database must be asked"
        );
        let read = book.range(1, day - 29, day).unwrap();
        assert_eq!(read.len(), 30);
        assert_eq!(read[27], (day - 2, legacy(5)));
        assert_eq!(read[29], (day, legacy(3)));
        assert_eq!(
            read.iter().map(|(_, u)| u.logs).sum::<u64>(),
            8,
            "day - 40 is outside"
        );
        assert_eq!(book.range_cached(1, day - 29, day), Some(read));
        // The engine's figures stay live; the legacy ones are added in from memory.
        let opts = AppendOptions {
            usage_bytes: 400,
            ..AppendOptions::default()
        };
        e.append(1, logs(4), opts).unwrap();
        let now = book.range_cached(1, day - 40, day).unwrap();
        assert_eq!(now[0], (day - 40, legacy(7)));
        assert_eq!(
            now[40],
            (
                day,
                DayUsage {
                    logs: 7,
                    bytes: 430
                }
            )
        );
        assert!(book.range_cached(2, day, day).is_none(), "per project");
        book.forget(1);
        assert!(
            book.range_cached(1, day, day).is_none(),
            "forgotten with the project"
        );
    }
}
