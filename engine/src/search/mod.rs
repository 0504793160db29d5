//! Full-text search: the query language (`parser`), its meaning on one log (`eval`), the
//! word rule both share (`tokenize`), and the tantivy index that narrows candidates (`index`).
//!
//! A search runs one of two ways. When the index can narrow the query, candidates come from
//! it newest-first (or oldest-first), each is read from storage by id and checked with
//! `eval`, in rounds until the page is full. When it cannot (a query made only of `NOT`s,
//! or a regex with no literal), a scan of the project's logs checks every log with `eval`.
//! Both are bounded: past the candidate cap or the time budget, the page comes back with
//! what was found and flagged partial.

pub mod eval;
pub mod index;
pub mod parser;
mod tokenize;

use std::time::{Duration, Instant};

pub use parser::{parse, Expr, ParseError};

use crate::error::{Invalid, Result};
use crate::memtable::Key;
use crate::model::{LogId, LogRecord};
use crate::query::{Cursor, Order, ScanRequest, MAX_LIMIT, MAX_OFFSET};

/// Limits on one search.
#[derive(Debug, Clone, Copy)]
pub struct SearchBudget {
    /// Most index documents or stored logs examined.
    pub max_examined: u64,
    /// Longest a search may run.
    pub time: Duration,
}

impl Default for SearchBudget {
    fn default() -> Self {
        SearchBudget {
            max_examined: 2_000_000,
            time: Duration::from_secs(2),
        }
    }
}

/// A page of search results.
#[derive(Debug, Clone, Default)]
pub struct SearchPage {
    pub logs: Vec<LogRecord>,
    pub next_cursor: Option<Cursor>,
    /// True when the budget ran out: `logs` are correct matches, but others may be missing.
    pub partial: bool,
}

/// Runs an index-driven search. `candidates(lo, hi, k, max)` returns up to `k` keys in scan
/// order from the index within bounds, whether more may follow, and how many documents it
/// examined; `fetch` reads a log by id from storage.
pub fn index_driven(
    expr: &Expr,
    req: &ScanRequest,
    budget: SearchBudget,
    mut candidates: impl FnMut(
        std::ops::Bound<Key>,
        std::ops::Bound<Key>,
        usize,
        u64,
    ) -> Result<(Vec<Key>, bool, u64)>,
    mut fetch: impl FnMut(LogId) -> Result<Option<LogRecord>>,
) -> Result<SearchPage> {
    check(req)?;
    let started = Instant::now();
    let need = req.offset + req.limit + 1;
    let desc = req.order == Order::Desc;
    let (mut lo, mut hi) = req.bounds();
    let mut found: Vec<LogRecord> = Vec::new();
    let mut k = (need * 2).max(64);
    let mut examined = 0u64;
    let mut partial = false;
    loop {
        let left = budget.max_examined.saturating_sub(examined);
        let (keys, more, n) = candidates(lo, hi, k, left)?;
        examined += n;
        for key in &keys {
            let id = LogId {
                timestamp: key.0,
                seq: key.1,
            };
            if let Some(r) = fetch(id)? {
                if req.filter.matches(&r) && eval::matches(expr, &r) {
                    found.push(r);
                }
            }
            if found.len() >= need {
                break;
            }
        }
        if found.len() >= need || !more || keys.is_empty() {
            break;
        }
        if examined >= budget.max_examined || started.elapsed() >= budget.time {
            partial = true;
            break;
        }
        // Continue strictly past the last candidate looked at.
        let last = *keys.last().expect("non-empty");
        if desc {
            hi = std::ops::Bound::Excluded(last);
        } else {
            lo = std::ops::Bound::Excluded(last);
        }
        k = (k * 2).min(100_000);
    }
    Ok(page(found, req, partial))
}

fn check(req: &ScanRequest) -> Result<()> {
    if req.limit == 0 || req.limit > MAX_LIMIT || req.offset > MAX_OFFSET {
        let bad = if req.offset > MAX_OFFSET {
            Invalid::Offset { max: MAX_OFFSET }
        } else {
            Invalid::Limit { max: MAX_LIMIT }
        };
        return Err(bad.into());
    }
    Ok(())
}

/// Cuts the found logs (in scan order) into the requested page.
pub fn page(found: Vec<LogRecord>, req: &ScanRequest, partial: bool) -> SearchPage {
    let more = found.len() > req.offset + req.limit;
    let logs: Vec<LogRecord> = found.into_iter().skip(req.offset).take(req.limit).collect();
    let next_cursor = if more || (partial && !logs.is_empty()) {
        logs.last().map(|r| Cursor {
            after: r.id(),
            order: req.order,
        })
    } else {
        None
    };
    SearchPage {
        logs,
        next_cursor,
        partial,
    }
}

#[cfg(test)]
mod tests;
