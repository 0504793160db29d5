//! The query side of the index: up to k candidate keys for a search, newest (or oldest)
//! first, walking index segments in time order and, within one, windows of documents that
//! can hold a better candidate than the page's worst.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocSet, Term};

use super::{tantivy_err, SearchIndex};
use crate::error::Result;
use crate::memtable::Key;
use crate::model::ProjectId;
use crate::query::Filter;
use crate::search::parser::Expr;

/// An index segment's timestamp and sequence-number columns, and the newest timestamp in
/// each run of [`DOC_BLOCK`] documents (`i64::MIN` for a run without one), so that a
/// newest-first search can skip the runs that cannot hold a better candidate.
pub(super) struct SegmentColumns {
    ts: tantivy::columnar::Column<i64>,
    seq: tantivy::columnar::Column<u64>,
    run_max_ts: Vec<i64>,
}

/// Documents per run in [`SearchIndex`]'s per-segment timestamp summary. Documents are in
/// the order they were indexed, which is close to timestamp order, so the newest logs sit
/// in the last runs of a segment.
#[cfg(not(feature = "testing"))]
const DOC_BLOCK: u32 = 1024;
/// Small under test, so the small corpora of the search tests span many runs.
#[cfg(feature = "testing")]
const DOC_BLOCK: u32 = 16;

