//! Opening a data directory: catalog, segments, search index, WAL replay, threads.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

use super::*;

impl Engine {
    /// Opens (or creates) a data directory: loads the catalog, opens segments, replays the
    /// WAL after the last seal, and starts the WAL writer and the flusher.
    pub fn open(dir: &Path, config: EngineConfig) -> Result<(Engine, OpenReport)> {
        let fs = config.fs.clone();
        if config.search && !fs.is_real() {
            return Err(Invalid::SearchNeedsRealFs.into());
        }
        crate::fs::create_dir_in(&*fs, dir)?;
        let wal_dir = dir.join("wal");
        let seg_dir = dir.join("segments");
        crate::fs::create_dir_in(&*fs, &wal_dir)?;
        crate::fs::create_dir_in(&*fs, &seg_dir)?;
        let catalog = Catalog::open(&*fs, &dir.join("catalog.redb"))?;
        let state = catalog.load()?;
        let (flush_tx, flush_rx) = crossbeam_channel::unbounded();
        let rollup_config = config.rollups.clone();
        let opened = if config.search {
            Some(SearchIndex::open(
                &dir.join("index"),
                config.search_refresh,
                config.search_writer_bytes,
            )?)
        } else {
            None
        };
        let (search_index, mut indexer, watermark, rebuild) = match opened {
            Some(o) => (Some(o.index), Some(o.indexer), o.watermark, o.rebuilt),
            None => (None, None, 0, None),
        };
        let inner = Arc::new(Inner {
            dir: dir.to_owned(),
            cache: BlockCache::new(config.block_cache_bytes),
            config,
            catalog,
            projects: RwLock::new(HashMap::new()),
            deleted: RwLock::new(state.deleted.clone()),
            next_segment_id: AtomicU64::new(state.next_segment_id),
            memtable_bytes: AtomicUsize::new(0),
            tails: Default::default(),
            wal: OnceLock::new(),
            flush_tx,
            maintenance: Mutex::new(()),
            flush_error: Mutex::new(None),
            damaged: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            rollups: Rollups::new(rollup_config),
            search: search_index,
            usage: crate::usage::UsageBook::new(state.usage.iter().copied()),
            upload_waiting: AtomicU64::new(0),
            upload_budget: AtomicU64::new(0),
        });
        let mut report = OpenReport::default();
        let mut known = HashSet::new();
        for m in &state.segments {
            let path = inner.segment_path(m.project, m.id);
            known.insert(path.clone());
            match inner.open_segment(m.project, m.id) {
                Ok(r) => inner.project(m.project).write().segments.push(r),
                Err(e) => {
                    tracing::error!(error = %e, "segment set aside: its logs are unreadable");
                    report.damaged_segments.push(e.to_string());
                }
            }
            report.segments += 1;
        }
        *inner.damaged.lock() = report.damaged_segments.clone();
        report.orphans_removed = remove_orphans(&*fs, &seg_dir, &known)?;
        // Count the sealed logs into the rollups; the replay below counts the rest.
        inner.rollups.rebuild(segments_by_project(&inner));
        if let (Some(ix), Some(why)) = (indexer.as_mut(), &rebuild) {
            rebuild_index(&inner, ix, why)?;
        } else if let Some(ix) = indexer.as_mut().filter(|_| inner.config.index_restored) {
            align_restored_index(&inner, ix, &state.sealed, watermark)?;
        }
        let mut sealer = ReplaySealer::start(inner.clone())?;
        let replayed = wal::replay(&*fs, &wal_dir, inner.config.recovery, |batch| {
            let sealed = state.sealed.get(&batch.project).copied().unwrap_or(0);
            if state.deleted.contains(&batch.project) {
                return Ok(false);
            }
            // After a rebuild the index holds exactly the sealed rows; otherwise it holds
            // every row up to its last commit's watermark.
            let indexed = if rebuild.is_some() { sealed } else { watermark };
            let p = batch.project;
            if let Some(ix) = indexer.as_mut().filter(|_| batch.last_seq() > indexed) {
                let rows: Vec<Arc<LogRecord>> =
                    batch.records.iter().cloned().map(Arc::new).collect();
                ix.add(p, &rows)?;
            }
            if batch.last_seq() <= sealed {
                return Ok(false);
            }
            inner.apply_rows(p, batch.records, batch.usage_bytes);
            if inner.needs_seal(p) {
                inner.freeze(p);
                sealer.seal(p)?;
            }
            Ok(true)
        })?;
        sealer.finish()?;
        if let (Some(s), Some(mut ix)) = (inner.search.as_ref(), indexer.take()) {
            ix.commit()?;
            s.start(ix)?;
        }
        for (path, offset, bytes, what) in &replayed.report.cut {
            tracing::warn!(file = %path.display(), offset, bytes, what, "cut damaged WAL tail");
        }
        report.recovery = replayed.report;
        let wal = Wal::start(
            wal::writer::Start {
                fs: fs.clone(),
                dir: wal_dir,
                policy: inner.config.fsync,
                file_limit: inner.config.wal_file_bytes,
                // Above the index's watermark too: an index restored from another node's copy
                // may cover rows that node never sealed, and a row at or below the watermark
                // is taken as indexed by the next replay.
                next_seq: replayed.next_seq.max(state.max_seq + 1).max(watermark + 1),
                next_file_no: replayed.next_file_no,
                closed: replayed.files,
            },
            Arc::new(WalApplier(inner.clone())),
        )?;
        let _ = inner.wal.set(wal);
        let fi = inner.clone();
        let flusher = std::thread::Builder::new()
            .name("ledger-flush".into())
            .spawn(move || {
                crate::priority::lower_priority();
                fi.flush_loop(flush_rx)
            })
            .map_err(|e| EngineError::io("flusher thread", e))?;
        inner.wal().checkpoint();
        Ok((
            Engine {
                guard: Arc::new(Guard {
                    inner: inner.clone(),
                    flusher: Mutex::new(Some(flusher)),
                }),
                inner,
            },
            report,
        ))
    }
}

