//! The `Engine` handle: the one seam between Ledger's storage and everything above it.
//!
//! It owns the WAL writer, the per-project memtables and segments, the catalog, and a flusher
//! thread that seals memtables into segments and lets the WAL be truncated behind them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::{Mutex, RwLock};

use crate::catalog::Catalog;
use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::fingerprint;
use crate::fsutil;
use crate::memtable::Memtable;
use crate::model::{Field, LogId, LogRecord, NewLog, ProjectId};
use crate::query::{self, Page, ScanRequest};
use crate::rollup::{self, Bucket, Rollups};
use crate::search::{self, index::SearchIndex, SearchBudget, SearchPage};
use crate::segment::{self, cache::BlockCache, SegmentReader};
use crate::wal::{self, format, Applier, RecoveryReport, Wal, WalStats};

/// A project's data that is visible to reads.
#[derive(Default)]
struct ProjectState {
    active: Memtable,
    /// Memtables being sealed, oldest first; still readable until their segment is.
    frozen: Vec<Arc<Memtable>>,
    segments: Vec<Arc<SegmentReader>>,
    seal_requested: bool,
}

impl ProjectState {
    fn unsealed_rows(&self) -> usize {
        self.active.len() + self.frozen.iter().map(|m| m.len()).sum::<usize>()
    }
    fn min_unsealed_seq(&self) -> Option<u64> {
        self.frozen
            .iter()
            .filter_map(|m| m.min_seq())
            .chain(self.active.min_seq())
            .min()
    }
}

type Shared = Arc<RwLock<ProjectState>>;

struct Inner {
    dir: PathBuf,
    config: EngineConfig,
    catalog: Catalog,
    projects: RwLock<HashMap<ProjectId, Shared>>,
    deleted: RwLock<HashSet<ProjectId>>,
    cache: BlockCache,
    next_segment_id: AtomicU64,
    memtable_bytes: AtomicUsize,
    wal: OnceLock<Wal>,
    flush_tx: Sender<FlushMsg>,
    /// Held while segments are written or removed, so sealing, retention and deletion of one
    /// project never interleave.
    maintenance: Mutex<()>,
    flush_error: Mutex<Option<String>>,
    damaged: Mutex<Vec<String>>,
    closed: AtomicBool,
    /// Metrics figures, counted in as rows become readable (see `rollup`).
    rollups: Rollups,
    /// The full-text index, when enabled.
    search: Option<SearchIndex>,
}

enum FlushMsg {
    Seal(ProjectId),
    SealAll(Sender<Result<()>>),
    Stop,
}

/// What `open` found: WAL replay figures and damaged segments set aside.
#[derive(Debug, Default, Clone)]
pub struct OpenReport {
    pub recovery: RecoveryReport,
    pub segments: usize,
    /// Segments that could not be opened; their logs are unreadable until repaired.
    pub damaged_segments: Vec<String>,
    pub orphans_removed: usize,
}

/// What an append returns for each log, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub id: LogId,
    pub ingested_at: i64,
}

/// Per-append limits the caller sets (for example a project's configured queue depth).
#[derive(Debug, Clone, Copy, Default)]
pub struct AppendOptions {
    /// Refuse the batch with backpressure when the project's unsealed rows would pass this.
    pub max_queue_depth: Option<usize>,
}

/// Figures for `/metrics`, `/health/deep` and `ledgerctl`.
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    pub projects: usize,
    pub segments: usize,
    pub segment_bytes: u64,
    pub segment_raw_bytes: u64,
    pub segment_rows: u64,
    pub memtable_rows: usize,
    pub memtable_bytes: usize,
}

/// Health as `/health/deep` reports it: each `Err` says what is wrong.
#[derive(Debug, Clone)]
pub struct Health {
    pub wal: std::result::Result<(), String>,
    pub storage: std::result::Result<(), String>,
    pub flush: std::result::Result<(), String>,
}

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// The storage engine. Cheap to clone; all clones share one engine. When the last clone is
/// dropped without [`Engine::close`], the engine stops as by [`Engine::close_without_sealing`].
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
    guard: Arc<Guard>,
}

