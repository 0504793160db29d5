//! Rollups: per-project figures kept in memory at append time, so every `/metrics/*` answer
//! (error rate, log volume, top errors, message patterns) is read from memory, never by
//! scanning logs.
//!
//! * [`levels`]: log counts by level per UTC minute (error rate and volume, any bucket);
//! * [`groups`]: a capped table of groups counted per UTC hour, used for
//! * [`errors`]: top errors by stored `error_fingerprint`, and
//! * [`patterns`]: message templates (Drain-style);
//! * [`stored`]: reading stored logs back (rebuild at open, retention);
//! * [`bucket`]: bucket sizes and windows.
//!
//! # Exactness
//!
//! Every figure equals what counting the stored logs (what `Engine::scan` returns) would
//! give, for the windows the methods document:
//!
//! * the WAL writer queues each batch for the rollup thread ([`worker`]) as it makes the
//!   batch readable (and so does the WAL replay at open); every answer first waits until
//!   the thread has counted everything queued before it was asked, so it counts every
//!   acknowledged log, and late and out-of-order logs land in the bucket of their own
//!   timestamp;
//! * at open, sealed segments are read back and counted before the WAL is replayed (nothing
//!   is persisted: the rollups are a pure function of what is stored);
//! * retention counts out the logs of the segments it drops, then recounts from the
//!   remaining logs the few hours whose earliest/latest log or sample went with them;
//! * deleting a project drops its rollups.
//!
//! Error groups and patterns are capped per project (see [`RollupConfig`]); past a cap the
//! least recent groups are evicted, and [`RollupStatus`] says from when on the ranked
//! answers are exact. Level counts are never capped.
//!
//! # Cost
//!
//! On the WAL writer thread: one queue send per batch (the rows are the memtable's `Arc`s,
//! so nothing is copied; about 10 ns per log). On the rollup thread, per log: two
//! increments in a per-hour array, the template of the message (one pass over its bytes, no
//! allocation), one lookup in a hash map with a fast keyed hash, and for logs with a
//! fingerprint one more; rows are touched 16 at a time first so their cache misses overlap
//! (about 150 ns of CPU per log in `benches/benches/rollups.rs`). Memory per
//! project: 1,240 bytes per UTC hour that holds logs, plus per group its key and title and
//! 56 bytes per hour in which it has logs. With `RollupConfig::enabled` off none of this
//! runs (the figure `benches/benches/rollups.rs` compares against).

pub mod bucket;
pub mod errors;
pub mod groups;
pub mod levels;
pub mod patterns;
pub mod project;
pub mod stored;
pub mod worker;

#[cfg(test)]
mod tests;

/// `s` cut to at most `max` bytes, at a character boundary.
pub(crate) fn cut_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod cut_tests {
    use super::errors::{ErrorTitle, MAX_TITLE_MESSAGE_BYTES, MAX_TITLE_TYPE_BYTES};
    use super::patterns::{pattern_source, MAX_PATTERN_SOURCE_BYTES};
    use crate::model::{Field, Importance, Level, LogType, NewLog};

    #[test]
    fn titles_and_pattern_sources_are_bounded_whatever_the_log_holds() {
        let mut log = NewLog::new(0, Level::Error, LogType::Exception, Importance::High);
        log.set(Field::ErrorType, "T".repeat(5_000));
        log.set(Field::ErrorMessage, "é".repeat(5_000));
        log.set(Field::Message, "ü".repeat(5_000));
        let t = ErrorTitle::of(&log);
        assert_eq!(t.error_type.len(), MAX_TITLE_TYPE_BYTES);
        assert!(t.message.len() <= MAX_TITLE_MESSAGE_BYTES && t.message.len() > 1000);
        let p = pattern_source(&log).unwrap();
        assert!(p.len() <= MAX_PATTERN_SOURCE_BYTES && p.len() > 1000);
        assert_eq!(super::cut_at_char("aé", 2), "a", "never inside a character");
    }
}

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

pub use bucket::Bucket;
pub use errors::TopError;
pub use patterns::Pattern;