/// Seals during WAL replay on a second thread: the replay thread freezes a project's memtable
/// when it is full and goes on decoding and applying while this thread writes the segment,
/// packing its blocks on [`ReplaySealer::PACKERS`] threads. At most [`ReplaySealer::QUEUE`]
/// seals wait, so replay holds a bounded number of frozen memtables (each at most a seal's
/// worth), as the single-threaded replay did. The sealed memtables go back to the replay
/// thread to be freed: freeing a seal's worth of rows is a tenth of the sealer's work, and
/// the replay thread has time to spare while the sealer has none.
struct ReplaySealer {
    tx: Option<crossbeam_channel::Sender<ProjectId>>,
    sealed: crossbeam_channel::Receiver<Vec<Arc<crate::memtable::Memtable>>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl ReplaySealer {
    const QUEUE: usize = 2;
    const PACKERS: usize = 2;

    fn start(inner: Arc<Inner>) -> Result<ReplaySealer> {
        let (tx, rx) = crossbeam_channel::bounded::<ProjectId>(Self::QUEUE);
        let (sealed_tx, sealed) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("ledger-replay-seal".into())
            .spawn(move || {
                for p in rx {
                    let _m = inner.maintenance.lock();
                    let written = inner.write_frozen(p, Self::PACKERS)?;
                    // If replay already ended, they are freed here.
                    let _ = sealed_tx.send(written);
                }
                Ok(())
            })
            .map_err(|e| EngineError::io("replay sealer thread", e))?;
        Ok(ReplaySealer {
            tx: Some(tx),
            sealed,
            thread: Some(thread),
        })
    }

    /// Hands the project's frozen memtables to the sealer, waiting while the queue is full,
    /// and frees those sealed since the last call. A seal that failed ends the replay with
    /// its error.
    fn seal(&mut self, p: ProjectId) -> Result<()> {
        self.sealed.try_iter().for_each(drop);
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(p).is_ok());
        if sent {
            return Ok(());
        }
        self.finish()?;
        Err(EngineError::Internal("the replay sealer stopped".into()))
    }