/// Stops the threads when the last handle goes (the threads hold `Inner` themselves).
struct Guard {
    inner: Arc<Inner>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

impl Guard {
    fn stop(&self, seal: bool) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let sealed = if seal { self.inner.seal_all() } else { Ok(()) };
        let _ = self.inner.flush_tx.send(FlushMsg::Stop);
        if let Some(t) = self.flusher.lock().take() {
            let _ = t.join();
        }
        if let Some(w) = self.inner.wal.get() {
            w.close();
        }
        if let Some(s) = &self.inner.search {
            s.close();
        }
        self.inner.catalog.close();
        sealed
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.stop(false);
    }
}

impl Engine {
    /// Opens (or creates) a data directory: loads the catalog, opens segments, replays the
    /// WAL after the last seal, and starts the WAL writer and the flusher.
    pub fn open(dir: &Path, config: EngineConfig) -> Result<(Engine, OpenReport)> {
        fsutil::create_private_dir(dir)?;
        let wal_dir = dir.join("wal");
        let seg_dir = dir.join("segments");
        fsutil::create_private_dir(&wal_dir)?;
        fsutil::create_private_dir(&seg_dir)?;
        let catalog = Catalog::open(&dir.join("catalog.redb"))?;
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
            wal: OnceLock::new(),
            flush_tx,
            maintenance: Mutex::new(()),
            flush_error: Mutex::new(None),
            damaged: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            rollups: Rollups::new(rollup_config),
            search: search_index,
        });
        let mut report = OpenReport::default();
        let mut known = HashSet::new();
        for m in &state.segments {
            let path = inner.segment_path(m.project, m.id);
            known.insert(path.clone());
            match SegmentReader::open(&path) {
                Ok(r) => inner.project(m.project).write().segments.push(r),
                Err(e) => {
                    tracing::error!(error = %e, "segment set aside: its logs are unreadable");
                    report.damaged_segments.push(e.to_string());
                }
            }
            report.segments += 1;
        }
        *inner.damaged.lock() = report.damaged_segments.clone();
        report.orphans_removed = remove_orphans(&seg_dir, &known)?;
        // Count the sealed logs into the rollups; the replay below counts the rest.
        let sealed: Vec<_> = (inner.projects.read().iter())
            .map(|(p, st)| (*p, st.read().segments.clone()))
            .collect();
        inner.rollups.rebuild(sealed);
        if let (Some(ix), Some(why)) = (indexer.as_mut(), &rebuild) {
            rebuild_index(&inner, ix, why)?;
        }
        let replayed = wal::replay(&wal_dir, inner.config.recovery, |batch| {
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
            inner.apply_rows(p, batch.records);
            if inner.needs_seal(p) {
                inner.seal_project(p)?;
            }
            Ok(true)
        })?;
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
                dir: wal_dir,
                policy: inner.config.fsync,
                file_limit: inner.config.wal_file_bytes,
                next_seq: replayed.next_seq.max(state.max_seq + 1),
                next_file_no: replayed.next_file_no,
                closed: replayed.files,
            },
            Arc::new(WalApplier(inner.clone())),
        )?;
        let _ = inner.wal.set(wal);
        let fi = inner.clone();
        let flusher = std::thread::Builder::new()
            .name("ledger-flush".into())
            .spawn(move || fi.flush_loop(flush_rx))
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

    /// Appends a batch for a project. Returns once every log is durable (per the fsync
    /// policy) and readable, with one id per log in order. All or nothing: on error, none of
    /// the batch is stored.
    pub fn append(
        &self,
        project: ProjectId,
        logs: Vec<NewLog>,
        opts: AppendOptions,
    ) -> Result<Vec<Appended>> {
        let inner = &self.inner;
        if logs.is_empty() {
            return Err(EngineError::Invalid("empty batch".into()));
        }
        if inner.closed.load(Ordering::Acquire) {
            return Err(EngineError::Closed);
        }
        if inner.deleted.read().contains(&project) {
            return Err(EngineError::UnknownProject(project));
        }
        let held = inner.memtable_bytes.load(Ordering::Relaxed);
        if held > inner.config.memtable_limit_bytes {
            return Err(EngineError::Backpressure(format!(
                "{held} bytes wait to be sealed (limit {})",
                inner.config.memtable_limit_bytes
            )));
        }
        if let Some(lag) = inner.search.as_ref().map(|s| s.lag()) {
            if lag > inner.config.search_max_lag {
                return Err(EngineError::Backpressure(format!(
                    "{lag} logs wait to be indexed (limit {})",
                    inner.config.search_max_lag
                )));
            }
        }
        if let Some(max) = opts.max_queue_depth {
            let depth = self.queue_depth(project);
            if depth + logs.len() > max {
                return Err(EngineError::Backpressure(format!(
                    "queue depth {depth} + {} would pass the limit {max}",
                    logs.len()
                )));
            }
        }
        let ingested_at = now_micros();
        let records: Vec<LogRecord> = logs
            .into_iter()
            .map(|mut log| {
                log.fields[Field::ErrorFingerprint as usize] = fingerprint::fingerprint(&log);
                LogRecord {
                    seq: 0,
                    ingested_at,
                    log,
                }
            })
            .collect();
        let stamps: Vec<i64> = records.iter().map(|r| r.log.timestamp).collect();
        let body = format::encode_body(&records, true);
        let first = inner.wal().append(project, records, body)?;
        Ok(stamps
            .into_iter()
            .enumerate()
            .map(|(i, timestamp)| Appended {
                id: LogId {
                    timestamp,
                    seq: first + i as u64,
                },
                ingested_at,
            })
            .collect())
    }

    /// One page of a project's logs.
    pub fn scan(&self, project: ProjectId, req: &ScanRequest) -> Result<Page> {
        let Some(st) = self.inner.get_project(project) else {
            return query::scan(req, Vec::new(), &[], &self.inner.cache);
        };
        let (mut cands, frozen, segs) = {
            let g = st.read();
            (
                query::memtable_candidates(req, &g.active),
                g.frozen.clone(),
                g.segments.clone(),
            )
        };
        for f in &frozen {
            cands.extend(query::memtable_candidates(req, f));
        }
        query::scan(req, cands, &segs, &self.inner.cache)
    }

    /// A log by id, if it is in this project.
    pub fn get(&self, project: ProjectId, id: LogId) -> Result<Option<LogRecord>> {
        let Some(st) = self.inner.get_project(project) else {
            return Ok(None);
        };
        let (frozen, segs) = {
            let g = st.read();
            if let Some(r) = g.active.get(id) {
                return Ok(Some(r.clone()));
            }
            (g.frozen.clone(), g.segments.clone())
        };
        if let Some(r) = frozen.iter().find_map(|m| m.get(id)) {
            return Ok(Some(r.clone()));
        }
        query::get(id, &segs, &self.inner.cache)
    }

    /// Full-text search: one page of a project's logs that match `expr` and the request's
    /// filters, in the request's order. Logs are findable within the search refresh interval
    /// of their append. Bounded by `budget`; a page cut short says so (`partial`).
    pub fn search(
        &self,
        project: ProjectId,
        expr: &search::Expr,
        req: &ScanRequest,
        budget: SearchBudget,
    ) -> Result<SearchPage> {
        match &self.inner.search {
            Some(ix) if ix.narrows(expr) => {
                let deadline = std::time::Instant::now() + budget.time;
                search::index_driven(
                    expr,
                    req,
                    budget,
                    |lo, hi, k, max| {
                        ix.candidates(
                            project,
                            Some(expr),
                            &req.filter,
                            lo,
                            hi,
                            req.order == query::Order::Desc,
                            k,
                            max,
                            deadline,
                        )
                    },
                    |id| self.get(project, id),
                )
            }
            _ => {
                let e = Arc::new(expr.clone());
                let mut scan = req.clone();
                scan.predicate = Some(query::Predicate(Arc::new(move |r: &LogRecord| {
                    search::eval::matches(&e, r)
                })));
                scan.max_examined = Some(budget.max_examined);
                let p = self.scan(project, &scan)?;
                Ok(SearchPage {
                    logs: p.logs,
                    next_cursor: p.next_cursor,
                    partial: p.partial,
                })
            }
        }
    }

    /// Makes every log appended so far findable by search now (tests, shutdown).
    pub fn refresh_search(&self) -> Result<()> {
        match &self.inner.search {
            Some(s) => s.commit(),
            None => Ok(()),
        }
    }

    /// Logs appended but not yet findable by search.
    pub fn search_lag(&self) -> u64 {
        self.inner.search.as_ref().map_or(0, |s| s.lag())
    }

    /// Logs accepted for a project but not yet sealed into a segment.
    pub fn queue_depth(&self, project: ProjectId) -> usize {
        self.inner
            .get_project(project)
            .map_or(0, |st| st.read().unsealed_rows())
    }

    /// Drops every segment of a project whose newest log is older than `cutoff` (µs).
    /// Returns the number of segments and of logs dropped.
    pub fn enforce_retention(&self, project: ProjectId, cutoff: i64) -> Result<(usize, u64)> {
        let inner = &self.inner;
        let _m = inner.maintenance.lock();
        let Some(st) = inner.get_project(project) else {
            return Ok((0, 0));
        };
        let old: Vec<Arc<SegmentReader>> = st
            .read()
            .segments
            .iter()
            .filter(|s| s.max_ts() < cutoff)
            .cloned()
            .collect();
        if old.is_empty() {
            return Ok((0, 0));
        }
        let ids: Vec<u64> = old.iter().map(|s| s.id).collect();
        inner.catalog.remove_segments(project, &ids)?;
        if let Some(s) = &inner.search {
            for seg in &old {
                let m = seg.meta();
                s.delete_seqs(project, m.min_seq, m.max_seq);
            }
        }
        st.write().segments.retain(|s| !ids.contains(&s.id));
        let (remaining, frozen) = {
            let g = st.read();
            (g.segments.clone(), g.frozen.clone())
        };
        (inner.rollups).retire(project, &old, &remaining, &frozen, &inner.cache, |f| {
            f(&st.read().active)
        });
        let mut rows = 0;
        for s in &old {
            rows += s.rows;
            inner.cache.evict_segment(s.id);
            if let Err(e) = std::fs::remove_file(&s.path) {
                tracing::warn!(file = %s.path.display(), error = %e, "could not delete an expired segment");
            }
        }
        fsutil::sync_dir(&inner.dir.join("segments").join(project_dir(project)))?;
        Ok((old.len(), rows))
    }

    /// Deletes a project's logs: memtables, segments and (by tombstone) its WAL records.
    /// Later appends to it are refused.
    pub fn delete_project(&self, project: ProjectId) -> Result<()> {
        let inner = &self.inner;
        let _m = inner.maintenance.lock();
        inner.deleted.write().insert(project);
        inner
            .catalog
            .delete_project(project, now_micros(), inner.wal().next_seq())?;
        inner.rollups.remove_project(project);
        if let Some(s) = &inner.search {
            s.delete_project(project);
        }
        if let Some(st) = inner.projects.write().remove(&project) {
            let g = st.read();
            let bytes = g.active.bytes() + g.frozen.iter().map(|m| m.bytes()).sum::<usize>();
            inner.memtable_bytes.fetch_sub(bytes, Ordering::Relaxed);
            for s in &g.segments {
                inner.cache.evict_segment(s.id);
            }
        }
        let pdir = inner.dir.join("segments").join(project_dir(project));
        match std::fs::remove_dir_all(&pdir) {
            Ok(()) => fsutil::sync_dir(&inner.dir.join("segments"))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(EngineError::io(&pdir, e)),
        }
        inner.wal().checkpoint();
        Ok(())
    }

    /// True when the project was deleted.
    pub fn is_deleted(&self, project: ProjectId) -> bool {
        self.inner.deleted.read().contains(&project)
    }

    /// Seals every memtable into segments now and truncates the WAL behind them.
    pub fn flush(&self) -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.inner
            .flush_tx
            .send(FlushMsg::SealAll(tx))
            .map_err(|_| EngineError::Closed)?;
        rx.recv().map_err(|_| EngineError::Closed)?
    }

    /// Waits until everything appended is fsynced (matters under the `interval` and `never`
    /// policies).
    pub fn sync(&self) -> Result<()> {
        self.inner.wal().sync()
    }

    /// Stops the engine cleanly: seals what it can, syncs and closes the WAL, stops threads.
    pub fn close(&self) -> Result<()> {
        self.guard.stop(true)
    }

    /// Stops the threads the way a crash after the last fsync would leave things: nothing
    /// is sealed, the WAL keeps every unsealed row for the next open to replay. For crash
    /// tests and tools; a server calls [`Engine::close`].
    pub fn close_without_sealing(&self) {
        let _ = self.guard.stop(false);
    }

    /// Every project that has data (memtable or segments).
    pub fn projects(&self) -> Vec<ProjectId> {
        let mut v: Vec<_> = self.inner.projects.read().keys().copied().collect();
        v.sort();
        v
    }

    pub fn stats(&self) -> EngineStats {
        let mut s = EngineStats::default();
        for st in self.inner.projects.read().values() {
            let g = st.read();
            s.projects += 1;
            s.segments += g.segments.len();
            for seg in &g.segments {
                s.segment_bytes += seg.file_len;
                s.segment_raw_bytes += seg.raw_bytes;
                s.segment_rows += seg.rows;
            }
            s.memtable_rows += g.unsealed_rows();
        }
        s.memtable_bytes = self.inner.memtable_bytes.load(Ordering::Relaxed);
        s
    }

    pub fn wal_stats(&self) -> &WalStats {
        &self.inner.wal().stats
    }

    /// Checks that the WAL writer is healthy, the data directory is writable, and sealing
    /// is not failing.
    pub fn health(&self) -> Health {
        let inner = &self.inner;
        let wal = match inner.wal().failure() {
            Some(why) => Err(why),
            None => Ok(()),
        };
        let probe = inner.dir.join(".health-probe");
        let mut storage = std::fs::write(&probe, b"ok")
            .and_then(|_| std::fs::remove_file(&probe))
            .map_err(|e| format!("{}: {e}", inner.dir.display()));
        let damaged = inner.damaged.lock().clone();
        if storage.is_ok() && !damaged.is_empty() {
            storage = Err(format!("damaged segments: {}", damaged.join("; ")));
        }
        let flush = match inner.flush_error.lock().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        };
        Health {
            wal,
            storage,
            flush,
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The error-rate series of a project (`/metrics/error-rate`), from memory.
    ///
    /// Buckets of `bucket` width, aligned to it in UTC, oldest first, from the bucket holding
    /// `now_us - hours` through the bucket holding `now_us`, every one present (zero-filled
    /// when no log falls in it). Each counts the project's stored logs by timestamp: `total`
    /// all of them, `errors` those at level `error` or `critical`; `rate()` is their ratio.
    /// Unknown or deleted projects get zero buckets. `Invalid` when `hours` is 0, the window
    /// would hold more than `rollup::bucket::MAX_BUCKETS` buckets, or rollups are disabled.
    pub fn error_rate(
        &self,
        project: ProjectId,
        now_us: i64,
        hours: u32,
        bucket: Bucket,
    ) -> Result<Vec<rollup::ErrorRateBucket>> {
        self.inner
            .rollups
            .error_rate(project, now_us, hours, bucket)
    }

    /// The log-volume series of a project (`/metrics/log-volume`), from memory: the same
    /// buckets as [`Engine::error_rate`], each with its count of stored logs in total and by
    /// level (`by_level[Level as usize]`, debug … critical). Same errors.
    pub fn log_volume(
        &self,
        project: ProjectId,
        now_us: i64,
        hours: u32,
        bucket: Bucket,
    ) -> Result<Vec<rollup::VolumeBucket>> {
        self.inner
            .rollups
            .log_volume(project, now_us, hours, bucket)
    }

    /// The `limit` error groups with the most stored logs in the window
    /// (`/metrics/top-errors`), most first (ties: latest log first, then fingerprint).
    ///
    /// A group is the logs sharing an `error_fingerprint`; the window is whole UTC hours,
    /// from the hour holding `now_us - hours` through the hour holding `now_us` (the window
    /// of `log_volume(.., hours, Bucket::Hour)`). Each entry gives the count of the group's
    /// logs in the window, the earliest and latest of their timestamps, the latest log's id
    /// as a sample, the error type and the masked message the fingerprint groups by. Exact
    /// for windows after `rollup_status().fingerprints_exact_after_us` (always, until a
    /// project passes `RollupConfig::max_fingerprints` groups). `Invalid` when `hours` is 0,
    /// `limit` is not 1 to 1,000, or rollups are disabled.
    pub fn top_errors(
        &self,
        project: ProjectId,
        now_us: i64,
        hours: u32,
        limit: usize,
    ) -> Result<Vec<rollup::TopError>> {
        self.inner.rollups.top_errors(project, now_us, hours, limit)
    }

    /// The `limit` message patterns with the most stored logs in the window
    /// (`/logs/patterns`), most first (ties: latest log first, then pattern text).
    ///
    /// Patterns are Drain-style templates with variable tokens as `<*>` (rules in
    /// `rollup::patterns`), over `message` (else `error_message`); the window is that of
    /// [`Engine::top_errors`]. Each entry gives its count in the window, the count per level,
    /// the earliest and latest timestamps, and the latest log's id as a sample. Exact for
    /// windows after `rollup_status().patterns_exact_after_us`. Same errors as `top_errors`.
    pub fn patterns(
        &self,
        project: ProjectId,
        now_us: i64,
        hours: u32,
        limit: usize,
    ) -> Result<Vec<rollup::Pattern>> {
        self.inner.rollups.patterns(project, now_us, hours, limit)
    }

    /// What a project's rollups hold (groups, memory) and from when on the ranked answers
    /// are exact; all zero for a project without logs.
    pub fn rollup_status(&self, project: ProjectId) -> rollup::RollupStatus {
        self.inner.rollups.status(project)
    }
}

