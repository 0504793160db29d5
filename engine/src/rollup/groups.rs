//! A capped table of log groups (error fingerprints, message patterns), each with its logs
//! counted per UTC hour, so the groups seen most in any hour-aligned window can be ranked.
//!
//! # What an entry holds, and why it stays exact
//!
//! An entry counts every stored log of its key whose sequence number is at least the entry's
//! `born_seq`; per hour it keeps a [`Cell`]: counts by level, the earliest timestamp, and the
//! latest `(timestamp, seq)`, which is also the group's sample log. Logs reach the table in
//! sequence order per project (the WAL writer applies batches in order, and a rebuild reads
//! sealed units — segments, then memtables — oldest first), so "counted" is exactly
//! "seq ≥ born_seq", which is what lets a removal (retention) or a recount tell a log this
//! entry counted from one an earlier, evicted entry of the same key counted.
//!
//! # The cap
//!
//! At most `cap` keys per table. When a new key arrives and the table is full, the least
//! recent 1/16th of the entries (by the newest log timestamp each has seen) are evicted
//! together, so eviction costs O(1) amortised per new key. The table remembers the newest
//! timestamp any evicted entry had seen ([`Groups::evicted_through`]): every stored log that
//! no entry counts is at or before it. So for any window that starts after it, every count,
//! first/last time and sample is exact; a window that reaches back to it may miss groups or
//! undercount them, never overcount.

use std::collections::HashMap;

// Keys (message templates, fingerprints) come from tenants' logs and std's SipHash costs
// more per template than the rest of counting a log: foldhash's fast hasher, seeded from the
// OS per table, so a tenant cannot aim keys at one bucket without knowing the seed.
use foldhash::fast::RandomState;

use super::bucket::hour_of;
use crate::model::{Level, LogId, LogRecord};

/// What the groups need of one log: its timestamp, sequence number and level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub ts: i64,
    pub seq: u64,
    pub level: Level,
}

impl Stamp {
    pub fn of(r: &LogRecord) -> Stamp {
        Stamp {
            ts: r.log.timestamp,
            seq: r.seq,
            level: r.log.level,
        }
    }
}

/// One group's logs in one UTC hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub hour: i64,
    pub levels: [u32; 5],
    pub min_ts: i64,
    /// The latest log: `(max_ts, max_seq)` is its id, the group's sample in this hour.
    pub max_ts: i64,
    pub max_seq: u64,
}

impl Cell {
    pub fn new(hour: i64) -> Cell {
        Cell {
            hour,
            levels: [0; 5],
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            max_seq: 0,
        }
    }
    pub fn count(&self) -> u64 {
        self.levels.iter().map(|&n| u64::from(n)).sum()
    }
    pub fn add(&mut self, ts: i64, seq: u64, level: Level) {
        self.levels[level as usize] += 1;
        self.min_ts = self.min_ts.min(ts);
        if (ts, seq) > (self.max_ts, self.max_seq) {
            self.max_ts = ts;
            self.max_seq = seq;
        }
    }
    /// Adds another cell's logs (the same group, the same hour).
    pub fn merge(&mut self, o: &Cell) {
        for l in 0..5 {
            self.levels[l] += o.levels[l];
        }
        self.min_ts = self.min_ts.min(o.min_ts);
        if (o.max_ts, o.max_seq) > (self.max_ts, self.max_seq) {
            self.max_ts = o.max_ts;
            self.max_seq = o.max_seq;
        }
    }
}

/// A group's logs in a window: what the ranked answers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agg {
    pub count: u64,
    pub levels: [u64; 5],
    pub first_ts: i64,
    /// The latest log in the window (the sample).
    pub last: LogId,
}

