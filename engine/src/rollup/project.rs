//! One project's rollups: level counts per minute, error groups and message patterns, and
//! the rules for counting a stored log in and out of all three.

use std::collections::{BTreeSet, HashMap};

use foldhash::fast::RandomState;

use super::errors::ErrorTitle;
use super::groups::{Cell, Groups, Removed, Stamp};
use super::levels::{LevelCounts, HOUR_CHUNK_BYTES};
use super::patterns;
use super::RollupConfig;
use crate::model::{Field, LogRecord};

/// A project's rollups.
pub struct ProjectRollup {
    pub levels: LevelCounts,
    pub errors: Groups<ErrorTitle>,
    pub patterns: Groups<()>,
    /// The highest sequence number counted in (logs arrive in sequence order).
    pub applied_seq: u64,
    /// Reused for each log's template, so the append path does not allocate.
    scratch: String,
}

/// Fresh group cells for some hours: per group key, its cells in hour order. Looked up by
/// a borrowed key, so counting a log into a group already present allocates nothing.
#[derive(Default)]
pub struct CellMap(HashMap<Box<str>, Vec<Cell>, RandomState>);

impl CellMap {
    /// The cell of `key` in `hour`, made empty if missing.
    pub fn cell(&mut self, key: &str, hour: i64) -> &mut Cell {
        if !self.0.contains_key(key) {
            self.0.insert(key.into(), Vec::new());
        }
        let cells = self.0.get_mut(key).expect("inserted above");
        let at = match cells.binary_search_by_key(&hour, |c| c.hour) {
            Ok(at) => at,
            Err(at) => {
                cells.insert(at, Cell::new(hour));
                at
            }
        };
        &mut cells[at]
    }

    pub fn get(&self, key: &str, hour: i64) -> Option<&Cell> {
        let cells = self.0.get(key)?;
        let at = cells.binary_search_by_key(&hour, |c| c.hour).ok()?;
        Some(&cells[at])
    }

    /// Every cell, with its group's key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Cell)> {
        (self.0.iter()).flat_map(|(k, cells)| cells.iter().map(move |c| (&**k, c)))
    }
}

/// Each group's birth sequence number, by kind: what a recount admits a stored log under.
#[derive(Default)]
pub struct Births {
    errors: HashMap<Box<str>, u64, RandomState>,
    patterns: HashMap<Box<str>, u64, RandomState>,
}

impl Births {
    /// The birth of the error group (`errors` true) or pattern group `key`.
    pub fn get(&self, errors: bool, key: &str) -> Option<u64> {
        let map = if errors { &self.errors } else { &self.patterns };
        map.get(key).copied()
    }

    /// Every group: kind (`true` = error group), key, birth.
    pub fn iter(&self) -> impl Iterator<Item = (bool, &str, u64)> {
        let e = self.errors.iter().map(|(k, &b)| (true, &**k, b));
        e.chain(self.patterns.iter().map(|(k, &b)| (false, &**k, b)))
    }
}

impl ProjectRollup {
    pub fn new(cfg: &RollupConfig) -> ProjectRollup {
        ProjectRollup {
            levels: LevelCounts::default(),
            errors: Groups::new(cfg.max_fingerprints),
            patterns: Groups::new(cfg.max_patterns),
            applied_seq: 0,
            scratch: String::new(),
        }
    }

    /// Counts a stored log in. A group it opens is born at `born_if_new`; `evict` says
    /// whether a full table makes room now (the append path) or later (a rebuild, which
    /// trims between sealed units).
    pub fn add(&mut self, r: &LogRecord, born_if_new: u64, evict: bool) {
        let at = Stamp::of(r);
        self.levels.add(at.ts, at.level);
        if let Some(fp) = r.get(Field::ErrorFingerprint) {
            (self.errors).add(fp, at, born_if_new, evict, || ErrorTitle::of(&r.log));
        }
        if patterns::record_template(r, &mut self.scratch) {
            (self.patterns).add(&self.scratch, at, born_if_new, evict, || ());
        }
        self.applied_seq = self.applied_seq.max(at.seq);
    }

    /// Evicts down to the caps (after a rebuild's sealed unit).
    pub fn trim(&mut self) {
        self.errors.trim();
        self.patterns.trim();
    }

