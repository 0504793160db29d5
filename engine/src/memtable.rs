//! A project's rows that are durable in the WAL but not yet sealed into a segment, ordered by
//! `(timestamp, seq)` so scans and lookups by id read them like a segment.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use crate::model::{LogId, LogRecord};
use crate::usage::{DayMap, DayUsage};

/// The sort key of every row in Ledger.
pub type Key = (i64, u64);

pub struct Memtable {
    rows: BTreeMap<Key, Arc<LogRecord>>,
    bytes: usize,
    min_seq: u64,
    max_seq: u64,
    created: Instant,
    /// Usage of the batches held here, by day; the catalog takes it over when they are sealed.
    usage: DayMap,
}

impl Default for Memtable {
    fn default() -> Self {
        Memtable {
            rows: BTreeMap::new(),
            bytes: 0,
            min_seq: u64::MAX,
            max_seq: 0,
            created: Instant::now(),
            usage: DayMap::new(),
        }
    }
}

impl Memtable {
    /// Adds a row; rows are shared with the search indexer, hence the `Arc`.
    pub fn insert(&mut self, rec: Arc<LogRecord>) {
        if self.rows.is_empty() {
            self.created = Instant::now();
        }
        self.bytes += rec.approx_size();
        self.min_seq = self.min_seq.min(rec.seq);
        self.max_seq = self.max_seq.max(rec.seq);
        self.rows.insert(rec.key(), rec);
    }
    /// Counts a batch held here towards its day's usage.
    pub fn add_usage(&mut self, day: i64, u: DayUsage) {
        self.usage.entry(day).or_default().add(u);
    }
    /// The usage of the batches held here, by day.
    pub fn usage(&self) -> &DayMap {
        &self.usage
    }
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
    /// Lowest sequence number held, if any row is.
    pub fn min_seq(&self) -> Option<u64> {
        (!self.rows.is_empty()).then_some(self.min_seq)
    }
    pub fn max_seq(&self) -> u64 {
        self.max_seq
    }
    /// When the oldest row still here arrived.
    pub fn created(&self) -> Instant {
        self.created
    }
    pub fn get(&self, id: LogId) -> Option<&LogRecord> {
        self.rows.get(&(id.timestamp, id.seq)).map(|r| &**r)
    }
    /// Rows with keys in `(lo, hi)` bounds, ascending or descending.
    pub fn range(
        &self,
        lo: Bound<Key>,
        hi: Bound<Key>,
        descending: bool,
    ) -> Box<dyn Iterator<Item = &LogRecord> + '_> {
        if lo_above_hi(&lo, &hi) {
            return Box::new(std::iter::empty());
        }
        let it = self.rows.range((lo, hi)).map(|(_, v)| &**v);
        if descending {
            Box::new(it.rev())
        } else {
            Box::new(it)
        }
    }
    /// Like [`range`](Self::range), yielding the shared rows themselves.
    pub fn range_shared(
        &self,
        lo: Bound<Key>,
        hi: Bound<Key>,
        descending: bool,
    ) -> Box<dyn Iterator<Item = &Arc<LogRecord>> + '_> {
        if lo_above_hi(&lo, &hi) {
            return Box::new(std::iter::empty());
        }
        let it = self.rows.range((lo, hi)).map(|(_, v)| v);
        if descending {
            Box::new(it.rev())
        } else {
            Box::new(it)
        }
    }
    /// All rows in ascending key order.
    pub fn iter(&self) -> impl Iterator<Item = &LogRecord> {
        self.rows.values().map(|r| &**r)
    }
}

/// `BTreeMap::range` panics when the start is above the end; a query can ask for that.
pub fn lo_above_hi(lo: &Bound<Key>, hi: &Bound<Key>) -> bool {
    use Bound::*;
    match (lo, hi) {
        (Included(a), Included(b)) => a > b,
        (Included(a), Excluded(b)) | (Excluded(a), Included(b)) => a >= b,
        (Excluded(a), Excluded(b)) => a >= b,
        _ => false,
    }
}