impl Agg {
    pub fn empty() -> Agg {
        Agg {
            count: 0,
            levels: [0; 5],
            first_ts: i64::MAX,
            last: LogId {
                timestamp: i64::MIN,
                seq: 0,
            },
        }
    }
    pub fn add_cell(&mut self, c: &Cell) {
        for l in 0..5 {
            self.levels[l] += u64::from(c.levels[l]);
            self.count += u64::from(c.levels[l]);
        }
        self.first_ts = self.first_ts.min(c.min_ts);
        let last = LogId {
            timestamp: c.max_ts,
            seq: c.max_seq,
        };
        self.last = self.last.max(last);
    }
    pub fn merge(&mut self, o: &Agg) {
        self.count += o.count;
        for l in 0..5 {
            self.levels[l] += o.levels[l];
        }
        self.first_ts = self.first_ts.min(o.first_ts);
        self.last = self.last.max(o.last);
    }
    /// Adds one log (the tests' brute-force counts).
    #[cfg(test)]
    pub fn add_log(&mut self, ts: i64, seq: u64, level: Level) {
        self.count += 1;
        self.levels[level as usize] += 1;
        self.first_ts = self.first_ts.min(ts);
        self.last = self.last.max(LogId { timestamp: ts, seq });
    }
}

/// One key's entry.
pub struct Entry<M> {
    pub key: Box<str>,
    pub meta: M,
    /// The entry counts the stored logs of its key with `seq >= born_seq`.
    pub born_seq: u64,
    /// The newest log timestamp this entry has seen (never lowered): its recency for eviction.
    pub recent: i64,
    /// Logs counted over all cells, in total and by level.
    pub levels: [u64; 5],
    /// Sorted by hour, one per hour with at least one log.
    pub cells: Vec<Cell>,
}

impl<M> Entry<M> {
    pub fn total(&self) -> u64 {
        self.levels.iter().sum()
    }

    /// The entry's logs with hours in `[start_hour, end_hour)`.
    pub fn window(&self, start_hour: i64, end_hour: i64) -> Agg {
        let mut a = Agg::empty();
        let (Some(first), Some(last)) = (self.cells.first(), self.cells.last()) else {
            return a;
        };
        if first.hour >= start_hour && last.hour < end_hour {
            // The whole entry lies in the window: its totals answer in O(1). Cells are in
            // hour order, so the first holds the earliest log and the last the latest.
            a.count = self.total();
            a.levels = self.levels;
            a.first_ts = first.min_ts;
            a.last = LogId {
                timestamp: last.max_ts,
                seq: last.max_seq,
            };
            return a;
        }
        let from = self.cells.partition_point(|c| c.hour < start_hour);
        for c in self.cells[from..].iter().take_while(|c| c.hour < end_hour) {
            a.add_cell(c);
        }
        a
    }

    fn cell_mut(&mut self, hour: i64) -> &mut Cell {
        // Most logs land in the newest hour the entry has.
        let n = self.cells.len();
        if n > 0 && self.cells[n - 1].hour == hour {
            return &mut self.cells[n - 1];
        }
        let at = self.cells.partition_point(|c| c.hour < hour);
        if at == n || self.cells[at].hour != hour {
            self.cells.insert(at, Cell::new(hour));
        }
        &mut self.cells[at]
    }

    fn add(&mut self, ts: i64, seq: u64, level: Level) {
        self.cell_mut(hour_of(ts)).add(ts, seq, level);
        self.levels[level as usize] += 1;
        self.recent = self.recent.max(ts);
    }

    /// Recomputes the totals from the cells (after a recount replaced some).
    pub fn retotal(&mut self) {
        self.cells.retain(|c| c.count() > 0);
        self.levels = [0; 5];
        for c in &self.cells {
            for l in 0..5 {
                self.levels[l] += u64::from(c.levels[l]);
            }
        }
    }
}

/// What removing a log did to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// No entry counted the log (its key was evicted since).
    NotCounted,
    /// Uncounted; the cell's earliest and latest logs are still right.
    Clean,
    /// Uncounted, but the log may have been its hour's earliest or latest (the sample): the
    /// hour must be recounted from the stored logs.
    Dirty(i64),
}

