//! Scans: the filters a caller can ask for, the order, offsets and cursors, and the merge of
//! memtables and segments into one page in key order.

use std::ops::Bound;
use std::sync::Arc;

use crate::error::{Invalid, Result};
use crate::memtable::{Key, Memtable};
use crate::model::{Field, LogId, LogRecord};
use crate::segment::cache::BlockCache;
use crate::segment::{BlockMeta, SegmentReader};

/// Largest page a scan returns, and the deepest offset it accepts.
pub const MAX_LIMIT: usize = 1_000;
pub const MAX_OFFSET: usize = 10_000;

/// An exact match on an attribute: a dotted path into the attributes object, and the value's
/// text (a string matches itself; a number or boolean matches its JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrMatch {
    pub path: Vec<String>,
    pub value: String,
}

/// What a scan keeps. Every `Some` must match; an empty filter keeps every log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Half-open time range `[start, end)` in µs.
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// Bit masks over the enum values (bit `l` for level `l`).
    pub levels: Option<u8>,
    pub log_types: Option<u8>,
    pub importances: Option<u8>,
    /// Exact matches on string fields, e.g. `(Field::Service, "billing")`.
    pub fields: Vec<(Field, String)>,
    pub attrs: Vec<AttrMatch>,
}

impl Filter {
    /// True when the record passes every condition.
    pub fn matches(&self, r: &LogRecord) -> bool {
        let ts = r.log.timestamp;
        if self.start.is_some_and(|s| ts < s) || self.end.is_some_and(|e| ts >= e) {
            return false;
        }
        let bit = |m: Option<u8>, v: u8| m.is_none_or(|m| m & (1 << v) != 0);
        if !bit(self.levels, r.log.level as u8)
            || !bit(self.log_types, r.log.log_type as u8)
            || !bit(self.importances, r.log.importance as u8)
        {
            return false;
        }
        if !self
            .fields
            .iter()
            .all(|(f, v)| r.get(*f) == Some(v.as_str()))
        {
            return false;
        }
        if self.attrs.is_empty() {
            return true;
        }
        let Some(text) = r.get(Field::Attributes) else {
            return false;
        };
        let Ok(obj) = serde_json::from_str::<serde_json::Value>(text) else {
            return false;
        };
        self.attrs.iter().all(|a| attr_matches(&obj, a))
    }

    /// False when nothing in a block with this metadata can match.
    fn block_may_match(&self, b: &BlockMeta) -> bool {
        let ok = |m: Option<u8>, have: u8| m.is_none_or(|m| m & have != 0);
        ok(self.levels, b.level_mask)
            && ok(self.log_types, b.type_mask)
            && ok(self.importances, b.importance_mask)
            && self.fields.iter().all(|(f, v)| b.may_contain(*f, v))
    }
}

/// Looks a dotted path up in a JSON object: nested objects first, then a literal dotted key.
pub fn lookup_attr<'a>(
    obj: &'a serde_json::Value,
    path: &[String],
) -> Option<&'a serde_json::Value> {
    let mut cur = obj;
    let mut nested = true;
    for p in path {
        match cur.get(p) {
            Some(v) => cur = v,
            None => {
                nested = false;
                break;
            }
        }
    }
    if nested {
        return Some(cur);
    }
    obj.get(path.join("."))
}

pub fn attr_matches(obj: &serde_json::Value, a: &AttrMatch) -> bool {
    match lookup_attr(obj, &a.path) {
        Some(serde_json::Value::String(s)) => *s == a.value,
        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
            let text = v.to_string();
            text == a.value
                || (v.is_number()
                    && a.value
                        .parse::<f64>()
                        .ok()
                        .is_some_and(|x| Some(x) == v.as_f64()))
        }
        Some(serde_json::Value::Null) => a.value == "null",
        _ => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Newest first (by timestamp, then by arrival).
    #[default]
    Desc,
    Asc,
}

/// Where the previous page ended. Its text form is opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub after: LogId,
    pub order: Order,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let o = match self.order {
            Order::Desc => 'd',
            Order::Asc => 'a',
        };
        format!("{o}{}", self.after)
    }
    pub fn decode(s: &str) -> Option<Cursor> {
        let order = match s.as_bytes().first()? {
            b'd' => Order::Desc,
            b'a' => Order::Asc,
            _ => return None,
        };
        Some(Cursor {
            after: LogId::parse(s.get(1..)?)?,
            order,
        })
    }
}

