//! Reading stored logs back into the rollups: the rebuild at open, and the uncounting and
//! recounting when retention drops segments.
//!
//! # Locks and order
//!
//! Rows are counted in by the rollup thread after they are readable, in sequence order per
//! project, and `ProjectRollup::applied_seq` says how far it got. So what a project's
//! rollups count is exactly its stored rows with a sequence number up to `applied_seq`,
//! and a recount reads the stored rows and keeps exactly those; rows past it are still on
//! their way and will be counted in by the thread.
//!
//! Retention runs under the engine's maintenance lock, so segments and frozen memtables
//! cannot change while it reads them (and it first waits for the thread, so every sealed row
//! is counted before any is counted out); only the active memtable can change, and it is
//! read under the project's state lock. Locks are taken state first, then rollup, or the
//! rollup lock alone, so no deadlock is possible.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::Mutex;

use super::bucket::HOUR_US;
use super::project::{Births, CellMap, ProjectRollup};
use super::RollupConfig;
use crate::error::Result;
use crate::memtable::Memtable;
use crate::model::LogRecord;
use crate::query::cached_block;
use crate::segment::cache::BlockCache;
use crate::segment::SegmentReader;

/// The smallest sequence number in a segment.
fn min_seq(s: &SegmentReader) -> u64 {
    s.blocks.iter().map(|b| b.min_seq).min().unwrap_or(0)
}

