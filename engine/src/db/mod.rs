//! The `Engine` handle: the one seam between Ledger's storage and everything above it.
//!
//! It owns the WAL writer, the per-project memtables and segments, the catalog, and a flusher
//! thread that seals memtables into segments and lets the WAL be truncated behind them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::Sender;
use parking_lot::{Mutex, RwLock};

use crate::catalog::Catalog;
use crate::config::EngineConfig;
use crate::error::{Backpressure, EngineError, Invalid, Result};
use crate::fingerprint;
use crate::memtable::Memtable;
use crate::model::{Field, LogId, LogRecord, NewLog, ProjectId};
use crate::query::{self, Page, ScanRequest};
use crate::rollup::{self, Bucket, Rollups};
use crate::search::{self, index::SearchIndex, SearchBudget, SearchPage};
use crate::segment::{self, cache::BlockCache, SegmentReader};
use crate::usage::{self, DayUsage, UsageBook};
use crate::wal::{self, format, Applier, RecoveryReport, Wal, WalStats};

mod deletion;
mod follow;

pub use deletion::Deletion;
pub use follow::FollowReport;
mod open;
mod reads;
mod reindex;
mod seal;

/// Appends of at most this many logs have a reserve past the node-wide backpressure limits
/// ([`Engine::pressure`]).
pub const SMALL_APPEND: usize = 16;

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
    /// Open live tails, handed each batch as it becomes durable.
    tails: Arc<crate::tail::TailHub>,
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
    /// Daily usage per project, exact across crashes (see `usage`).
    usage: UsageBook,
    /// Sealed bytes not yet in object storage and the budget they may fill (0: no bucket),
    /// as the tiering layer reports them; past the budget appends are refused.
    upload_waiting: AtomicU64,
    upload_budget: AtomicU64,
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
    /// What the batch counts as in the project's daily usage bytes (the server passes the
    /// size of the logs as the client sent them). Its log count is the batch's length.
    pub usage_bytes: u64,
}

