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
//! * logs are counted in as they become readable (the WAL writer's apply, WAL replay) and
//!   under the same project lock as the memtable insert, so late and out-of-order logs land
//!   in the bucket of their own timestamp;
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
//! On the append path (the WAL writer thread): per log, one level increment in a per-hour
//! array, one template of the message (one pass over it, no allocation) with one hash-map
//! update, and for logs with a fingerprint one more hash-map update. Memory per project:
//! 1,240 bytes per UTC hour that holds logs, plus per group its key and title and 56 bytes
//! per hour in which it has logs.

pub mod bucket;
pub mod errors;
pub mod groups;
pub mod levels;
pub mod patterns;
pub mod project;
pub mod stored;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

pub use bucket::Bucket;
pub use errors::TopError;
pub use patterns::Pattern;

use crate::error::{EngineError, Result};
use crate::memtable::Memtable;
use crate::model::{LogRecord, ProjectId};
use crate::query::MAX_LIMIT;
use crate::segment::cache::BlockCache;
use crate::segment::SegmentReader;
use bucket::{bucket_window, hour_of, window, HOUR_US};
use project::ProjectRollup;

/// Settings of the rollups (part of `EngineConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupConfig {
    /// Maintain rollups at all. Off, the append path skips them and every metrics method
    /// answers `EngineError::Invalid`; for measuring what they cost (`benches/rollups.rs`).
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

/// Every project's rollups. Owned by the engine.
pub struct Rollups {
    cfg: RollupConfig,
    projects: RwLock<HashMap<ProjectId, Arc<Project>>>,
}

impl Rollups {
    pub fn new(cfg: RollupConfig) -> Rollups {
        Rollups {
            cfg,
            projects: RwLock::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    fn get(&self, project: ProjectId) -> Option<Arc<Project>> {
        self.projects.read().get(&project).cloned()
    }

    fn get_or_create(&self, project: ProjectId) -> Arc<Project> {
        if let Some(p) = self.get(project) {
            return p;
        }
        self.projects
            .write()
            .entry(project)
            .or_insert_with(|| Arc::new(self.fresh(ProjectRollup::new(&self.cfg))))
            .clone()
    }

    fn fresh(&self, r: ProjectRollup) -> Project {
        Project {
            rollup: Mutex::new(r),
            problem: Mutex::new(None),
        }
    }

    /// Counts in a batch of a project's logs as they become readable. The caller holds the
    /// project's state lock (see [`stored`] on lock order); rows come in sequence order.
    pub fn apply(&self, project: ProjectId, rows: &[LogRecord]) {
        if !self.cfg.enabled {
            return;
        }
        let p = self.get_or_create(project);
        let mut g = p.rollup.lock();
        for r in rows {
            g.add(r, r.seq, true);
        }
    }

    /// Replaces all rollups with a count of these projects' segments (at open, before the
    /// WAL replay counts the unsealed logs in). Reads every block once, on all cores.
    pub fn rebuild(&self, projects: Vec<(ProjectId, Vec<Arc<SegmentReader>>)>) {
        if !self.cfg.enabled {
            return;
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (built, errors) = stored::build_many(&self.cfg, projects, threads);
        for e in &errors {
            tracing::error!(error = %e, "rollups: a block could not be read; its logs are not counted");
        }
        let mut map = self.projects.write();
        map.clear();
        for (p, r) in built {
            map.insert(p, Arc::new(self.fresh(r)));
        }
    }

    /// Counts out the logs of segments retention dropped (call after they left the
    /// project's segment list, before their files go) and recounts what that leaves
    /// uncertain from the logs still stored. Call under the engine's maintenance lock.
    pub fn retire<F: FnOnce(&mut dyn FnMut(&Memtable))>(
        &self,
        project: ProjectId,
        dropped: &[Arc<SegmentReader>],
        remaining: &[Arc<SegmentReader>],
        frozen: &[Arc<Memtable>],
        cache: &BlockCache,
        active: F,
    ) {
        if !self.cfg.enabled || dropped.is_empty() {
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
        let errors = stored::retire(&self.cfg, &p.rollup, dropped, stored);
        if let Some(last) = errors.last() {
            for e in &errors {
                tracing::error!(project, error = %e, "rollups: retention met an unreadable block");
            }
            *p.problem.lock() = Some(last.clone());
        }
    }

    /// Forgets a deleted project's rollups.
    pub fn remove_project(&self, project: ProjectId) {
        self.projects.write().remove(&project);
    }

    fn check(&self) -> Result<()> {
        if self.cfg.enabled {
            Ok(())
        } else {
            Err(EngineError::Invalid(
                "metrics are unavailable: rollups are disabled in the engine configuration".into(),
            ))
        }
    }

    fn check_limit(limit: usize) -> Result<()> {
        if limit == 0 || limit > MAX_LIMIT {
            return Err(EngineError::Invalid(format!(
                "limit must be 1 to {MAX_LIMIT}"
            )));
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
