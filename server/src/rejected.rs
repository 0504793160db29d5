//! The rejected-logs list (the dead-letter list): every log item an ingest route refused on
//! its own (validation, mapping, retention window, quota), with its text and the reason,
//! kept per project in `<data-dir>/rejected.redb`: the newest 10,000 items of the last
//! 7 days, across restarts.
//!
//! Recording never waits and never slows accepted logs: requests hand their refused items
//! to one writer thread through a queue bounded in bytes ([`MAX_QUEUED_BYTES`]); past it,
//! items are dropped and counted (`ledger_rejected_dropped_total`), never queued. The file
//! is bounded too: an item's text is cut to [`MAX_RAW_BYTES`], a project keeps at most
//! [`KEEP_PER_PROJECT`] items, and a separate file keeps its write transactions off the
//! metadata store that logins and key checks use.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

/// `(project, sequence)` → item (JSON). The sequence only grows, so a range is time order.
const ITEMS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("rejected");

/// Items kept per project (the oldest go first).
pub const KEEP_PER_PROJECT: u64 = 10_000;
/// How long an item is kept.
pub const KEEP_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;
/// An item's text is cut to this many bytes (at a character boundary).
pub const MAX_RAW_BYTES: usize = 16 * 1024;
/// Items waiting for the writer, all requests together; past it new items are dropped.
pub const MAX_QUEUED_BYTES: usize = 32 << 20;
/// Items written in one transaction at most.
const MAX_ITEMS_PER_WRITE: usize = 5_000;
/// How often expired items of every project are swept (reads skip them in between).
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// One refused item.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Item {
    /// µs since the epoch.
    pub at: i64,
    /// The route template that refused it (`/api/v1/ingest/batch`, `/otlp/v1/logs`, ...).
    pub route: String,
    /// Its position in the request.
    pub index: usize,
    pub code: String,
    pub message: String,
    /// The item as sent (for a door whose items are not JSON text, as mapped onto the Log
    /// schema), cut to [`MAX_RAW_BYTES`].
    pub raw: String,
}