/// Figures for `/metrics`, `/health/deep` and `ledgerctl`.
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    pub projects: usize,
    pub segments: usize,
    pub segment_bytes: u64,
    /// Of those, the bytes of segments whose file is on the local disk (the rest are read
    /// from object storage).
    pub segment_local_bytes: u64,
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
    /// The search indexer (always `Ok` when search is disabled).
    pub index: std::result::Result<(), String>,
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
    /// Appends a batch for a project. Returns once every log is durable (per the fsync
    /// policy) and readable, with one id per log in order. All or nothing: on error, none of
    /// the batch is stored.
    pub fn append(
        &self,
        project: ProjectId,
        logs: Vec<NewLog>,
        opts: AppendOptions,
    ) -> Result<Vec<Appended>> {
        let _span = tracing::trace_span!("append", project, logs = logs.len()).entered();
        let inner = &self.inner;
        if logs.is_empty() {
            return Err(Invalid::EmptyBatch.into());
        }
        if inner.closed.load(Ordering::Acquire) {
            return Err(EngineError::Closed);
        }
        if inner.deleted.read().contains(&project) {
            return Err(EngineError::UnknownProject(project));
        }
        self.pressure(project, opts.max_queue_depth, logs.len())?;
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
        let mut body = format::encode_body(&records, true);
        body.usage_bytes = Some(opts.usage_bytes);
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

    /// A project's usage on a UTC day (days since the epoch): every log appended that day
    /// (by its `ingested_at`), exact across crashes.
    pub fn usage(&self, project: ProjectId, day: i64) -> DayUsage {
        self.inner.usage.day(project, day)
    }

    /// A project's usage on days `first..=last`, only days that have any, oldest first.
    pub fn usage_range(&self, project: ProjectId, first: i64, last: i64) -> Vec<(i64, DayUsage)> {
        self.inner.usage.range(project, first, last)
    }

    /// Logs accepted for a project but not yet sealed into a segment.
    pub fn queue_depth(&self, project: ProjectId) -> usize {
        self.inner
            .get_project(project)
            .map_or(0, |st| st.read().unsealed_rows())
    }

    /// Whether an append of `incoming` logs to `project` would be refused for backpressure
    /// now, and why: the unsealed bytes of all projects, the logs waiting to be indexed, and
    /// the project's own unsealed rows against `max_queue_depth`. A few atomic loads and
    /// one read lock, so a server can ask before it reads a request's body (with
    /// `incoming` 0 when it does not know the count yet); `append` asks again.
    ///
    /// Small appends (at most [`SMALL_APPEND`] logs) have a reserve past the two node-wide
    /// limits, an eighth of each: a backlog that batches built up (the index catching up
    /// after a flood, which it does a commit, a second, at a time) holds the batches, not
    /// the single logs behind them, which add next to nothing to it. Memory and lag stay
    /// bounded, by the limit and its eighth.
    pub fn pressure(
        &self,
        project: ProjectId,
        max_queue_depth: Option<usize>,
        incoming: usize,
    ) -> Result<()> {
        let inner = &self.inner;
        let reserve = |limit: u64| {
            if incoming <= SMALL_APPEND {
                limit + limit / 8
            } else {
                limit
            }
        };
        let held = inner.memtable_bytes.load(Ordering::Relaxed);
        let limit = inner.config.memtable_limit_bytes;
        if held as u64 > reserve(limit as u64) {
            return Err(Backpressure::MemtablesFull { held, limit }.into());
        }
        if let Some(lag) = inner.search.as_ref().map(|s| s.lag()) {
            let limit = inner.config.search_max_lag;
            if lag > reserve(limit) {
                return Err(Backpressure::IndexBehind { lag, limit }.into());
            }
        }
        let budget = inner.upload_budget.load(Ordering::Relaxed);
        let waiting = inner.upload_waiting.load(Ordering::Relaxed);
        if budget > 0 && waiting > budget {
            return Err(Backpressure::UploadBacklog { waiting, budget }.into());
        }
        if let Some(max) = max_queue_depth {
            let depth = self.queue_depth(project);
            if depth + incoming > max {
                return Err(Backpressure::QueueDepth {
                    depth,
                    incoming,
                    limit: max,
                }
                .into());
            }
        }
        Ok(())
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
            if let Err(e) = inner.remove_segment_file(s) {
                tracing::warn!(file = %s.path.display(), error = %e, "could not delete an expired segment");
            }
        }
        crate::fs::sync_dir_in(
            inner.fs(),
            &inner.dir.join("segments").join(project_dir(project)),
        )?;
        Ok((old.len(), rows))
    }

    /// Deletes a project's logs: memtables, segments and (by tombstone) its WAL records.
    /// Later appends to it are refused.
    pub fn delete_project(&self, project: ProjectId) -> Result<()> {
        let inner = &self.inner;
        let _m = inner.maintenance.lock();
        inner.deleted.write().insert(project);
        inner.tails.close_project(project);
        inner
            .catalog
            .delete_project(project, now_micros(), inner.wal().next_seq())?;
        inner.rollups.remove_project(project);
        inner.usage.remove_project(project);
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
        match inner.fs().remove_dir_all(&pdir) {
            Ok(()) => crate::fs::sync_dir_in(inner.fs(), &inner.dir.join("segments"))?,
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
                if seg.is_local() {
                    s.segment_local_bytes += seg.file_len;
                }
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
        let fs = inner.fs();
        let _ = fs.remove_file(&probe);
        let mut storage = fs
            .create_new(&probe)
            .and_then(|f| f.append(b"ok"))
            .and_then(|_| fs.remove_file(&probe))
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
            index: inner.search.as_ref().map_or(Ok(()), |s| s.health()),
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Copies the catalog to a new file at `dest` (one consistent read) and returns the
    /// sealed segments that copy lists, with their files: what object storage must hold
    /// before the copy may be published.
    pub fn snapshot_catalog(&self, dest: &Path) -> Result<Vec<SealedFile>> {
        let metas = self.inner.catalog.snapshot_to(dest)?;
        Ok(metas
            .into_iter()
            .map(|m| SealedFile {
                path: self.inner.segment_path(m.project, m.id),
                project: m.project,
                id: m.id,
                bytes: m.bytes,
                rows: m.rows,
                min_ts: m.min_ts,
                max_ts: m.max_ts,
            })
            .collect())
    }

    /// Evicts the least recently read segments that the remote store holds from the local
    /// disk until the local segment files take at most `budget` bytes; their reads go to the
    /// remote store by byte range from then on. Returns the segments and bytes evicted.
    pub fn evict_to(&self, budget: u64) -> Result<(usize, u64)> {
        let inner = &self.inner;
        let Some(remote) = inner.config.remote.clone() else {
            return Ok((0, 0));
        };
        let _m = inner.maintenance.lock();
        let mut local: Vec<Arc<SegmentReader>> = (inner.projects.read().values())
            .flat_map(|st| st.read().segments.clone())
            .filter(|s| s.is_local())
            .collect();
        let mut total: u64 = local.iter().map(|s| s.file_len).sum();
        local.sort_by_key(|s| s.last_read());
        let (mut n, mut bytes) = (0, 0);
        for seg in local {
            if total <= budget {
                break;
            }
            if !remote.holds(seg.project, seg.id) {
                continue;
            }
            let file = match remote.open(seg.project, seg.id) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(segment = seg.id, error = %e, "cannot evict: the remote copy does not open");
                    continue;
                }
            };
            seg.go_remote(file);
            inner
                .fs()
                .remove_file(&seg.path)
                .map_err(|e| EngineError::io(&seg.path, e))?;
            total -= seg.file_len;
            n += 1;
            bytes += seg.file_len;
        }
        Ok((n, bytes))
    }

    /// Tells the engine how many sealed bytes wait for object storage and the budget they
    /// may fill (`budget` 0: no limit). Past it, appends are refused with
    /// [`Backpressure::UploadBacklog`] until uploads catch up.
    pub fn report_upload_backlog(&self, waiting: u64, budget: u64) {
        self.inner.upload_waiting.store(waiting, Ordering::Relaxed);
        self.inner.upload_budget.store(budget, Ordering::Relaxed);
    }
}