/// A condition beyond the filter, checked on each log (full-text search uses it).
#[derive(Clone)]
pub struct Predicate(pub Arc<dyn Fn(&LogRecord) -> bool + Send + Sync>);

impl std::fmt::Debug for Predicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Predicate")
    }
}

/// A scan: which logs, in which order, and which page.
#[derive(Debug, Clone, Default)]
pub struct ScanRequest {
    pub filter: Filter,
    pub order: Order,
    pub limit: usize,
    pub offset: usize,
    pub cursor: Option<Cursor>,
    pub predicate: Option<Predicate>,
    /// Stop after examining this many stored logs; the page is then flagged partial.
    pub max_examined: Option<u64>,
}

impl ScanRequest {
    /// True when a log passes the filter and the predicate.
    pub fn keeps(&self, r: &LogRecord) -> bool {
        self.filter.matches(r) && self.predicate.as_ref().is_none_or(|p| (p.0)(r))
    }
}

/// One page of a scan.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub logs: Vec<LogRecord>,
    /// Set when more logs follow; pass it back as the request's cursor.
    pub next_cursor: Option<Cursor>,
    /// True when `max_examined` stopped the scan early.
    pub partial: bool,
}

impl ScanRequest {
    fn check(&self) -> Result<()> {
        if self.limit == 0 || self.limit > MAX_LIMIT {
            return Err(Invalid::Limit { max: MAX_LIMIT }.into());
        }
        if self.offset > MAX_OFFSET {
            return Err(Invalid::Offset { max: MAX_OFFSET }.into());
        }
        if self.cursor.is_some_and(|c| c.order != self.order) {
            return Err(Invalid::CursorOrder.into());
        }
        Ok(())
    }

    /// Key bounds from the time range and the cursor.
    pub fn bounds(&self) -> (Bound<Key>, Bound<Key>) {
        let mut lo = self
            .filter
            .start
            .map_or(Bound::Unbounded, |s| Bound::Included((s, 0)));
        let mut hi = self
            .filter
            .end
            .map_or(Bound::Unbounded, |e| Bound::Excluded((e, 0)));
        if let Some(c) = self.cursor {
            let k = (c.after.timestamp, c.after.seq);
            match self.order {
                Order::Desc => hi = tighter_hi(hi, k),
                Order::Asc => lo = tighter_lo(lo, k),
            }
        }
        (lo, hi)
    }
}

fn tighter_hi(hi: Bound<Key>, k: Key) -> Bound<Key> {
    match hi {
        Bound::Excluded(h) | Bound::Included(h) if h <= k => hi,
        _ => Bound::Excluded(k),
    }
}

fn tighter_lo(lo: Bound<Key>, k: Key) -> Bound<Key> {
    match lo {
        Bound::Excluded(l) | Bound::Included(l) if l >= k => lo,
        _ => Bound::Excluded(k),
    }
}

pub fn in_bounds(k: Key, lo: &Bound<Key>, hi: &Bound<Key>) -> bool {
    (match lo {
        Bound::Included(l) => k >= *l,
        Bound::Excluded(l) => k > *l,
        Bound::Unbounded => true,
    }) && (match hi {
        Bound::Included(h) => k <= *h,
        Bound::Excluded(h) => k < *h,
        Bound::Unbounded => true,
    })
}

fn lo_ts(lo: &Bound<Key>) -> i64 {
    match lo {
        Bound::Included(k) | Bound::Excluded(k) => k.0,
        Bound::Unbounded => i64::MIN,
    }
}

fn hi_ts(hi: &Bound<Key>) -> i64 {
    match hi {
        Bound::Included(k) | Bound::Excluded(k) => k.0,
        Bound::Unbounded => i64::MAX,
    }
}

/// Reads a block through the cache.
pub fn cached_block(
    cache: &BlockCache,
    seg: &SegmentReader,
    i: usize,
) -> Result<Arc<Vec<LogRecord>>> {
    if let Some(rows) = cache.get(seg.id, i) {
        return Ok(rows);
    }
    let rows = Arc::new(seg.read_block(i)?);
    cache.put(seg.id, i, rows.clone(), decoded_bytes(&rows));
    Ok(rows)
}

/// The memory a decoded block holds: each row and each of its strings, with an allocator's
/// overhead per string. Counted from the rows, not from the block's size on disk: a
/// format 3 block's columns are smaller than what they decode to (a templated column keeps
/// each skeleton once), so the block's `raw_len` would let the cache outgrow its budget.
pub fn decoded_bytes(rows: &[LogRecord]) -> usize {
    rows.iter()
        .map(|r| {
            std::mem::size_of::<LogRecord>()
                + r.log
                    .fields
                    .iter()
                    .flatten()
                    .map(|s| s.capacity() + 16)
                    .sum::<usize>()
        })
        .sum()
}