/// Counts a project's sealed logs into fresh rollups, oldest segment first. Each segment is
/// a unit: groups it opens are born at its smallest sequence number, and the caps are
/// enforced after it. A block that cannot be read is skipped (its logs are unreadable to
/// scans too) and reported in the error count.
pub fn build_from_segments(
    cfg: &RollupConfig,
    segments: &[Arc<SegmentReader>],
    cache: Option<&BlockCache>,
) -> (ProjectRollup, Vec<String>) {
    let mut r = ProjectRollup::new(cfg);
    let mut errors = Vec::new();
    // Oldest first by sequence number, not by id: a segment rewritten by a deletion has a
    // new id but keeps its logs' (old) sequence numbers.
    let mut segs: Vec<&Arc<SegmentReader>> = segments.iter().collect();
    segs.sort_by_key(|s| min_seq(s));
    for seg in segs {
        let born = min_seq(seg);
        for i in 0..seg.blocks.len() {
            match read(seg, i, cache) {
                Ok(rows) => rows.iter().for_each(|row| r.add(row, born, false)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        r.trim();
    }
    (r, errors)
}

fn read(seg: &SegmentReader, i: usize, cache: Option<&BlockCache>) -> Result<Arc<Vec<LogRecord>>> {
    match cache {
        Some(c) => cached_block(c, seg, i),
        None => seg.read_block(i).map(Arc::new),
    }
}

/// Adds a memtable as one unit (see [`build_from_segments`]), keeping only the logs with
/// sequence numbers up to `through`.
fn add_memtable(r: &mut ProjectRollup, m: &Memtable, through: u64) {
    let born = m.min_seq().unwrap_or(0);
    for row in m.iter().filter(|row| row.seq <= through) {
        r.add(row, born, false);
    }
    r.trim();
}

/// What the engine lends [`retire`]: the project's remaining sealed data (stable under the
/// maintenance lock) and a way to read its active memtable under the state lock.
pub struct Stored<'a, F: FnOnce(&mut dyn FnMut(&Memtable))> {
    pub segments: &'a [Arc<SegmentReader>],
    pub frozen: &'a [Arc<Memtable>],
    pub cache: &'a BlockCache,
    /// Calls its argument with the active memtable while holding the project's state lock.
    pub active: F,
}

/// Counts out the logs of segments retention dropped, then recounts the hours whose
/// earliest/latest logs or samples went with them. If a dropped segment cannot be read,
/// the project's rollups are rebuilt from what remains instead. Returns what went wrong,
/// if anything (the rollups are then as exact as the readable logs allow).
pub fn retire<F: FnOnce(&mut dyn FnMut(&Memtable))>(
    cfg: &RollupConfig,
    rollup: &Mutex<ProjectRollup>,
    dropped: &[Arc<SegmentReader>],
    stored: Stored<'_, F>,
) -> Vec<String> {
    let mut dirty = BTreeSet::new();
    for seg in dropped {
        for i in 0..seg.blocks.len() {
            match seg.read_block(i) {
                Ok(rows) => {
                    let mut g = rollup.lock();
                    rows.iter().for_each(|row| g.remove(row, &mut dirty));
                }
                Err(e) => {
                    // The logs of this block cannot be counted out: start over from what
                    // is stored. (The blocks already counted out are in no segment now.)
                    let mut errors = rebuild(cfg, rollup, stored);
                    errors.insert(0, e.to_string());
                    return errors;
                }
            }
        }
    }
    if dirty.is_empty() {
        return Vec::new();
    }
    recount(rollup, &dirty, stored)
}

/// Counts out logs a deletion removed (call after their segment was swapped for its
/// rewrite); adds to `dirty` the hours whose earliest/latest logs or samples went with
/// them, to recount once the deletion is over ([`recount_begin`], [`recount_finish`]).
pub fn count_out(rollup: &Mutex<ProjectRollup>, rows: &[LogRecord], dirty: &mut BTreeSet<i64>) {
    let mut g = rollup.lock();
    rows.iter().for_each(|row| g.remove(row, dirty));
}

/// The group cells of a deletion's rewritten segments, counted while the deletion has their
/// logs in hand, so that the recount after it need not read those segments again.
///
/// Counted under the births of [`Precounted::new`], taken when every log up to `through`
/// was counted in: a group born since (the rollup thread opens groups at the sequence
/// number of their first log) admits no precounted log, one whose birth is unchanged admits
/// the same logs. So a recount may use these cells for the groups whose births are the same
/// as then, provided no group was born since at or below `through` (a rebuild after an
/// unreadable block); otherwise it reads the segments.
pub struct Precounted {
    births: Births,
    through: u64,
    /// Per segment id: error cells, pattern cells.
    segments: Mutex<HashMap<u64, (CellMap, CellMap)>>,
    /// Time spent counting, in nanoseconds summed over the threads that counted.
    spent_ns: std::sync::atomic::AtomicU64,
}

impl Precounted {
    pub fn new(births: Births, through: u64) -> Precounted {
        Precounted {
            births,
            through,
            segments: Mutex::new(HashMap::new()),
            spent_ns: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Time spent counting segments so far, summed over threads.
    pub fn spent(&self) -> std::time::Duration {
        let ns = self.spent_ns.load(std::sync::atomic::Ordering::Relaxed);
        std::time::Duration::from_nanos(ns)
    }

    /// Counts segment `id`, whose rows are `rows` (several threads may count at once). A
    /// segment holding a log past `through` is not counted (the recount reads it).
    pub fn add_segment<R: std::borrow::Borrow<LogRecord>>(&self, id: u64, rows: &[R]) {
        if rows.iter().any(|r| r.borrow().seq > self.through) {
            return;
        }
        let t = std::time::Instant::now();
        let mut scratch = ProjectRollup::new(&RollupConfig::default());
        let (mut e, mut p) = (CellMap::default(), CellMap::default());
        for r in rows {
            scratch.recount_into(r.borrow(), Some(&self.births), &mut e, &mut p);
        }
        self.segments.lock().insert(id, (e, p));
        let ns = t.elapsed().as_nanos() as u64;
        (self.spent_ns).fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether cells counted under these births hold for a recount under `now`.
    fn holds_for(&self, now: &Births) -> bool {
        now.iter()
            .all(|(kind, k, b)| self.births.get(kind, k) == Some(b) || b > self.through)
    }

    /// Adds segment `id`'s cells in `hours` of the groups born as they were then; `false`
    /// if the segment was not counted.
    fn merge_into(
        &self,
        id: u64,
        hours: &BTreeSet<i64>,
        now: &Births,
        e_cells: &mut CellMap,
        p_cells: &mut CellMap,
    ) -> bool {
        let segments = self.segments.lock();
        let Some((e, p)) = segments.get(&id) else {
            return false;
        };
        for (kind, from, into) in [(true, e, &mut *e_cells), (false, p, &mut *p_cells)] {
            for (key, cell) in from.iter() {
                let same_birth = self.births.get(kind, key) == now.get(kind, key);
                if same_birth && hours.contains(&cell.hour) {
                    into.cell(key, cell.hour).merge(cell);
                }
            }
        }
        true
    }
}

/// Rows of sealed data (segments, frozen memtables) in one of `hours` with a sequence
/// number above `after` (blocks wholly at or below it are not read).
fn sealed_rows_after(
    segments: &[Arc<SegmentReader>],
    frozen: &[Arc<Memtable>],
    cache: &BlockCache,
    hours: &BTreeSet<i64>,
    after: u64,
    f: &mut dyn FnMut(&LogRecord),
    errors: &mut Vec<String>,
) {
    let in_hours = |lo: i64, hi: i64| {
        hours
            .iter()
            .any(|&h| h * HOUR_US <= hi && lo < (h + 1) * HOUR_US)
    };
    let wanted =
        |r: &LogRecord| r.seq > after && hours.contains(&super::bucket::hour_of(r.log.timestamp));
    for seg in segments {
        if !in_hours(seg.min_ts(), seg.max_ts()) {
            continue;
        }
        for (i, b) in seg.blocks.iter().enumerate() {
            if !in_hours(b.min_ts, b.max_ts) || b.max_seq <= after {
                continue;
            }
            match cached_block(cache, seg, i) {
                Ok(rows) => rows.iter().filter(|r| wanted(r)).for_each(&mut *f),
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    for m in frozen {
        for &h in hours {
            memtable_hour(m, h)
                .filter(|r| r.seq > after)
                .for_each(&mut *f);
        }
    }
}

/// The first half of a recount that holds no lock while it reads: the cells of `hours`
/// counted from a snapshot of the sealed data. [`recount_finish`] adds what came after it.
pub struct PartialRecount {
    births: Births,
    e_cells: CellMap,
    p_cells: CellMap,
    /// Every row at or below this sequence number was in the snapshot.
    after: u64,
    errors: Vec<String>,
    /// Segments of the snapshot read, and taken from a [`Precounted`] instead.
    pub read: usize,
    pub reused: usize,
    /// A [`Precounted`] was given and held for the births now.
    pub precount_held: bool,
}

/// Counts the cells of `hours` from a snapshot of a project's sealed data (segments and
/// frozen memtables, taken together under the state lock). Needs no lock: the snapshot's
/// files and memtables do not change while it is held.
pub fn recount_begin(
    rollup: &Mutex<ProjectRollup>,
    hours: &BTreeSet<i64>,
    segments: &[Arc<SegmentReader>],
    frozen: &[Arc<Memtable>],
    cache: &BlockCache,
    pre: Option<&Precounted>,
) -> PartialRecount {
    let births = rollup.lock().births();
    let pre = pre.filter(|p| p.holds_for(&births));
    let mut errors = Vec::new();
    let (mut e_cells, mut p_cells) = (CellMap::default(), CellMap::default());
    let mut after = 0;
    let mut to_read = Vec::with_capacity(segments.len());
    for s in segments {
        let counted =
            pre.is_some_and(|p| p.merge_into(s.id, hours, &births, &mut e_cells, &mut p_cells));
        if !counted {
            to_read.push(s.clone());
        }
    }
    let mut scratch = ProjectRollup::new(&RollupConfig::default());
    sealed_rows_after(
        &to_read,
        frozen,
        cache,
        hours,
        0,
        &mut |r| scratch.recount_into(r, Some(&births), &mut e_cells, &mut p_cells),
        &mut errors,
    );
    for s in segments {
        after = after.max(s.blocks.iter().map(|b| b.max_seq).max().unwrap_or(0));
    }
    for m in frozen {
        after = after.max(m.max_seq());
    }
    PartialRecount {
        births,
        e_cells,
        p_cells,
        after,
        errors,
        read: to_read.len(),
        reused: segments.len() - to_read.len(),
        precount_held: pre.is_some(),
    }
}

/// The second half, under the engine's maintenance lock: counts the sealed rows that came
/// after the snapshot (new segments and frozen memtables; only their blocks past it are
/// read) and the active memtable, then replaces the cells of `hours`. The snapshot's
/// segments must all still be there (no retention ran meanwhile).
pub fn recount_finish<F: FnOnce(&mut dyn FnMut(&Memtable))>(
    rollup: &Mutex<ProjectRollup>,
    hours: &BTreeSet<i64>,
    partial: PartialRecount,
    stored: Stored<'_, F>,
) -> Vec<String> {
    let PartialRecount {
        births,
        mut e_cells,
        mut p_cells,
        after,
        mut errors,
        ..
    } = partial;
    {
        let mut scratch = ProjectRollup::new(&RollupConfig::default());
        sealed_rows_after(
            stored.segments,
            stored.frozen,
            stored.cache,
            hours,
            after,
            &mut |r| scratch.recount_into(r, Some(&births), &mut e_cells, &mut p_cells),
            &mut errors,
        );
    }
    let Stored { active, .. } = stored;
    active(&mut |m: &Memtable| {
        let mut g = rollup.lock();
        let through = g.applied_seq;
        let (mut ea, mut pa) = (CellMap::default(), CellMap::default());
        for &h in hours {
            for r in memtable_hour(m, h).filter(|r| r.seq <= through && r.seq > after) {
                g.recount_into(r, None, &mut ea, &mut pa);
            }
        }
        g.replace_hours(
            hours,
            &births,
            (std::mem::take(&mut e_cells), std::mem::take(&mut p_cells)),
            (ea, pa),
        );
    });
    errors
}

fn memtable_hour(m: &Memtable, h: i64) -> impl Iterator<Item = &LogRecord> {
    m.range(
        Bound::Included((h * HOUR_US, 0)),
        Bound::Excluded(((h + 1) * HOUR_US, 0)),
        false,
    )
}

/// Recounts the group cells of `hours` from the stored logs: both halves of
/// [`recount_begin`]/[`recount_finish`] at once, over the same data (under the maintenance
/// lock, nothing is sealed in between, so the second half only reads the active memtable).
fn recount<F: FnOnce(&mut dyn FnMut(&Memtable))>(
    rollup: &Mutex<ProjectRollup>,
    hours: &BTreeSet<i64>,
    stored: Stored<'_, F>,
) -> Vec<String> {
    let partial = recount_begin(
        rollup,
        hours,
        stored.segments,
        stored.frozen,
        stored.cache,
        None,
    );
    recount_finish(rollup, hours, partial, stored)
}

/// Replaces a project's rollups with a fresh count of everything it stores.
fn rebuild<F: FnOnce(&mut dyn FnMut(&Memtable))>(
    cfg: &RollupConfig,
    rollup: &Mutex<ProjectRollup>,
    stored: Stored<'_, F>,
) -> Vec<String> {
    let (mut fresh, errors) = build_from_segments(cfg, stored.segments, Some(stored.cache));
    let through = rollup.lock().applied_seq;
    for m in stored.frozen {
        add_memtable(&mut fresh, m, through);
    }
    let Stored { active, .. } = stored;
    active(&mut |m: &Memtable| {
        let mut g = rollup.lock();
        add_memtable(&mut fresh, m, g.applied_seq);
        fresh.applied_seq = g.applied_seq;
        *g = std::mem::replace(&mut fresh, ProjectRollup::new(cfg));
    });
    errors
}

/// Rebuilds the rollups of many projects from their segments, on up to `threads` threads.
pub fn build_many(
    cfg: &RollupConfig,
    projects: Vec<(u64, Vec<Arc<SegmentReader>>)>,
    threads: usize,
) -> (HashMap<u64, ProjectRollup>, Vec<String>) {
    let queue = Mutex::new(projects);
    let out = Mutex::new((HashMap::new(), Vec::new()));
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let Some((p, segs)) = queue.lock().pop() else {
                    return;
                };
                let (r, errs) = build_from_segments(cfg, &segs, None);
                let mut o = out.lock();
                o.0.insert(p, r);
                o.1.extend(errs);
            });
        }
    });
    out.into_inner()
}