    /// Counts a stored log out (its segment was dropped). Hours whose group cells may now
    /// hold a wrong earliest/latest log are added to `dirty`.
    pub fn remove(&mut self, r: &LogRecord, dirty: &mut BTreeSet<i64>) {
        let at = Stamp::of(r);
        self.levels.remove(at.ts, at.level);
        if let Some(fp) = r.get(Field::ErrorFingerprint) {
            if let Removed::Dirty(h) = self.errors.remove(fp, at) {
                dirty.insert(h);
            }
        }
        if patterns::record_template(r, &mut self.scratch) {
            if let Removed::Dirty(h) = self.patterns.remove(&self.scratch, at) {
                dirty.insert(h);
            }
        }
    }

    /// The birth sequence numbers of every group.
    pub fn births(&self) -> Births {
        let e = self.errors.entries();
        let p = self.patterns.entries();
        Births {
            errors: e.map(|e| (e.key.clone(), e.born_seq)).collect(),
            patterns: p.map(|e| (e.key.clone(), e.born_seq)).collect(),
        }
    }

    /// Counts a stored log into fresh cells if the group that would count it exists and
    /// its birth (from `births`, or the live table when `births` is `None`) admits it.
    pub fn recount_into(
        &mut self,
        r: &LogRecord,
        births: Option<&Births>,
        errors: &mut CellMap,
        pats: &mut CellMap,
    ) {
        let (ts, seq, level) = (r.log.timestamp, r.seq, r.log.level);
        let hour = super::bucket::hour_of(ts);
        let admits = |this: &ProjectRollup, kind: bool, key: &str| -> bool {
            let born = match births {
                Some(b) => b.get(kind, key),
                None if kind => this.errors.get(key).map(|e| e.born_seq),
                None => this.patterns.get(key).map(|e| e.born_seq),
            };
            born.is_some_and(|b| seq >= b)
        };
        if let Some(fp) = r.get(Field::ErrorFingerprint) {
            if admits(self, true, fp) {
                errors.cell(fp, hour).add(ts, seq, level);
            }
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        if patterns::record_template(r, &mut scratch) && admits(self, false, &scratch) {
            pats.cell(&scratch, hour).add(ts, seq, level);
        }
        self.scratch = scratch;
    }

    /// Replaces the group cells of `hours` with recounted ones: `sealed` counts the sealed
    /// logs (under the births of `births`, so they apply only to groups born the same since),
    /// `active` the logs of the active memtable (under the live births).
    pub fn replace_hours(
        &mut self,
        hours: &BTreeSet<i64>,
        births: &Births,
        sealed: (CellMap, CellMap),
        active: (CellMap, CellMap),
    ) {
        replace(&mut self.errors, true, hours, births, &sealed.0, &active.0);
        replace(
            &mut self.patterns,
            false,
            hours,
            births,
            &sealed.1,
            &active.1,
        );
    }

    /// Approximate bytes held.
    pub fn approx_bytes(&self) -> usize {
        let cell = std::mem::size_of::<Cell>();
        let entry = 160;
        self.levels.hours() * (HOUR_CHUNK_BYTES + 48)
            + (self.errors.cells() + self.patterns.cells()) * cell
            + self
                .errors
                .entries()
                .map(|e| entry + 2 * e.key.len() + e.meta.message.len() + e.meta.error_type.len())
                .sum::<usize>()
            + self
                .patterns
                .entries()
                .map(|e| entry + 2 * e.key.len())
                .sum::<usize>()
    }
}

fn replace<M>(
    groups: &mut Groups<M>,
    kind: bool,
    hours: &BTreeSet<i64>,
    births: &Births,
    sealed: &CellMap,
    active: &CellMap,
) {
    for e in groups.entries_mut() {
        let same_birth = births.get(kind, &e.key) == Some(e.born_seq);
        for &h in hours {
            let mut fresh = Cell::new(h);
            if same_birth {
                if let Some(c) = sealed.get(&e.key, h) {
                    fresh.merge(c);
                }
            }
            if let Some(c) = active.get(&e.key, h) {
                fresh.merge(c);
            }
            match e.cells.binary_search_by_key(&h, |c| c.hour) {
                Ok(at) => e.cells[at] = fresh,
                Err(at) if fresh.count() > 0 => e.cells.insert(at, fresh),
                Err(_) => {}
            }
        }
        e.retotal();
    }
    groups.drop_empty();
}