/// A sealed segment as a file (see [`Engine::snapshot_catalog`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedFile {
    pub project: ProjectId,
    pub id: u64,
    pub path: PathBuf,
    /// Size of the file.
    pub bytes: u64,
    pub rows: u64,
    pub min_ts: i64,
    pub max_ts: i64,
}

/// Where a sealed segment's file lives, relative to the data directory.
pub fn segment_file(project: ProjectId, id: u64) -> PathBuf {
    Path::new("segments")
        .join(project_dir(project))
        .join(segment::file_name(id))
}

/// The directory name of a project's segments.
pub fn project_dir(project: ProjectId) -> String {
    format!("{project:016x}")
}

struct WalApplier(Arc<Inner>);

impl Applier for WalApplier {
    fn apply(&self, project: ProjectId, records: Vec<LogRecord>, usage_bytes: Option<u64>) {
        self.0.apply_rows(project, records, usage_bytes);
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
    /// Opens a sealed segment: its local file, or, when that is gone and a remote store
    /// holds the segment, its bytes there.
    fn open_segment(&self, project: ProjectId, id: u64) -> Result<Arc<SegmentReader>> {
        let path = self.segment_path(project, id);
        match SegmentReader::open(self.fs(), &path) {
            Err(EngineError::Io { ref error, .. })
                if error.kind() == std::io::ErrorKind::NotFound =>
            {
                match &self.config.remote {
                    Some(r) if r.holds(project, id) => {
                        let file = r.open(project, id).map_err(|e| EngineError::io(&path, e))?;
                        SegmentReader::open_file(file, &path, false)
                    }
                    _ => SegmentReader::open(self.fs(), &path),
                }
            }
            other => other,
        }
    }

    /// Deletes a segment's local file, if it has one.
    fn remove_segment_file(&self, seg: &SegmentReader) -> std::io::Result<()> {
        match self.fs().remove_file(&seg.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !seg.is_local() => Ok(()),
            r => r,
        }
    }

    /// The file system the WAL, segments and catalog live on.
    fn fs(&self) -> &dyn crate::fs::FileSystem {
        &*self.config.fs
    }

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

    /// Makes a durable batch readable and counts it: memtable, rollups, usage, index queue.
    fn apply_rows(&self, project: ProjectId, records: Vec<LogRecord>, usage_bytes: Option<u64>) {
        if self.deleted.read().contains(&project) {
            return;
        }
        let st = self.project(project);
        let mut g = st.write();
        if let (Some(bytes), Some(first)) = (usage_bytes, records.first()) {
            // A batch shares one `ingested_at`, so it falls on one day.
            let day = usage::day_of(first.ingested_at);
            let u = DayUsage {
                logs: records.len() as u64,
                bytes,
            };
            g.active.add_usage(day, u);
            self.usage.add(project, day, u);
        }
        let before = g.active.bytes();
        let rows: Vec<Arc<LogRecord>> = records.into_iter().map(Arc::new).collect();
        // Queued for the rollup thread, which every metrics read waits for (see `rollup`).
        self.rollups.apply(project, &rows);
        for r in &rows {
            g.active.insert(r.clone());
        }
        self.memtable_bytes
            .fetch_add(g.active.bytes() - before, Ordering::Relaxed);
        drop(g);
        self.tails.publish(project, &rows);
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
}