/// A capped table of groups keyed by text.
pub struct Groups<M> {
    index: HashMap<Box<str>, u32, RandomState>,
    slots: Vec<Option<Entry<M>>>,
    free: Vec<u32>,
    cap: usize,
    evicted_through: Option<i64>,
}

impl<M> Groups<M> {
    pub fn new(cap: usize) -> Groups<M> {
        Groups {
            index: HashMap::with_hasher(RandomState::default()),
            slots: Vec::new(),
            free: Vec::new(),
            cap: cap.max(1),
            evicted_through: None,
        }
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    #[cfg(any(test, feature = "testing"))]
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Hour cells held over all entries.
    pub fn cells(&self) -> usize {
        self.entries().map(|e| e.cells.len()).sum()
    }

    /// The newest log timestamp of any evicted entry, if one was evicted: windows that start
    /// after it are exact.
    pub fn evicted_through(&self) -> Option<i64> {
        self.evicted_through
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry<M>> {
        self.slots.iter().flatten()
    }

    pub fn entries_mut(&mut self) -> impl Iterator<Item = &mut Entry<M>> {
        self.slots.iter_mut().flatten()
    }

    pub fn get(&self, key: &str) -> Option<&Entry<M>> {
        let i = *self.index.get(key)?;
        self.slots[i as usize].as_ref()
    }

    /// Counts a log of `key`. A new key gets an entry born at `born_if_new` (made by `meta`);
    /// when `evict` is set and the table is full, the least recent entries make room first.
    /// Without `evict` the table may pass its cap until [`Groups::trim`].
    pub fn add(
        &mut self,
        key: &str,
        at: Stamp,
        born_if_new: u64,
        evict: bool,
        meta: impl FnOnce() -> M,
    ) {
        let Stamp { ts, seq, level } = at;
        if let Some(&i) = self.index.get(key) {
            if let Some(e) = self.slots[i as usize].as_mut() {
                e.add(ts, seq, level);
                return;
            }
        }
        if evict && self.index.len() >= self.cap {
            self.evict(self.index.len() + 1 - self.cap);
        }
        let mut e = Entry {
            key: key.into(),
            meta: meta(),
            born_seq: born_if_new,
            recent: ts,
            levels: [0; 5],
            cells: Vec::new(),
        };
        e.add(ts, seq, level);
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(e);
                i
            }
            None => {
                self.slots.push(Some(e));
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(key.into(), i);
    }

    /// Uncounts a stored log of `key` (one [`Groups::add`] counted, unless its entry was
    /// evicted since). An entry left with no logs is freed.
    pub fn remove(&mut self, key: &str, at: Stamp) -> Removed {
        let Stamp { ts, seq, level } = at;
        let Some(&i) = self.index.get(key) else {
            return Removed::NotCounted;
        };
        let Some(e) = self.slots[i as usize].as_mut() else {
            return Removed::NotCounted;
        };
        if seq < e.born_seq {
            return Removed::NotCounted;
        }
        let hour = hour_of(ts);
        let Ok(at) = e.cells.binary_search_by_key(&hour, |c| c.hour) else {
            debug_assert!(false, "removing a log its entry never counted");
            return Removed::NotCounted;
        };
        let c = &mut e.cells[at];
        let l = level as usize;
        debug_assert!(c.levels[l] > 0, "removing a log its entry never counted");
        c.levels[l] = c.levels[l].saturating_sub(1);
        e.levels[l] = e.levels[l].saturating_sub(1);
        let result = if c.count() == 0 {
            e.cells.remove(at);
            Removed::Clean
        } else if ts == c.min_ts || (ts, seq) == (c.max_ts, c.max_seq) {
            Removed::Dirty(hour)
        } else {
            Removed::Clean
        };
        if e.cells.is_empty() {
            self.free_slot(key);
        }
        result
    }

    /// Frees entries left without logs (after a recount).
    pub fn drop_empty(&mut self) {
        let empty: Vec<Box<str>> = self
            .entries()
            .filter(|e| e.cells.is_empty())
            .map(|e| e.key.clone())
            .collect();
        for k in empty {
            self.free_slot(&k);
        }
    }

    /// Evicts the least recent entries until the table is within its cap.
    pub fn trim(&mut self) {
        if self.index.len() > self.cap {
            self.evict(self.index.len() - self.cap);
        }
    }

    fn free_slot(&mut self, key: &str) {
        if let Some(i) = self.index.remove(key) {
            self.slots[i as usize] = None;
            self.free.push(i);
        }
    }

    /// Evicts at least `need` entries, and at least a 16th of the cap, least recent first.
    fn evict(&mut self, need: usize) {
        let n = need.max(self.cap / 16).max(1).min(self.index.len());
        if n == 0 {
            return;
        }
        let mut by_age: Vec<(i64, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (e.recent, i as u32)))
            .collect();
        by_age.select_nth_unstable(n - 1);
        for &(recent, i) in &by_age[..n] {
            if let Some(e) = self.slots[i as usize].take() {
                self.index.remove(&e.key);
                self.free.push(i);
                self.evicted_through = Some(self.evicted_through.map_or(recent, |t| t.max(recent)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollup::bucket::HOUR_US;

    fn st(ts: i64, seq: u64, level: Level) -> Stamp {
        Stamp { ts, seq, level }
    }

    #[test]
    fn windows_sum_cells_and_use_totals_when_whole() {
        let mut g: Groups<()> = Groups::new(10);
        g.add("a", st(10, 1, Level::Error), 1, true, || ());
        g.add("a", st(HOUR_US + 5, 2, Level::Critical), 1, true, || ());
        g.add("a", st(3, 3, Level::Error), 1, true, || ());
        let e = g.get("a").unwrap();
        assert_eq!(e.cells.len(), 2);
        let all = e.window(0, 2);
        assert_eq!(all.count, 3);
        assert_eq!(all.first_ts, 3);
        assert_eq!(
            all.last,
            LogId {
                timestamp: HOUR_US + 5,
                seq: 2
            }
        );
        let first = e.window(0, 1);
        assert_eq!((first.count, first.first_ts, first.last.seq), (2, 3, 1));
        assert_eq!(e.window(5, 9).count, 0);
    }

    #[test]
    fn removing_the_sample_marks_the_hour_dirty() {
        let mut g: Groups<()> = Groups::new(10);
        for (ts, seq) in [(10, 1), (20, 2), (30, 3)] {
            g.add("a", st(ts, seq, Level::Error), 1, true, || ());
        }
        assert_eq!(g.remove("a", st(20, 2, Level::Error)), Removed::Clean);
        assert_eq!(g.remove("a", st(30, 3, Level::Error)), Removed::Dirty(0));
        assert_eq!(g.remove("a", st(10, 1, Level::Error)), Removed::Clean);
        assert!(g.is_empty());
        assert_eq!(g.remove("a", st(10, 1, Level::Error)), Removed::NotCounted);
    }

    #[test]
    fn eviction_takes_the_least_recent_and_remembers_how_far() {
        let mut g: Groups<()> = Groups::new(4);
        for (i, k) in ["a", "b", "c", "d"].iter().enumerate() {
            g.add(
                k,
                st(100 - i as i64, i as u64, Level::Error),
                i as u64,
                true,
                || (),
            );
        }
        g.add("a", st(200, 9, Level::Error), 9, true, || ());
        g.add("e", st(150, 10, Level::Error), 10, true, || ());
        assert_eq!(g.len(), 4);
        assert!(g.get("d").is_none(), "d was the least recent");
        assert_eq!(g.evicted_through(), Some(97));
        // An old log of an evicted-and-reborn key is not uncounted from the new entry.
        g.add("d", st(300, 11, Level::Error), 11, true, || ());
        assert_eq!(g.remove("d", st(97, 3, Level::Error)), Removed::NotCounted);
        assert_eq!(g.get("d").unwrap().total(), 1);
    }
}