use crate::error::{EngineError, Invalid, Result};
use crate::memtable::Memtable;
use crate::model::{Field, LogRecord, ProjectId};
use crate::query::MAX_LIMIT;
use crate::segment::cache::BlockCache;
use crate::segment::SegmentReader;
use bucket::{bucket_window, hour_of, window, HOUR_US};
use project::ProjectRollup;
use worker::Worker;

/// Settings of the rollups (part of `EngineConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupConfig {
    /// Maintain rollups at all. Off, the append path skips them and every metrics method
    /// answers `EngineError::Unavailable`; for measuring what they cost (`benches/rollups.rs`).
    pub enabled: bool,
    /// Error groups (distinct fingerprints) kept per project. Default 5,000.
    pub max_fingerprints: usize,
    /// Message templates kept per project. Default 2,000.
    pub max_patterns: usize,
}

impl Default for RollupConfig {
    fn default() -> Self {
        RollupConfig {
            enabled: true,
            max_fingerprints: 5_000,
            max_patterns: 2_000,
        }
    }
}

/// One bucket of the error-rate series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorRateBucket {
    /// The bucket's start (µs since the epoch, aligned to the bucket size in UTC).
    pub start_us: i64,
    /// Logs with a timestamp in the bucket.
    pub total: u64,
    /// Of those, the `error` and `critical` ones.
    pub errors: u64,
}

impl ErrorRateBucket {
    /// `errors / total`, 0 for an empty bucket.
    pub fn rate(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.errors as f64 / self.total as f64
        }
    }
}

/// One bucket of the log-volume series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeBucket {
    /// The bucket's start (µs since the epoch, aligned to the bucket size in UTC).
    pub start_us: i64,
    /// Logs with a timestamp in the bucket.
    pub total: u64,
    /// Of those, how many at each level, indexed by `Level as usize` (debug … critical).
    pub by_level: [u64; 5],
}

/// What a project's rollups hold, and how far back the ranked answers are exact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupStatus {
    /// Error groups held (at most `max_fingerprints`).
    pub fingerprints: usize,
    /// Templates held (at most `max_patterns`).
    pub patterns: usize,
    /// `None`: no error group was ever evicted, `top_errors` is exact for every window.
    /// `Some(t)`: some were, and every log no group counts has a timestamp ≤ `t`; windows
    /// starting after `t` are exact, earlier ones may miss or undercount groups.
    pub fingerprints_exact_after_us: Option<i64>,
    /// The same for `patterns`.
    pub patterns_exact_after_us: Option<i64>,
    /// Approximate bytes of memory the project's rollups hold.
    pub approx_bytes: usize,
    /// The last problem that may have left figures off (an unreadable block met while
    /// rebuilding or applying retention), if any.
    pub problem: Option<String>,
}

struct Project {
    rollup: Mutex<ProjectRollup>,
    problem: Mutex<Option<String>>,
}

impl Project {
    fn new(r: ProjectRollup) -> Arc<Project> {
        Arc::new(Project {
            rollup: Mutex::new(r),
            problem: Mutex::new(None),
        })
    }
}

/// Every project's rollups, shared by the engine and the rollup thread.
pub struct Registry {
    cfg: RollupConfig,
    projects: RwLock<HashMap<ProjectId, Arc<Project>>>,
}

impl Registry {
    fn get(&self, project: ProjectId) -> Option<Arc<Project>> {
        self.projects.read().get(&project).cloned()
    }

    fn get_or_create(&self, project: ProjectId) -> Arc<Project> {
        if let Some(p) = self.get(project) {
            return p;
        }
        (self.projects.write().entry(project))
            .or_insert_with(|| Project::new(ProjectRollup::new(&self.cfg)))
            .clone()
    }

    /// Counts in a batch of a project's rows, in sequence order.
    fn count(&self, project: ProjectId, rows: &[Arc<LogRecord>]) {
        let p = self.get_or_create(project);
        let mut g = p.rollup.lock();
        for group in rows.chunks(TOUCH_AHEAD) {
            touch(group);
            for r in group {
                g.add(r, r.seq, true);
            }
        }
    }
}