impl SearchIndex {
    /// Up to `k` candidate keys, best first, for a project's logs that may match `expr` and
    /// `filter` within the key bounds. Returns the keys, whether the index may hold more, and
    /// how many documents were examined.
    #[allow(clippy::too_many_arguments)]
    pub fn candidates(
        &self,
        project: ProjectId,
        expr: Option<&Expr>,
        filter: &Filter,
        lo: Bound<Key>,
        hi: Bound<Key>,
        desc: bool,
        k: usize,
        max_examined: u64,
        deadline: Instant,
    ) -> Result<(Vec<Key>, bool, u64)> {
        let f = &self.fields;
        let mut must: Vec<Box<dyn Query>> = vec![Box::new(TermQuery::new(
            Term::from_field_u64(f.project, project),
            IndexRecordOption::Basic,
        ))];
        if let Some(q) = expr.and_then(|e| self.translate(e)) {
            must.push(q);
        }
        must.extend(self.filter_queries(filter));
        let query = BooleanQuery::new(must.into_iter().map(|q| (Occur::Must, q)).collect());
        let searcher = self.reader.searcher();
        let weight = query
            .weight(tantivy::query::EnableScoring::disabled_from_searcher(
                &searcher,
            ))
            .map_err(|e| tantivy_err(&self.dir, e))?;
        let live: Vec<tantivy::index::SegmentId> = (searcher.segment_readers().iter())
            .map(|s| s.segment_id())
            .collect();
        let mut segs: Vec<(i64, i64, &tantivy::SegmentReader, Arc<SegmentColumns>)> = Vec::new();
        for s in searcher.segment_readers() {
            let cols = self.columns(s, &live)?;
            segs.push((cols.ts.min_value(), cols.ts.max_value(), s, cols));
        }
        if desc {
            segs.sort_by_key(|s| std::cmp::Reverse(s.1));
        } else {
            segs.sort_by_key(|s| s.0);
        }
        let mut top: Vec<Key> = Vec::new();
        let mut examined = 0u64;
        let mut more = false;
        // A log indexed twice (a re-index racing an append) must still be one candidate.
        let sort = |v: &mut Vec<Key>| {
            if desc {
                v.sort_unstable_by(|a, b| b.cmp(a));
            } else {
                v.sort_unstable();
            }
            v.dedup();
        };
        for (min_ts, max_ts, seg, cols) in segs {
            if top.len() >= k {
                let t = top[k - 1].0;
                if (desc && max_ts < t) || (!desc && min_ts > t) {
                    // Later segments may hold candidates past the k kept.
                    more = true;
                    break;
                }
            }
            if examined >= max_examined {
                more = true;
                break;
            }
            let (ts_col, seq_col) = (&cols.ts, &cols.seq);
            let alive = seg.alive_bitset();
            // Newest first: the segment's runs of documents from the last, each skipped when
            // its newest timestamp is older than the k-th candidate kept. Oldest first: one
            // pass in document order.
            // Newest first: the segment's documents in windows from the last, each skipped
            // when its newest timestamp is older than the k-th candidate kept. A window is
            // one run, then four times the one before (each needs a scorer of its own: a few
            // per segment, however rarely the query matches). Oldest first: one pass.
            let windows: Vec<(u32, u32, i64)> = if desc {
                let m = &cols.run_max_ts;
                let mut v = Vec::new();
                let (mut end, mut runs) = (seg.max_doc(), 1u32);
                while end > 0 {
                    let last = (end - 1) / DOC_BLOCK;
                    let first = last.saturating_sub(runs - 1);
                    let newest = m[first as usize..=last as usize].iter().max();
                    v.push((first * DOC_BLOCK, end, newest.copied().unwrap_or(i64::MAX)));
                    end = first * DOC_BLOCK;
                    runs = runs.saturating_mul(4);
                }
                v
            } else {
                vec![(0, seg.max_doc(), i64::MAX)]
            };
            'windows: for (start, end, newest) in windows {
                if desc && top.len() >= k {
                    sort(&mut top);
                    if top.len() > k {
                        more = true;
                        top.truncate(k);
                    }
                    // Sorting dedups: there may be fewer than k now.
                    if top.len() >= k && newest < top[k - 1].0 {
                        more = true;
                        continue;
                    }
                }
                let mut scorer = weight
                    .scorer(seg, 1.0)
                    .map_err(|e| tantivy_err(&self.dir, e))?;
                // A new scorer stands on its first match; seek only forward of it.
                let mut doc = scorer.doc();
                if doc < start {
                    doc = scorer.seek(start);
                }
                while doc != tantivy::TERMINATED && doc < end {
                    examined += 1;
                    if examined.is_multiple_of(4096)
                        && (examined >= max_examined || Instant::now() >= deadline)
                    {
                        more = true;
                        break 'windows;
                    }
                    if alive.is_none_or(|a| a.is_alive(doc)) {
                        if let (Some(ts), Some(seq)) = (ts_col.first(doc), seq_col.first(doc)) {
                            let key = (ts, seq);
                            if crate::query::in_bounds(key, &lo, &hi) {
                                top.push(key);
                            }
                        }
                    }
                    if top.len() >= k * 4 {
                        sort(&mut top);
                        top.truncate(k);
                        more = true;
                    }
                    doc = scorer.advance();
                }
            }
            sort(&mut top);
            if top.len() > k {
                more = true;
                top.truncate(k);
            }
        }
        Ok((top, more, examined))
    }

    /// The columns a search reads of `seg`, opened once per segment (opening a column
    /// decodes its block index: done per query, that was most of a search's time at 10 M
    /// logs). Entries of segments no longer in `live` are dropped.
    fn columns(
        &self,
        seg: &tantivy::SegmentReader,
        live: &[tantivy::index::SegmentId],
    ) -> Result<Arc<SegmentColumns>> {
        let id = seg.segment_id();
        if let Some(c) = self.columns.lock().get(&id) {
            return Ok(c.clone());
        }
        let ff = seg.fast_fields();
        let ts = ff.i64("ts").map_err(|e| tantivy_err(&self.dir, e))?;
        let seq = ff.u64("seq").map_err(|e| tantivy_err(&self.dir, e))?;
        let mut run_max_ts = vec![i64::MIN; seg.max_doc().div_ceil(DOC_BLOCK) as usize];
        for doc in 0..seg.max_doc() {
            if let Some(t) = ts.first(doc) {
                let m = &mut run_max_ts[(doc / DOC_BLOCK) as usize];
                *m = (*m).max(t);
            }
        }
        let cols = Arc::new(SegmentColumns {
            ts,
            seq,
            run_max_ts,
        });
        let mut cache = self.columns.lock();
        if cache.len() >= live.len() {
            cache.retain(|k, _| live.contains(k));
        }
        cache.insert(id, cols.clone());
        Ok(cols)
    }
}