/// The directory name of a project's segments.
pub fn project_dir(project: ProjectId) -> String {
    format!("{project:016x}")
}

fn remove_orphans(seg_dir: &Path, known: &HashSet<PathBuf>) -> Result<usize> {
    let mut removed = 0;
    let rd = std::fs::read_dir(seg_dir).map_err(|e| EngineError::io(seg_dir, e))?;
    for pd in rd {
        let pd = pd.map_err(|e| EngineError::io(seg_dir, e))?.path();
        if !pd.is_dir() {
            continue;
        }
        let files = std::fs::read_dir(&pd).map_err(|e| EngineError::io(&pd, e))?;
        for f in files {
            let f = f.map_err(|e| EngineError::io(&pd, e))?.path();
            // A segment written but not yet in the catalog when the process died: its rows
            // are still in the WAL, so the file is redundant.
            if !known.contains(&f) {
                tracing::info!(file = %f.display(), "removing orphan segment file");
                std::fs::remove_file(&f).map_err(|e| EngineError::io(&f, e))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

struct WalApplier(Arc<Inner>);

impl Applier for WalApplier {
    fn apply(&self, project: ProjectId, records: Vec<LogRecord>) {
        self.0.apply_rows(project, records);
        if self.0.needs_seal(project) {
            self.0.request_seal(project);
        }
    }
    fn min_unsealed_seq(&self) -> Option<u64> {
        let mem = self
            .0
            .projects
            .read()
            .values()
            .filter_map(|st| st.read().min_unsealed_seq())
            .min();
        // The WAL also keeps what the search index has not committed yet.
        let unindexed = self.0.search.as_ref().map(|s| s.committed() + 1);
        mem.into_iter().chain(unindexed).min()
    }
}

impl Inner {
    fn wal(&self) -> &Wal {
        self.wal
            .get()
            .expect("the WAL starts in open, before the engine is shared")
    }

    fn segment_path(&self, project: ProjectId, id: u64) -> PathBuf {
        self.dir
            .join("segments")
            .join(project_dir(project))
            .join(segment::file_name(id))
    }

    fn get_project(&self, project: ProjectId) -> Option<Shared> {
        self.projects.read().get(&project).cloned()
    }

    fn project(&self, project: ProjectId) -> Shared {
        if let Some(p) = self.get_project(project) {
            return p;
        }
        self.projects.write().entry(project).or_default().clone()
    }

    fn apply_rows(&self, project: ProjectId, records: Vec<LogRecord>) {
        if self.deleted.read().contains(&project) {
            return;
        }
        let st = self.project(project);
        let mut g = st.write();
        let before = g.active.bytes();
        // Under the state lock, so a row is counted exactly when it is readable.
        self.rollups.apply(project, &records);
        let rows: Vec<Arc<LogRecord>> = records.into_iter().map(Arc::new).collect();
        for r in &rows {
            g.active.insert(r.clone());
        }
        self.memtable_bytes
            .fetch_add(g.active.bytes() - before, Ordering::Relaxed);
        drop(g);
        // The indexer thread is not started during replay, which indexes by itself.
        if let Some(s) = &self.search {
            s.add(project, rows);
        }
    }

    fn needs_seal(&self, project: ProjectId) -> bool {
        let Some(st) = self.get_project(project) else {
            return false;
        };
        let g = st.read();
        !g.seal_requested
            && (g.active.len() >= self.config.seal_rows
                || g.active.bytes() >= self.config.seal_bytes)
    }

    fn request_seal(&self, project: ProjectId) {
        if let Some(st) = self.get_project(project) {
            st.write().seal_requested = true;
        }
        let _ = self.flush_tx.send(FlushMsg::Seal(project));
    }

    fn flush_loop(self: Arc<Self>, rx: Receiver<FlushMsg>) {
        loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(FlushMsg::Seal(p)) => self.seal_logged(p),
                Ok(FlushMsg::SealAll(reply)) => {
                    let r = self
                        .projects_now()
                        .into_iter()
                        .try_for_each(|p| self.seal_project(p));
                    let _ = reply.send(r);
                }
                Ok(FlushMsg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    for p in self.projects_now() {
                        let due = self.get_project(p).is_some_and(|st| {
                            let g = st.read();
                            !g.frozen.is_empty()
                                || (!g.active.is_empty()
                                    && g.active.created().elapsed() >= self.config.seal_age)
                        });
                        if due {
                            self.seal_logged(p);
                        }
                    }
                }
            }
        }
    }

    fn seal_all(&self) -> Result<()> {
        self.projects_now()
            .into_iter()
            .try_for_each(|p| self.seal_project(p))
    }

    fn projects_now(&self) -> Vec<ProjectId> {
        self.projects.read().keys().copied().collect()
    }

    fn seal_logged(&self, p: ProjectId) {
        match self.seal_project(p) {
            Ok(()) => *self.flush_error.lock() = None,
            Err(e) => {
                tracing::error!(project = p, error = %e, "sealing failed; will retry");
                *self.flush_error.lock() = Some(e.to_string());
            }
        }
    }

    /// Freezes the project's memtable and writes every frozen memtable out as a segment.
    fn seal_project(&self, project: ProjectId) -> Result<()> {
        let _m = self.maintenance.lock();
        let Some(st) = self.get_project(project) else {
            return Ok(());
        };
        {
            let mut g = st.write();
            g.seal_requested = false;
            if !g.active.is_empty() {
                let m = std::mem::take(&mut g.active);
                g.frozen.push(Arc::new(m));
            }
        }
        loop {
            let Some(frozen) = st.read().frozen.first().cloned() else {
                break;
            };
            let id = self.next_segment_id.fetch_add(1, Ordering::AcqRel);
            let path = self.segment_path(project, id);
            if let Some(parent) = path.parent() {
                if !parent.exists() {
                    fsutil::create_private_dir(parent)?;
                    fsutil::sync_dir(&self.dir.join("segments"))?;
                }
            }
            let rows: Vec<&LogRecord> = frozen.iter().collect();
            let meta = segment::write(
                &path,
                project,
                id,
                &rows,
                self.config.block_rows,
                self.config.zstd_level,
            )?;
            let reader = SegmentReader::open(&path)?;
            if let Err(e) = self.catalog.add_segment(&meta, frozen.max_seq()) {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
            {
                let mut g = st.write();
                g.frozen.retain(|m| !Arc::ptr_eq(m, &frozen));
                g.segments.push(reader);
            }
            self.memtable_bytes
                .fetch_sub(frozen.bytes(), Ordering::Relaxed);
        }
        if let Some(w) = self.wal.get() {
            w.checkpoint();
        }
        Ok(())
    }
}

/// Re-creates the search index from every sealed segment (the WAL replay adds the rest).
fn rebuild_index(inner: &Inner, ix: &mut search::index::Indexer, why: &str) -> Result<()> {
    let projects: Vec<(ProjectId, Vec<Arc<SegmentReader>>)> = inner
        .projects
        .read()
        .iter()
        .map(|(p, st)| (*p, st.read().segments.clone()))
        .collect();
    let segments: usize = projects.iter().map(|(_, s)| s.len()).sum();
    tracing::warn!(reason = why, segments, "search index {why}: rebuilding it from segments");
    for (p, segs) in projects {
        for seg in segs {
            for i in 0..seg.blocks.len() {
                ix.add_owned(p, &seg.read_block(i)?)?;
            }
        }
    }
    Ok(())
}