/// Rows whose memory is touched together before they are counted.
const TOUCH_AHEAD: usize = 16;

/// Reads each row's fields and a byte at each end of its message. The rows were made on
/// other threads and are rarely in this core's cache: profiling found half of the
/// tokenizer's time waiting on the first byte of each message. These loads do not depend on
/// one another, so their misses overlap, and counting then finds the bytes in cache.
#[inline]
fn touch(group: &[Arc<LogRecord>]) {
    let mut x = 0u8;
    for r in group {
        // The record's own lines: the message field is at one end, the timestamp, sequence
        // number and fingerprint field at the other.
        x ^= r.log.timestamp as u8 ^ r.seq as u8;
        if let Some(f) = r.get(Field::ErrorFingerprint) {
            x ^= f.as_bytes().first().copied().unwrap_or(0);
        }
        if let Some(m) = patterns::pattern_source(&r.log) {
            let b = m.as_bytes();
            x ^= b.first().copied().unwrap_or(0) ^ b.last().copied().unwrap_or(0);
        }
    }
    std::hint::black_box(x);
}

/// Every project's rollups and the thread that keeps them. Owned by the engine.
pub struct Rollups {
    reg: Arc<Registry>,
    /// `None` when rollups are disabled, or when the thread could not be started (then
    /// rows are counted on the caller's thread).
    worker: Option<Worker>,
}

impl Rollups {
    pub fn new(cfg: RollupConfig) -> Rollups {
        let enabled = cfg.enabled;
        let reg = Arc::new(Registry {
            cfg,
            projects: RwLock::new(HashMap::new()),
        });
        let worker = if enabled {
            Worker::start(reg.clone())
                .map_err(|e| {
                    tracing::warn!(error = %e, "rollups: no thread; counting on the WAL writer");
                })
                .ok()
        } else {
            None
        };
        Rollups { reg, worker }
    }

    pub fn enabled(&self) -> bool {
        self.reg.cfg.enabled
    }

    fn get(&self, project: ProjectId) -> Option<Arc<Project>> {
        self.reg.get(project)
    }

    /// Whether every row applied so far is counted: a read now would not wait for the
    /// rollup thread.
    pub fn caught_up(&self) -> bool {
        self.worker.as_ref().is_none_or(Worker::caught_up)
    }

    /// Waits until every row applied so far is counted (see [`worker`]); an error if
    /// counting failed.
    pub fn catch_up(&self) -> Result<()> {
        match &self.worker {
            Some(w) => w.catch_up(),
            None => Ok(()),
        }
    }

    /// Counts in a batch of a project's rows as they become readable: queues them for the
    /// rollup thread (the rows are shared, not copied). Called by the WAL writer (and the
    /// WAL replay) in sequence order.
    pub fn apply(&self, project: ProjectId, rows: &[Arc<LogRecord>]) {
        if !self.reg.cfg.enabled {
            return;
        }
        match &self.worker {
            Some(w) => w.send(project, rows.to_vec()),
            None => self.reg.count(project, rows),
        }
    }

    /// Replaces all rollups with a count of these projects' segments (at open, before the
    /// WAL replay counts the unsealed logs in). Reads every block once, on all cores.
    pub fn rebuild(&self, projects: Vec<(ProjectId, Vec<Arc<SegmentReader>>)>) {
        if !self.enabled() {
            return;
        }
        let _ = self.catch_up();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (built, errors) = stored::build_many(&self.reg.cfg, projects, threads);
        for e in &errors {
            tracing::error!(error = %e, "rollups: a block could not be read; its logs are not counted");
        }
        let mut map = self.reg.projects.write();
        map.clear();
        for (p, r) in built {
            map.insert(p, Project::new(r));
        }
    }

