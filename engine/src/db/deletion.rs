//! Deleting logs by query: every segment holding a matched log is rewritten without it,
//! the index drops their documents, and the WAL files that held them are deleted.
//!
//! A deletion is idempotent and resumable: run it again after a crash (same id, same
//! matcher, same `through`) and it finishes, and the count it reports stays exact, because
//! each segment is swapped for its rewrite in one catalog transaction that also adds to the
//! deletion's count (`erased`) and takes the logs out of the daily usage. See FORMAT.md,
//! "Deleting logs".

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::rollup::stored::Precounted;
use crate::usage::DayMap;

/// What a deletion removes: logs with a sequence number up to `through` (the logs that
/// existed when it was created) that `matches` accepts.
pub struct Deletion<'a> {
    /// The caller's id for it; the catalog counts its removed logs under this id.
    pub id: u64,
    pub through: u64,
    /// Only segments with logs in `[start, end]` are read (`None`: unbounded).
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub matches: &'a (dyn Fn(&LogRecord) -> bool + Sync),
}

impl Engine {
    /// The sequence number the next appended log will get: a deletion created now removes
    /// logs below it.
    pub fn next_seq(&self) -> u64 {
        self.inner.wal().next_seq()
    }

    /// Logs deletion `id` has removed so far.
    pub fn erased(&self, id: u64) -> Result<u64> {
        self.inner.catalog.erased(id)
    }