impl Item {
    fn size(&self) -> usize {
        self.route.len() + self.code.len() + self.message.len() + self.raw.len() + 64
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A failure of `rejected.redb`: the server's fault, never the client's.
#[derive(Debug, thiserror::Error)]
#[error("rejected.redb: {0}")]
pub struct RejectedError(Box<redb::Error>);

impl From<redb::Error> for RejectedError {
    fn from(e: redb::Error) -> Self {
        RejectedError(Box::new(e))
    }
}

macro_rules! into_redb_error {
    ($($t:ty),*) => {$(
        impl From<$t> for RejectedError {
            fn from(e: $t) -> Self {
                RejectedError(Box::new(e.into()))
            }
        }
    )*};
}
into_redb_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A page of items, newest first, and the cursor of the next page.
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<u64>,
}

enum Msg {
    Items(u64, Vec<Item>),
    Forget(u64),
    Flush(Sender<()>),
    Stop,
}

/// The list: a handle to record into (from any request) and to read from.
pub struct RejectedList {
    db: Arc<Database>,
    tx: Sender<Msg>,
    queued: Arc<AtomicUsize>,
    dropped: AtomicU64,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl RejectedList {
    /// Opens (or creates) `<dir>/rejected.redb` and starts its writer thread.
    pub fn open(dir: &Path) -> Result<RejectedList, RejectedError> {
        let db = Arc::new(Database::create(dir.join("rejected.redb"))?);
        {
            let tx = db.begin_write()?;
            tx.open_table(ITEMS)?;
            tx.commit()?;
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let queued = Arc::new(AtomicUsize::new(0));
        let writer = Writer {
            db: db.clone(),
            queued: queued.clone(),
            counts: HashMap::new(),
            next_seq: last_seq(&db)? + 1,
            last_sweep: Instant::now() - SWEEP_EVERY,
        };
        let handle = std::thread::Builder::new()
            .name("ledger-rejected".into())
            .spawn(move || {
                // Requests come first: under a flood of refused items the writer falls
                // behind and drops (counted), it never takes CPU from accepted logs.
                ledger_engine::lower_priority();
                writer.run(rx)
            })
            .map_err(|e| RejectedError::from(redb::Error::Io(e)))?;
        Ok(RejectedList {
            db,
            tx,
            queued,
            dropped: AtomicU64::new(0),
            writer: Mutex::new(Some(handle)),
        })
    }

    /// Hands a request's refused items to the writer; never waits. Past the queue's byte
    /// budget the items are dropped and counted.
    pub fn record(&self, project: u64, items: Vec<Item>) {
        if items.is_empty() {
            return;
        }
        let size: usize = items.iter().map(Item::size).sum();
        let before = self.queued.fetch_add(size, Ordering::AcqRel);
        if before + size > MAX_QUEUED_BYTES || self.tx.send(Msg::Items(project, items)).is_err() {
            self.queued.fetch_sub(size, Ordering::AcqRel);
            self.dropped.fetch_add(size as u64, Ordering::Relaxed);
        }
    }

    /// Items dropped because the writer was behind (in bytes), since the start.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Removes every item of a deleted project.
    pub fn forget(&self, project: u64) {
        let _ = self.tx.send(Msg::Forget(project));
    }

    /// Waits until everything recorded so far is written (blocking).
    pub fn flush(&self) {
        self.written_within(None);
    }

    /// Waits until everything recorded so far is written, for at most `wait` (blocking):
    /// a read then sees the items of every answer sent before it, unless the writer is that
    /// far behind (a flood of refused items, which it drops anyway).
    pub fn catch_up(&self, wait: Duration) {
        self.written_within(Some(wait));
    }

    fn written_within(&self, wait: Option<Duration>) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = match wait {
                Some(w) => rx.recv_timeout(w).map_err(|_| ()),
                None => rx.recv().map_err(|_| ()),
            };
        }
    }

    /// Up to `limit` of a project's items older than sequence `before` (all when `None`),
    /// newest first, leaving out those past the 7 days (blocking).
    pub fn page(
        &self,
        project: u64,
        limit: usize,
        before: Option<u64>,
        now: i64,
    ) -> Result<Page, RejectedError> {
        let rtx = self.db.begin_read()?;
        let t = rtx.open_table(ITEMS)?;
        let mut page = Page::default();
        let mut last = None;
        for row in t
            .range((project, 0)..(project, before.unwrap_or(u64::MAX)))?
            .rev()
        {
            let (k, v) = row?;
            if stamp(v.value()) < now - KEEP_MICROS {
                break;
            }
            let Some(item) = decode(v.value()) else {
                continue;
            };
            if page.items.len() == limit {
                page.next = last;
                break;
            }
            page.items.push(item);
            last = Some(k.value().1);
        }
        Ok(page)
    }