    /// Counts out the logs of segments retention dropped (call after they left the
    /// project's segment list, before their files go) and recounts what that leaves
    /// uncertain from the logs still stored. Call under the engine's maintenance lock, so
    /// no segment is sealed meanwhile.
    pub fn retire<F: FnOnce(&mut dyn FnMut(&Memtable))>(
        &self,
        project: ProjectId,
        dropped: &[Arc<SegmentReader>],
        remaining: &[Arc<SegmentReader>],
        frozen: &[Arc<Memtable>],
        cache: &BlockCache,
        active: F,
    ) {
        if !self.enabled() || dropped.is_empty() {
            return;
        }
        // Every sealed row is counted in before any is counted out.
        if let Err(e) = self.catch_up() {
            tracing::error!(project, error = %e, "rollups: retention not counted out");
            return;
        }
        let Some(p) = self.get(project) else {
            return;
        };
        let stored = stored::Stored {
            segments: remaining,
            frozen,
            cache,
            active,
        };
        let errors = stored::retire(&self.reg.cfg, &p.rollup, dropped, stored);
        if let Some(last) = errors.last() {
            for e in &errors {
                tracing::error!(project, error = %e, "rollups: retention met an unreadable block");
            }
            *p.problem.lock() = Some(last.clone());
        }
    }

    /// Counts out the logs a deletion removed from one segment (call after the segment was
    /// swapped for its rewrite, under the engine's maintenance lock). The hours whose
    /// earliest/latest logs or samples went with them are added to `dirty`: recount them
    /// once, when the deletion is over ([`Rollups::recount_begin`], [`Rollups::recount_finish`]).
    pub fn count_out(&self, project: ProjectId, rows: &[LogRecord], dirty: &mut BTreeSet<i64>) {
        if !self.enabled() || rows.is_empty() {
            return;
        }
        if let Err(e) = self.catch_up() {
            tracing::error!(project, error = %e, "rollups: deleted logs not counted out");
            return;
        }
        if let Some(p) = self.get(project) {
            stored::count_out(&p.rollup, rows, dirty);
        }
    }

    /// Starts counting a deletion's rewritten segments as it writes them (see
    /// [`stored::Precounted`]): waits until every row applied so far is counted, and takes
    /// the project's births. `None` when rollups are off or counting failed.
    pub fn precount(&self, project: ProjectId) -> Option<stored::Precounted> {
        if !self.enabled() || self.catch_up().is_err() {
            return None;
        }
        let p = self.get(project)?;
        let g = p.rollup.lock();
        Some(stored::Precounted::new(g.births(), g.applied_seq))
    }

    /// The long half of a recount of `hours`, from a snapshot of the project's sealed data
    /// taken under its state lock; holds no lock while it reads. Segments `pre` counted
    /// are not read again.
    pub fn recount_begin(
        &self,
        project: ProjectId,
        hours: &BTreeSet<i64>,
        segments: &[Arc<SegmentReader>],
        frozen: &[Arc<Memtable>],
        cache: &BlockCache,
        pre: Option<&stored::Precounted>,
    ) -> Option<stored::PartialRecount> {
        if !self.enabled() || hours.is_empty() {
            return None;
        }
        let p = self.get(project)?;
        Some(stored::recount_begin(
            &p.rollup, hours, segments, frozen, cache, pre,
        ))
    }

    /// The short half, under the engine's maintenance lock: what was sealed or appended
    /// since the snapshot, then the cells of `hours` replaced.
    #[allow(clippy::too_many_arguments)]
    pub fn recount_finish<F: FnOnce(&mut dyn FnMut(&Memtable))>(
        &self,
        project: ProjectId,
        hours: &BTreeSet<i64>,
        partial: stored::PartialRecount,
        segments: &[Arc<SegmentReader>],
        frozen: &[Arc<Memtable>],
        cache: &BlockCache,
        active: F,
    ) {
        if let Err(e) = self.catch_up() {
            tracing::error!(project, error = %e, "rollups: recount after a deletion skipped");
            return;
        }
        let Some(p) = self.get(project) else {
            return;
        };
        let stored = stored::Stored {
            segments,
            frozen,
            cache,
            active,
        };
        let errors = stored::recount_finish(&p.rollup, hours, partial, stored);
        if let Some(last) = errors.last() {
            for e in &errors {
                tracing::error!(project, error = %e, "rollups: a recount met an unreadable block");
            }
            *p.problem.lock() = Some(last.clone());
        }
    }