    /// Runs a deletion to its end (blocking; minutes for millions of logs) and returns how
    /// many logs it removed in all, counting earlier runs of the same id. Ingest and reads
    /// go on meanwhile: segments are read and rewritten without a lock, each swapped in
    /// under the maintenance lock on its own, and the work runs on a thread of its own at
    /// background priority, like sealing.
    pub fn delete_logs(&self, project: ProjectId, d: &Deletion<'_>) -> Result<u64> {
        let span = tracing::trace_span!("delete logs", project, deletion = d.id);
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("ledger-deletion".into())
                .spawn_scoped(s, || {
                    let _span = span.entered();
                    crate::priority::lower_priority();
                    crate::priority::lower_io_priority();
                    self.run_deletion(project, d)
                })
                .map_err(|e| EngineError::Internal(format!("starting a deletion thread: {e}")))?
                .join()
                .map_err(|_| EngineError::Internal("the deletion thread panicked".into()))?
        })
    }

    fn run_deletion(&self, project: ProjectId, d: &Deletion<'_>) -> Result<u64> {
        let inner = &self.inner;
        if inner.deleted.read().contains(&project) {
            return inner.catalog.erased(d.id);
        }
        // How long each step took, logged at the end (where a slow deletion spends its time).
        let mut clock = std::time::Instant::now();
        let mut steps: Vec<(&str, u128)> = Vec::new();
        let mut lap = |name, steps: &mut Vec<(&str, u128)>| {
            steps.push((name, clock.elapsed().as_millis()));
            clock = std::time::Instant::now();
        };
        // 1. Every log up to `through` is in a segment, and in the committed index (so the
        //    index deletes below are final: no queued document can bring one back).
        inner.seal_project(project)?;
        if let Some(s) = &inner.search {
            s.commit()?;
        }
        lap("seal_ms", &mut steps);
        // 2.–4. One pass over the project's segments: each segment holding a log to delete
        //    is read once and its copy without those logs written beside it, outside every
        //    lock. A group of such copies is then taken out of the index (first: a crash
        //    before the swaps leaves logs that search cannot find but that the resumed
        //    deletion removes) and swapped in, one catalog transaction and a moment of the
        //    maintenance lock each. The rollups count the logs out as each segment goes and
        //    recount the hours whose first/last logs or samples went once at the end.
        let segments = match inner.get_project(project) {
            Some(st) => st.read().segments.clone(),
            None => Vec::new(),
        };
        // The rollup cells of the rewritten segments are counted as they are written, so
        // the recount at the end reads only what the pass did not have in hand.
        let pre = inner.rollups.precount(project);
        let mut dirty = BTreeSet::new();
        let (mut rewritten, mut swap) = (0usize, Duration::ZERO);
        let read_write_ns = AtomicU64::new(0);
        // Segments are read and rewritten by `PREPARERS` threads at background priority;
        // this thread takes their rewrites as they come and swaps them in by groups.
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let (tx, rx) = crossbeam_channel::bounded::<Result<Rewrite>>(PREPARERS);
        let swapped = std::thread::scope(|s| -> Result<()> {
            for n in 0..PREPARERS {
                let (tx, segments, next, stop) = (tx.clone(), &segments, &next, &stop);
                let (pre, read_write_ns) = (pre.as_ref(), &read_write_ns);
                std::thread::Builder::new()
                    .name(format!("ledger-deletion-{n}"))
                    .spawn_scoped(s, move || {
                        crate::priority::lower_priority();
                        crate::priority::lower_io_priority();
                        while !stop.load(Ordering::Acquire) {
                            let Some(seg) = segments.get(next.fetch_add(1, Ordering::AcqRel))
                            else {
                                return;
                            };
                            let t = Instant::now();
                            let prepared = self.prepare_rewrite(project, seg, d, pre);
                            let ns = t.elapsed().as_nanos() as u64;
                            read_write_ns.fetch_add(ns, Ordering::Relaxed);
                            let sent = match prepared {
                                Ok(None) => Ok(()),
                                Ok(Some(rw)) => tx.send(Ok(rw)).map_err(|_| ()),
                                Err(e) => tx.send(Err(e)).map_err(|_| ()),
                            };
                            if sent.is_err() {
                                return;
                            }
                        }
                    })
                    .map_err(|e| {
                        EngineError::Internal(format!("starting a deletion thread: {e}"))
                    })?;
            }
            drop(tx);
            let mut group = Vec::new();
            let mut group_rows = 0usize;
            let mut failed = None;
            for prepared in rx.iter() {
                let rw = match prepared {
                    Ok(rw) if failed.is_none() => rw,
                    Ok(rw) => {
                        self.discard(vec![rw]);
                        continue;
                    }
                    Err(e) => {
                        stop.store(true, Ordering::Release);
                        self.discard(std::mem::take(&mut group));
                        failed.get_or_insert(e);
                        continue;
                    }
                };
                group_rows += rw.removed.len();
                group.push(rw);
                if group.len() >= GROUP_SEGMENTS || group_rows >= GROUP_ROWS {
                    let t = Instant::now();
                    rewritten += group.len();
                    let batch = std::mem::take(&mut group);
                    let res = self.swap_group(project, batch, d.id, &mut dirty);
                    swap += t.elapsed();
                    group_rows = 0;
                    if let Err(e) = res {
                        stop.store(true, Ordering::Release);
                        failed.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
            let t = Instant::now();
            rewritten += group.len();
            self.swap_group(project, group, d.id, &mut dirty)?;
            swap += t.elapsed();
            Ok(())
        });
        swapped?;
        let read_write = Duration::from_nanos(read_write_ns.load(Ordering::Relaxed));
        lap("rewrite_ms", &mut steps);
        // 5. Out of every file: index segments merged without the deleted documents (one at
        //    a time on tantivy's merge threads, while this thread recounts the rollups), the WAL
        //    files that held the logs closed, everything sealed, and those files deleted.
        let purge = match &inner.search {
            Some(s) => Some((s, s.start_purge()?)),
            None => None,
        };
        let merged = std::thread::scope(|sc| {
            let merging = purge.map(|(s, p)| {
                sc.spawn(move || {
                    crate::priority::lower_priority();
                    finish_purge(s, p)
                })
            });
            self.recount(project, &dirty, pre.as_ref());
            lap("recount_ms", &mut steps);
            match merging.map(|m| m.join()) {
                Some(Ok(r)) => r,
                Some(Err(_)) => Err(EngineError::Internal("an index purge panicked".into())),
                None => Ok(()),
            }
        });
        merged?;
        lap("index_merge_ms", &mut steps);
        inner.wal().rotate()?;
        inner.seal_all()?;
        if let Some(s) = &inner.search {
            s.commit()?;
        }
        inner.wal().checkpoint();
        inner.wal().sync()?;
        lap("wal_ms", &mut steps);
        let removed = inner.catalog.erased(d.id)?;
        let get = |n: &str| steps.iter().find(|(k, _)| *k == n).map_or(0, |(_, v)| *v);
        tracing::info!(
            project,
            deletion = d.id,
            removed,
            segments_rewritten = rewritten,
            seal_ms = get("seal_ms"),
            rewrite_ms = get("rewrite_ms"),
            read_write_ms = read_write.as_millis(),
            precount_ms = pre.as_ref().map_or(0, |p| p.spent().as_millis()),
            index_delete_and_swap_ms = swap.as_millis(),
            recount_ms = get("recount_ms"),
            index_merge_ms = get("index_merge_ms"),
            wal_ms = get("wal_ms"),
            "deletion finished"
        );
        Ok(removed)
    }

    /// Reads `seg` and, if it holds logs the deletion removes, writes its copy without them
    /// under a new segment id (not yet in the catalog: a crash leaves an orphan file that
    /// the next open removes). Blocks the deletion cannot touch are read only if the
    /// segment is rewritten, and each block is read once.
    fn prepare_rewrite(
        &self,
        project: ProjectId,
        seg: &Arc<SegmentReader>,
        d: &Deletion<'_>,
        pre: Option<&Precounted>,
    ) -> Result<Option<Rewrite>> {
        let inner = &self.inner;
        let (lo, hi) = (d.start.unwrap_or(i64::MIN), d.end.unwrap_or(i64::MAX));
        if seg.max_ts() < lo || seg.min_ts() > hi {
            return Ok(None);
        }
        let mut blocks: Vec<Option<Vec<LogRecord>>> = Vec::with_capacity(seg.blocks.len());
        let mut seqs = HashSet::new();
        for (i, b) in seg.blocks.iter().enumerate() {
            if b.min_seq > d.through || b.max_ts < lo || b.min_ts > hi {
                blocks.push(None);
                continue;
            }
            let rows = seg.read_block(i)?;
            for r in &rows {
                if r.seq <= d.through && (d.matches)(r) {
                    seqs.insert(r.seq);
                }
            }
            blocks.push(Some(rows));
        }
        if seqs.is_empty() {
            return Ok(None);
        }
        // Each block's matched logs are taken out where they lie and the copy is written from
        // references to the rest: no copy of the segment's rows is made (a `Vec` of 60,000
        // owned rows, freshly allocated per segment, was a fifth of the pass in page faults
        // and moves).
        let mut removed = Vec::with_capacity(seqs.len());
        let mut blocks_kept = Vec::with_capacity(blocks.len());
        for (i, rows) in blocks.into_iter().enumerate() {
            let mut rows = match rows {
                Some(rows) => rows,
                None => seg.read_block(i)?,
            };
            removed.extend(rows.extract_if(.., |r| seqs.contains(&r.seq)));
            blocks_kept.push(rows);
        }
        let kept: Vec<&LogRecord> = blocks_kept.iter().flatten().collect();
        let new = if kept.is_empty() {
            None
        } else {
            let id = inner.next_segment_id.fetch_add(1, Ordering::AcqRel);
            let path = inner.segment_path(project, id);
            let written = segment::write(inner.fs(), &path, project, id, &kept, &inner.packing(1))
                .and_then(|meta| Ok((meta, SegmentReader::open(inner.fs(), &path)?)));
            match written {
                Ok(new) => {
                    if let Some(pre) = pre {
                        pre.add_segment(id, &kept);
                    }
                    Some(new)
                }
                Err(e) => {
                    let _ = inner.fs().remove_file(&path);
                    return Err(e);
                }
            }
        };
        Ok(Some(Rewrite {
            old: seg.clone(),
            new,
            removed,
        }))
    }

    /// Takes a group of prepared rewrites' logs out of the index, then swaps each in.
    fn swap_group(
        &self,
        project: ProjectId,
        group: Vec<Rewrite>,
        deletion: u64,
        dirty: &mut BTreeSet<i64>,
    ) -> Result<()> {
        if group.is_empty() {
            return Ok(());
        }
        if let Some(s) = &self.inner.search {
            let seqs: HashSet<u64> = group
                .iter()
                .flat_map(|rw| rw.removed.iter().map(|r| r.seq))
                .collect();
            s.delete_seq_set(Arc::new(seqs));
            if let Err(e) = s.commit() {
                self.discard(group);
                return Err(e);
            }
        }
        let mut group = group.into_iter();
        while let Some(rw) = group.next() {
            if let Err(e) = self.swap_in(project, rw, deletion, dirty) {
                self.discard(group.collect());
                return Err(e);
            }
        }
        Ok(())
    }

    /// Removes the files of rewrites that will not be swapped in.
    fn discard(&self, rewrites: Vec<Rewrite>) {
        for rw in rewrites {
            if let Some((_, r)) = rw.new {
                let _ = self.inner.fs().remove_file(&r.path);
            }
        }
    }

    /// Swaps one segment for its rewrite: one catalog transaction (old out, new in, usage
    /// lowered, the deletion's count raised), under the maintenance lock.
    fn swap_in(
        &self,
        project: ProjectId,
        rw: Rewrite,
        deletion: u64,
        dirty: &mut BTreeSet<i64>,
    ) -> Result<()> {
        let inner = &self.inner;
        let _m = inner.maintenance.lock();
        let seg = &rw.old;
        let st = inner.get_project(project);
        let present = st
            .as_ref()
            .is_some_and(|st| st.read().segments.iter().any(|s| s.id == seg.id));
        let Some(st) = st.filter(|_| present) else {
            // Retention (or the project's deletion) took the segment meanwhile.
            self.discard(vec![rw]);
            return Ok(());
        };
        // What the removed logs counted for in the daily usage: logs exactly; bytes (the
        // size each log was sent as is not stored) in proportion to the day's figures.
        let mut usage_out = DayMap::new();
        for r in &rw.removed {
            usage_out
                .entry(usage::day_of(r.ingested_at))
                .or_default()
                .logs += 1;
        }
        for (day, u) in usage_out.iter_mut() {
            let now = inner.usage.day(project, *day);
            u.bytes = if now.logs == 0 {
                0
            } else {
                (u128::from(now.bytes) * u128::from(u.logs) / u128::from(now.logs)) as u64
            };
        }
        let removed_n = rw.removed.len() as u64;
        // On a failed commit both files stay: it may still be durable, and the next open
        // keeps whichever of the two the catalog lists and removes the other as an orphan.
        // A transaction the catalog refused to begin wrote nothing: its rewrite goes.
        if let Err(e) = inner.catalog.replace_segment(
            project,
            seg.id,
            rw.new.as_ref().map(|(m, _)| m),
            &usage_out,
            deletion,
            removed_n,
        ) {
            if e.catalog_refused() {
                self.discard(vec![rw]);
            }
            return Err(e);
        }
        {
            let mut g = st.write();
            g.segments.retain(|s| s.id != seg.id);
            if let Some((_, r)) = &rw.new {
                g.segments.push(r.clone());
            }
        }
        for (day, u) in &usage_out {
            inner.usage.subtract(project, *day, *u);
        }
        inner.rollups.count_out(project, &rw.removed, dirty);
        inner.cache.evict_segment(seg.id);
        if let Err(e) = inner.remove_segment_file(seg) {
            // Not in the catalog any more: the next open removes it as an orphan.
            tracing::warn!(file = %seg.path.display(), error = %e, "could not delete a rewritten segment");
        }
        crate::fs::sync_dir_in(
            inner.fs(),
            &inner.dir.join("segments").join(project_dir(project)),
        )?;
        Ok(())
    }
}

/// A segment's copy without a deletion's logs, written but not yet swapped in.
struct Rewrite {
    old: Arc<SegmentReader>,
    /// The copy (`None`: no log is left, the segment just goes).
    new: Option<(segment::SegmentMeta, Arc<SegmentReader>)>,
    removed: Vec<LogRecord>,
}

/// Threads that read and rewrite segments at once (the swaps are on the deletion's own).
/// One: with ingest going on, two left requests no CPU on a 2-core machine and each
/// segment took twice as long (BENCHMARKS.md, "Deleting 1 % of 10 M logs").
const PREPARERS: usize = 1;

/// Rewrites swapped in at once, after one index commit: at most this many segments…
const GROUP_SEGMENTS: usize = 32;
/// …or this many removed logs (held in memory until their group is swapped).
const GROUP_ROWS: usize = 50_000;

impl Engine {
    /// Recounts the rollup cells of `hours` (first/last seen, samples) after a deletion:
    /// the long read from a snapshot without locks, then under the maintenance lock only
    /// what was sealed or appended since. If retention dropped a segment meanwhile, the
    /// snapshot is stale and the recount is done again, all of it under the lock.
    fn recount(&self, project: ProjectId, hours: &BTreeSet<i64>, pre: Option<&Precounted>) {
        let inner = &self.inner;
        let Some(st) = inner.get_project(project) else {
            return;
        };
        let (segments, frozen) = {
            let g = st.read();
            (g.segments.clone(), g.frozen.clone())
        };
        let Some(partial) =
            inner
                .rollups
                .recount_begin(project, hours, &segments, &frozen, &inner.cache, pre)
        else {
            return;
        };
        tracing::info!(
            project,
            hours = hours.len(),
            segments_read = partial.read,
            segments_precounted = partial.reused,
            precount_given = pre.is_some(),
            precount_held = partial.precount_held,
            "deletion recount read its snapshot"
        );
        let _m = inner.maintenance.lock();
        let (now_segments, now_frozen) = {
            let g = st.read();
            (g.segments.clone(), g.frozen.clone())
        };
        let kept = segments
            .iter()
            .all(|s| now_segments.iter().any(|n| Arc::ptr_eq(n, s)));
        let partial = if kept {
            partial
        } else {
            tracing::info!(
                project,
                "deletion recount: the snapshot went stale, counting again under the lock"
            );
            match inner
                .rollups
                .recount_begin(project, hours, &[], &[], &inner.cache, None)
            {
                Some(p) => p,
                None => return,
            }
        };
        inner.rollups.recount_finish(
            project,
            hours,
            partial,
            &now_segments,
            &now_frozen,
            &inner.cache,
            |f| f(&st.read().active),
        );
    }
}

/// Waits for a purge's merges; a merge the index was already running on the same segment
/// is waited out and the purge tried again.
fn finish_purge(s: &SearchIndex, first: crate::search::index::Purge) -> Result<()> {
    let mut last = s.finish_purge(first);
    for attempt in 0..5 {
        if last.is_ok() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(200 << attempt));
        last = s.purge();
    }
    last
}