/// A candidate row, held by its sort key and where it lives: a deep offset keeps up to
/// `offset + limit + 1` candidates, and holding each row (or the decoded block it sits in)
/// would let one request keep ~11,000 logs' worth of memory alive, over a gigabyte for large
/// logs. Only the page's own rows are read out at the end.
#[derive(Clone)]
pub struct Candidate {
    key: Key,
    at: Place,
}

#[derive(Clone)]
enum Place {
    /// A row of a memtable (shared with it: the memtable holds it anyway).
    Mem(Arc<LogRecord>),
    /// Row `row` of block `block` of the `seg`-th segment the scan visits.
    Block { seg: u32, block: u32, row: u32 },
}

impl Candidate {
    fn key(&self) -> Key {
        self.key
    }
}

/// The best `need` candidates so far, in scan order.
struct TopN {
    rows: Vec<Candidate>,
    need: usize,
    desc: bool,
}

impl TopN {
    fn full(&self) -> bool {
        self.rows.len() >= self.need
    }
    fn settle(&mut self) {
        if self.desc {
            self.rows
                .sort_unstable_by_key(|r| std::cmp::Reverse(r.key()));
        } else {
            self.rows.sort_unstable_by_key(Candidate::key);
        }
        self.rows.truncate(self.need);
    }
    /// The timestamp of the worst row kept, once full.
    fn threshold(&self) -> Option<i64> {
        self.full().then(|| self.rows[self.need - 1].key.0)
    }
}

/// The rows of one memtable a scan may return: at most as many as a page can use. Cheap
/// enough to run under the lock that guards a live memtable.
pub fn memtable_candidates(req: &ScanRequest, m: &Memtable) -> Vec<Candidate> {
    let need = req.offset + req.limit + 1;
    let (lo, hi) = req.bounds();
    m.range_shared(lo, hi, req.order == Order::Desc)
        .filter(|r| req.keeps(r))
        .take(need)
        .map(|r| Candidate {
            key: r.key(),
            at: Place::Mem(r.clone()),
        })
        .collect()
}

/// Runs a scan: `candidates` from the memtables (see [`memtable_candidates`]) merged with
/// what the segments hold.
pub fn scan(
    req: &ScanRequest,
    candidates: Vec<Candidate>,
    segments: &[Arc<SegmentReader>],
    cache: &BlockCache,
) -> Result<Page> {
    req.check()?;
    let need = req.offset + req.limit + 1;
    let desc = req.order == Order::Desc;
    let (lo, hi) = req.bounds();
    let mut top = TopN {
        rows: candidates,
        need,
        desc,
    };
    top.settle();
    let (lo_t, hi_t) = (lo_ts(&lo), hi_ts(&hi));
    let mut segs: Vec<&Arc<SegmentReader>> = segments
        .iter()
        .filter(|s| s.max_ts() >= lo_t && s.min_ts() <= hi_t)
        .collect();
    if desc {
        segs.sort_by_key(|s| std::cmp::Reverse(s.max_ts()));
    } else {
        segs.sort_by_key(|s| s.min_ts());
    }
    let mut examined = 0u64;
    let mut partial = false;
    'segments: for (seg_no, seg) in segs.iter().enumerate() {
        // Segments come in order of their best row: once the worst kept row beats this
        // segment's best, it beats every later segment's too.
        if let Some(t) = top.threshold() {
            if (desc && seg.max_ts() < t) || (!desc && seg.min_ts() > t) {
                break;
            }
        }
        let order: Box<dyn Iterator<Item = usize>> = if desc {
            Box::new((0..seg.blocks.len()).rev())
        } else {
            Box::new(0..seg.blocks.len())
        };
        for i in order {
            let b = &seg.blocks[i];
            if b.max_ts < lo_t || b.min_ts > hi_t || !req.filter.block_may_match(b) {
                continue;
            }
            if let Some(t) = top.threshold() {
                if (desc && b.max_ts < t) || (!desc && b.min_ts > t) {
                    break;
                }
            }
            if req.max_examined.is_some_and(|m| examined >= m) {
                partial = true;
                break 'segments;
            }
            let rows = cached_block(cache, seg, i)?;
            examined += rows.len() as u64;
            let pick = |i: &usize| {
                let r = &rows[*i];
                in_bounds(r.key(), &lo, &hi) && req.keeps(r)
            };
            let hold = |row: usize| Candidate {
                key: rows[row].key(),
                at: Place::Block {
                    seg: seg_no as u32,
                    block: i as u32,
                    row: row as u32,
                },
            };
            if desc {
                let picked = (0..rows.len()).rev().filter(pick).take(need);
                top.rows.extend(picked.map(hold));
            } else {
                let picked = (0..rows.len()).filter(pick).take(need);
                top.rows.extend(picked.map(hold));
            }
            top.settle();
        }
    }
    let more = top.rows.len() > req.offset + req.limit || partial;
    let mut logs = Vec::with_capacity(req.limit.min(top.rows.len()));
    for c in top.rows.into_iter().skip(req.offset).take(req.limit) {
        logs.push(match c.at {
            Place::Mem(r) => (*r).clone(),
            Place::Block { seg, block, row } => {
                // Through the cache: a page's rows mostly share a few blocks.
                let rows = cached_block(cache, segs[seg as usize], block as usize)?;
                rows[row as usize].clone()
            }
        });
    }
    let next_cursor = if more {
        logs.last().map(|r| Cursor {
            after: r.id(),
            order: req.order,
        })
    } else {
        None
    };
    Ok(Page {
        logs,
        next_cursor,
        partial,
    })
}