    /// Forgets a deleted project's rollups.
    pub fn remove_project(&self, project: ProjectId) {
        let _ = self.catch_up();
        self.reg.projects.write().remove(&project);
    }

    /// Refuses when rollups are off; otherwise waits until they count every row applied.
    fn check(&self) -> Result<()> {
        if self.enabled() {
            self.catch_up()
        } else {
            Err(EngineError::Unavailable(
                "metrics are unavailable: rollups are disabled in the engine configuration".into(),
            ))
        }
    }

    fn check_limit(limit: usize) -> Result<()> {
        if limit == 0 || limit > MAX_LIMIT {
            return Err(Invalid::Limit { max: MAX_LIMIT }.into());
        }
        Ok(())
    }

    /// See `Engine::log_volume`.
    pub fn log_volume(
        &self,
        project: ProjectId,
        now_us: i64,
        hours: u32,
        bucket: Bucket,
    ) -> Result<Vec<VolumeBucket>> {
        self.check()?;
        let (start, _, n) = bucket_window(now_us, hours, bucket)?;
        let size = bucket.micros();
        let counts = match self.get(project) {
            Some(p) => p.rollup.lock().levels.series(start, size, n),
            None => vec![[0; 5]; n],
        };
        Ok(counts
            .into_iter()
            .enumerate()
            .map(|(i, by_level)| VolumeBucket {
                start_us: start + i as i64 * size,
                total: by_level.iter().sum(),
                by_level,
            })
            .collect())
    }

    /// See `Engine::error_rate`.
    pub fn error_rate(
        &self,
        project: ProjectId,
        now_us: i64,
        hours: u32,
        bucket: Bucket,
    ) -> Result<Vec<ErrorRateBucket>> {
        Ok(self
            .log_volume(project, now_us, hours, bucket)?
            .into_iter()
            .map(|b| ErrorRateBucket {
                start_us: b.start_us,
                total: b.total,
                errors: b.by_level[3] + b.by_level[4],
            })
            .collect())
    }

    /// The hour range `[start, end)` the ranked answers cover.
    fn hour_window(now_us: i64, hours: u32) -> Result<(i64, i64)> {
        let (start, end) = window(now_us, hours, HOUR_US)?;
        Ok((hour_of(start), hour_of(end)))
    }

    /// See `Engine::top_errors`.
    pub fn top_errors(
        &self,
        project: ProjectId,
        now_us: i64,
        hours: u32,
        limit: usize,
    ) -> Result<Vec<TopError>> {
        self.check()?;
        Self::check_limit(limit)?;
        let (start, end) = Self::hour_window(now_us, hours)?;
        Ok(match self.get(project) {
            Some(p) => errors::top(&p.rollup.lock().errors, start, end, limit),
            None => Vec::new(),
        })
    }

    /// See `Engine::patterns`.
    pub fn patterns(
        &self,
        project: ProjectId,
        now_us: i64,
        hours: u32,
        limit: usize,
    ) -> Result<Vec<Pattern>> {
        self.check()?;
        Self::check_limit(limit)?;
        let (start, end) = Self::hour_window(now_us, hours)?;
        let Some(p) = self.get(project) else {
            return Ok(Vec::new());
        };
        let templates: Vec<(Box<str>, groups::Agg)> = {
            let g = p.rollup.lock();
            g.patterns
                .entries()
                .filter_map(|e| {
                    let a = e.window(start, end);
                    (a.count > 0).then(|| (e.key.clone(), a))
                })
                .collect()
        };
        Ok(patterns::cluster(templates, limit))
    }

    /// See `Engine::rollup_status`.
    pub fn status(&self, project: ProjectId) -> RollupStatus {
        let _ = self.catch_up();
        let Some(p) = self.get(project) else {
            return RollupStatus::default();
        };
        let problem = p.problem.lock().clone();
        let g = p.rollup.lock();
        RollupStatus {
            fingerprints: g.errors.len(),
            patterns: g.patterns.len(),
            fingerprints_exact_after_us: g.errors.evicted_through(),
            patterns_exact_after_us: g.patterns.evicted_through(),
            approx_bytes: g.approx_bytes(),
            problem,
        }
    }
}