    /// Waits for every queued seal; the first error, if one failed.
    fn finish(&mut self) -> Result<()> {
        drop(self.tx.take());
        let joined = self.thread.take().map(|t| t.join());
        self.sealed.try_iter().for_each(drop);
        match joined {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(EngineError::Internal("the replay sealer panicked".into())),
        }
    }
}

impl Drop for ReplaySealer {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

fn remove_orphans(
    fs: &dyn crate::fs::FileSystem,
    seg_dir: &Path,
    known: &HashSet<PathBuf>,
) -> Result<usize> {
    let mut removed = 0;
    let dirs = fs
        .list_dir(seg_dir)
        .map_err(|e| EngineError::io(seg_dir, e))?;
    for (pd, is_dir) in dirs {
        if !is_dir {
            continue;
        }
        let files = fs.list_dir(&pd).map_err(|e| EngineError::io(&pd, e))?;
        let mut any = false;
        for (f, _) in files {
            // A segment written but not yet in the catalog when the process died: its rows
            // are still in the WAL, so the file is redundant.
            if !known.contains(&f) {
                tracing::info!(file = %f.display(), "removing orphan segment file");
                fs.remove_file(&f).map_err(|e| EngineError::io(&f, e))?;
                removed += 1;
                any = true;
            }
        }
        if any {
            crate::fs::sync_dir_in(fs, &pd)?;
        }
    }
    Ok(removed)
}

/// Re-creates the search index from every sealed segment (the WAL replay adds the rest).
/// Makes a restored index (copied on another node, possibly at another moment than the
/// catalog) hold exactly the sealed rows: documents of rows that were never sealed (the tail
/// the other node lost) go, sealed rows its last commit did not cover are added.
/// Every project's sealed segments, as they stand now.
fn segments_by_project(inner: &Inner) -> Vec<(ProjectId, Vec<Arc<SegmentReader>>)> {
    inner
        .projects
        .read()
        .iter()
        .map(|(p, st)| (*p, st.read().segments.clone()))
        .collect()
}

fn align_restored_index(
    inner: &Inner,
    ix: &mut search::index::Indexer,
    sealed: &HashMap<ProjectId, u64>,
    watermark: u64,
) -> Result<()> {
    let projects = segments_by_project(inner);
    let mut added = 0u64;
    for (p, segs) in projects {
        let through = sealed.get(&p).copied().unwrap_or(0);
        ix.delete_seqs(p, through.saturating_add(1), u64::MAX)?;
        for seg in segs.iter().filter(|s| s.meta().max_seq > watermark) {
            for i in 0..seg.blocks.len() {
                let rows: Vec<LogRecord> = seg
                    .read_block(i)?
                    .into_iter()
                    .filter(|r| r.seq > watermark)
                    .collect();
                added += rows.len() as u64;
                ix.add_owned(p, &rows)?;
            }
        }
    }
    tracing::info!(
        watermark,
        added,
        "restored search index aligned with the catalog"
    );
    Ok(())
}

fn rebuild_index(inner: &Inner, ix: &mut search::index::Indexer, why: &str) -> Result<()> {
    let projects = segments_by_project(inner);
    let segments: usize = projects.iter().map(|(_, s)| s.len()).sum();
    tracing::warn!(
        reason = why,
        segments,
        "search index {why}: rebuilding it from segments"
    );
    for (p, segs) in projects {
        for seg in segs {
            for i in 0..seg.blocks.len() {
                ix.add_owned(p, &seg.read_block(i)?)?;
            }
        }
    }
    Ok(())
}