/// Finds one log by id in segments without scanning: segments and blocks are pruned by the
/// id's timestamp and sequence number, and the block is binary-searched.
pub fn get(
    id: LogId,
    segments: &[Arc<SegmentReader>],
    cache: &BlockCache,
) -> Result<Option<LogRecord>> {
    let key = (id.timestamp, id.seq);
    for seg in segments {
        if seg.min_ts() > id.timestamp || seg.max_ts() < id.timestamp {
            continue;
        }
        for (i, b) in seg.blocks.iter().enumerate() {
            if b.min_ts > id.timestamp
                || b.max_ts < id.timestamp
                || b.min_seq > id.seq
                || b.max_seq < id.seq
            {
                continue;
            }
            let rows = cached_block(cache, seg, i)?;
            if let Ok(at) = rows.binary_search_by_key(&key, |r| r.key()) {
                return Ok(Some(rows[at].clone()));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_block_counts_what_it_decodes_to_not_its_size_on_disk() {
        // 64 logs of one 2,000-byte message: format 3 stores the message once.
        let message = "the same long message ".repeat(90);
        let rows: Vec<LogRecord> = (0..64)
            .map(|i| LogRecord {
                seq: i + 1,
                ingested_at: 0,
                log: crate::model::NewLog::new(
                    1_000 + i as i64,
                    crate::model::Level::Info,
                    crate::model::LogType::Logger,
                    crate::model::Importance::Standard,
                )
                .with(Field::Message, message.clone()),
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.seg");
        let packing = crate::segment::Packing {
            block_rows: 64,
            zstd_level: 3,
            threads: 1,
        };
        crate::segment::write(&crate::fs::RealFs, &path, 1, 1, &rows, &packing).unwrap();
        let seg = SegmentReader::open(&crate::fs::RealFs, &path).unwrap();
        assert!((seg.blocks[0].raw_len as usize) < 64 * message.len() / 4);
        let cache = BlockCache::new(64 << 20);
        assert_eq!(cached_block(&cache, &seg, 0).unwrap().len(), 64);
        assert!(
            cache.bytes() >= 64 * message.len(),
            "counted at {} bytes",
            cache.bytes()
        );
    }

    #[test]
    fn cursor_text_round_trips() {
        let c = Cursor {
            after: LogId {
                timestamp: 123,
                seq: 9,
            },
            order: Order::Asc,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("x"), None);
        assert_eq!(Cursor::decode(""), None);
        assert_eq!(Cursor::decode("dé"), None);
    }

    #[test]
    fn attribute_paths_match_nested_and_typed_values() {
        let obj: serde_json::Value =
            serde_json::from_str(r#"{"http":{"status":500,"ok":false},"user":"u1","a.b":"flat"}"#)
                .unwrap();
        let m = |p: &str, v: &str| {
            attr_matches(
                &obj,
                &AttrMatch {
                    path: p.split('.').map(String::from).collect(),
                    value: v.into(),
                },
            )
        };
        assert!(m("http.status", "500"));
        assert!(!m("http.status", "501"));
        assert!(m("http.ok", "false"));
        assert!(m("user", "u1"));
        assert!(m("a.b", "flat"));
        assert!(!m("missing", "x"));
    }
}
