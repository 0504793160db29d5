//! Reads answered beside scans: full-text search and the metrics rollups.

use std::sync::Arc;

use super::*;

impl Engine {
    /// Opens a live tail of `project`: every log applied from now on, in the order it
    /// became durable, queued for the reader up to `bound` (past it the reader skips to the
    /// newest and is told how many it missed; see [`crate::tail`]). `None` when the project
    /// already has `max_open` tails.
    pub fn open_tail(
        &self,
        project: ProjectId,
        bound: usize,
        max_open: usize,
    ) -> Option<crate::tail::Tail> {
        self.inner.tails.open(project, bound, max_open)
    }

    /// Logs of `project` whose sequence number is above `after` and that were ingested at
    /// or after `min_ingested_at`, in sequence order (the order they became durable): what a
    /// live tail that last saw `after` missed. At most the newest `limit` of them, with the
    /// count of older ones left out. Segments and blocks are pruned by their sequence ranges.
    pub fn since(
        &self,
        project: ProjectId,
        after: u64,
        min_ingested_at: i64,
        limit: usize,
    ) -> Result<(Vec<LogRecord>, usize)> {
        let Some(st) = self.inner.get_project(project) else {
            return Ok((Vec::new(), 0));
        };
        let keep = |r: &LogRecord| r.seq > after && r.ingested_at >= min_ingested_at;
        let mut out: Vec<LogRecord> = Vec::new();
        let (frozen, segs) = {
            let g = st.read();
            out.extend(g.active.iter().filter(|r| keep(r)).cloned());
            (g.frozen.clone(), g.segments.clone())
        };
        for m in &frozen {
            out.extend(m.iter().filter(|r| keep(r)).cloned());
        }
        for seg in &segs {
            for (i, b) in seg.blocks.iter().enumerate() {
                if b.max_seq <= after {
                    continue;
                }
                let rows = query::cached_block(&self.inner.cache, seg, i)?;
                out.extend(rows.iter().filter(|r| keep(r)).cloned());
            }
        }
        out.sort_unstable_by_key(|r| r.seq);
        out.dedup_by_key(|r| r.seq);
        let skipped = out.len().saturating_sub(limit);
        out.drain(..skipped);
        Ok((out, skipped))
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
        let _span = tracing::trace_span!("search", project).entered();
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

    /// How many documents the search index holds for `expr` in a project (up to 100,000),
    /// before any log is read: what the index still knows, for tests and inspection.
    pub fn index_documents(&self, project: ProjectId, expr: &search::Expr) -> Result<usize> {
        let Some(ix) = &self.inner.search else {
            return Ok(0);
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let (keys, _, _) = ix.candidates(
            project,
            Some(expr),
            &query::Filter::default(),
            std::ops::Bound::Unbounded,
            std::ops::Bound::Unbounded,
            true,
            100_000,
            1_000_000,
            deadline,
        )?;
        Ok(keys.len())
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

    /// Whether the rollup reads ([`Engine::error_rate`], [`Engine::log_volume`],
    /// [`Engine::top_errors`], [`Engine::patterns`]) would answer now without waiting for the
    /// rollup thread to count what was appended: they are then microseconds of work in
    /// memory, cheap enough for a thread that must not block. (A batch appended between this
    /// call and the read is still waited for.)
    pub fn rollups_caught_up(&self) -> bool {
        self.inner.rollups.caught_up()
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