    /// Writes what is queued and stops the writer.
    pub fn close(&self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(h) = self.writer.lock().take() {
            let _ = h.join();
        }
    }
}

/// A stored item: its time (8 bytes, little endian), so a sweep reads no JSON, then the
/// item as JSON.
fn encode(item: &Item) -> Vec<u8> {
    let mut out = item.at.to_le_bytes().to_vec();
    let _ = serde_json::to_writer(&mut out, item);
    out
}

fn stamp(v: &[u8]) -> i64 {
    v.get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(i64::MIN, i64::from_le_bytes)
}

fn decode(v: &[u8]) -> Option<Item> {
    serde_json::from_slice(v.get(8..)?).ok()
}

fn last_seq(db: &Database) -> Result<u64, RejectedError> {
    let rtx = db.begin_read()?;
    let t = rtx.open_table(ITEMS)?;
    let mut last = 0;
    // Keys sort by project first: the largest sequence is the last key of some project.
    // One pass over the projects' last keys would need an index; the table is bounded
    // (10,000 per project), so a scan at open is cheap enough.
    for row in t.iter()? {
        let (k, _) = row?;
        last = last.max(k.value().1);
    }
    Ok(last)
}

struct Writer {
    db: Arc<Database>,
    queued: Arc<AtomicUsize>,
    /// Items stored per project, learnt on the project's first write since open.
    counts: HashMap<u64, u64>,
    next_seq: u64,
    last_sweep: Instant,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        loop {
            let first = match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    self.sweep_if_due();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut batch = vec![first];
            let mut items = 0;
            while items < MAX_ITEMS_PER_WRITE {
                match rx.try_recv() {
                    Ok(m) => {
                        if let Msg::Items(_, v) = &m {
                            items += v.len();
                        }
                        batch.push(m);
                    }
                    Err(_) => break,
                }
            }
            let stop = batch.iter().any(|m| matches!(m, Msg::Stop));
            if let Err(e) = self.write(&mut batch) {
                tracing::error!(error = %e, "could not write the rejected-logs list");
            }
            for m in batch {
                if let Msg::Flush(done) = m {
                    let _ = done.send(());
                }
            }
            self.sweep_if_due();
            if stop {
                return;
            }
        }
    }

    fn write(&mut self, batch: &mut [Msg]) -> Result<(), RejectedError> {
        let tx = self.db.begin_write()?;
        let mut released = 0;
        {
            let mut t = tx.open_table(ITEMS)?;
            for m in batch.iter_mut() {
                match m {
                    Msg::Items(project, items) => {
                        let project = *project;
                        if let std::collections::hash_map::Entry::Vacant(v) =
                            self.counts.entry(project)
                        {
                            v.insert(t.range((project, 0)..=(project, u64::MAX))?.count() as u64);
                        }
                        let items_len = items.len() as u64;
                        for item in items.drain(..) {
                            released += item.size();
                            t.insert((project, self.next_seq), encode(&item).as_slice())?;
                            self.next_seq += 1;
                        }
                        let count = self.counts.get_mut(&project).expect("counted above");
                        *count += items_len;
                        let stored = *count;
                        if stored > KEEP_PER_PROJECT {
                            let extra = (stored - KEEP_PER_PROJECT) as usize;
                            let old: Vec<u64> = t
                                .range((project, 0)..=(project, u64::MAX))?
                                .take(extra)
                                .map(|r| r.map(|(k, _)| k.value().1))
                                .collect::<Result<_, _>>()?;
                            for seq in old {
                                t.remove((project, seq))?;
                            }
                            *count = KEEP_PER_PROJECT;
                        }
                    }
                    Msg::Forget(project) => {
                        let project = *project;
                        t.retain_in((project, 0)..=(project, u64::MAX), |_, _| false)?;
                        self.counts.remove(&project);
                    }
                    Msg::Flush(_) | Msg::Stop => {}
                }
            }
        }
        tx.commit()?;
        self.queued.fetch_sub(released, Ordering::AcqRel);
        Ok(())
    }

    /// Removes items past the 7 days, every project, at most once per [`SWEEP_EVERY`].
    fn sweep_if_due(&mut self) {
        if self.last_sweep.elapsed() < SWEEP_EVERY {
            return;
        }
        self.last_sweep = Instant::now();
        let oldest = ledger_engine::now_micros() - KEEP_MICROS;
        let swept = (|| -> Result<(), RejectedError> {
            let tx = self.db.begin_write()?;
            {
                let mut t = tx.open_table(ITEMS)?;
                t.retain(|_, v| stamp(v) >= oldest)?;
            }
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = swept {
            tracing::error!(error = %e, "could not sweep the rejected-logs list");
        }
        // Counts are learnt again on each project's next write.
        self.counts.clear();
    }
}
