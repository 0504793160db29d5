//! The WAL writer thread and its group commit.
//!
//! Appending threads encode their rows, then send them down one channel. The writer takes
//! whatever has queued up (a group), gives each batch its sequence numbers, writes the whole
//! group with one `write`, makes it durable with one fsync, applies each batch to the
//! memtables, and only then wakes each appender. So an acknowledged batch is both durable and
//! readable, and batches of one project reach the memtable in sequence order.
//!
//! An fsync that fails is final: the writer turns read-only (the kernel may already have
//! dropped the dirty pages, so retrying could report success for lost data). A write that
//! fails for lack of space is undone (the file is cut back) and refused; later writes try again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use super::format::{self, EncodedBody};
use super::remover::Remover;
use crate::config::FsyncPolicy;
use crate::error::{EngineError, Result};
use crate::fs::{DataFile, FileSystem};
use crate::model::{LogRecord, ProjectId};

/// Receives batches once they are durable, and says how far the log may be truncated.
pub trait Applier: Send + Sync + 'static {
    /// Makes a durable batch readable and counts its usage (`usage_bytes`, when the batch
    /// counts towards daily usage). Called on the writer thread, in sequence order.
    fn apply(&self, project: ProjectId, records: Vec<LogRecord>, usage_bytes: Option<u64>);
    /// The lowest sequence number still held only in memory (not yet in a sealed segment),
    /// or `None` when everything applied is sealed.
    fn min_unsealed_seq(&self) -> Option<u64>;
}

/// Counters the writer keeps for `/metrics` and `/health/deep`.
#[derive(Default)]
pub struct WalStats {
    pub appends: AtomicU64,
    pub bytes_written: AtomicU64,
    pub fsyncs: AtomicU64,
    pub fsync_nanos: AtomicU64,
    /// Fsync latency histogram; bucket `i` counts fsyncs of at most `FSYNC_BUCKETS_US[i]` µs.
    pub fsync_buckets: [AtomicU64; FSYNC_BUCKETS_US.len()],
    pub files_deleted: AtomicU64,
}

/// Upper bounds (µs) of the fsync latency buckets.
pub const FSYNC_BUCKETS_US: [u64; 10] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000,
];

impl WalStats {
    fn record_fsync(&self, took: Duration) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.fsync_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        let us = took.as_micros() as u64;
        for (i, b) in FSYNC_BUCKETS_US.iter().enumerate() {
            if us <= *b {
                self.fsync_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// How many appends (and control messages) may wait for the writer.
pub const QUEUE_BATCHES: usize = 1024;

struct AppendReq {
    project: ProjectId,
    records: Vec<LogRecord>,
    body: EncodedBody,
    reply: Sender<Result<u64>>,
}

enum Msg {
    Append(AppendReq),
    Checkpoint,
    Sync(Sender<Result<()>>),
    /// Starts a new file (if the current one holds any batch), then answers.
    Rotate(Sender<()>),
}

/// Handle to the WAL writer thread. Dropping the last handle stops the thread.
pub struct Wal {
    tx: Mutex<Option<Sender<Msg>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    failed: Arc<Mutex<Option<String>>>,
    next_seq: Arc<AtomicU64>,
    pub stats: Arc<WalStats>,
}

struct Writer {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    policy: FsyncPolicy,
    file_limit: u64,
    file: Arc<dyn DataFile>,
    file_no: u64,
    file_len: u64,
    file_max_seq: u64,
    closed: Vec<(u64, u64)>,
    next_seq: Arc<AtomicU64>,
    failed: Arc<Mutex<Option<String>>>,
    dirty_since: Option<Instant>,
    applier: Arc<dyn Applier>,
    stats: Arc<WalStats>,
    buf: Vec<u8>,
    remover: Remover,
}

/// Where the writer starts: the state replay left.
pub struct Start {
    pub fs: Arc<dyn FileSystem>,
    pub dir: PathBuf,
    pub policy: FsyncPolicy,
    pub file_limit: u64,
    pub next_seq: u64,
    pub next_file_no: u64,
    pub closed: Vec<(u64, u64)>,
}

impl Wal {
    /// Starts the writer on a fresh WAL file after the ones replay read.
    pub fn start(start: Start, applier: Arc<dyn Applier>) -> Result<Wal> {
        let (file, file_no) = new_file(&*start.fs, &start.dir, start.next_file_no)?;
        let next_seq = Arc::new(AtomicU64::new(start.next_seq));
        let failed = Arc::new(Mutex::new(None));
        let stats = Arc::new(WalStats::default());
        let remover = Remover::start(start.fs.clone(), start.dir.clone(), stats.clone())
            .map_err(|e| EngineError::io("wal remover thread", e))?;
        // Bounded: when the writer falls behind, appenders wait here (each holds a blocking
        // thread and its batch), so the queue cannot grow past this many batches.
        let (tx, rx) = crossbeam_channel::bounded(QUEUE_BATCHES);
        let mut w = Writer {
            fs: start.fs,
            dir: start.dir,
            policy: start.policy,
            file_limit: start.file_limit,
            file,
            file_no,
            file_len: format::HEADER_LEN as u64,
            file_max_seq: 0,
            closed: start.closed,
            next_seq: next_seq.clone(),
            failed: failed.clone(),
            dirty_since: None,
            applier,
            stats: stats.clone(),
            buf: Vec::with_capacity(1 << 20),
            remover,
        };
        let thread = std::thread::Builder::new()
            .name("ledger-wal".into())
            .spawn(move || {
                // Every acknowledgement waits on this thread: it should get a core as soon
                // as a batch arrives, also while sealing and indexing keep both busy.
                crate::priority::shorten_slice();
                w.run(rx)
            })
            .map_err(|e| EngineError::io("wal writer thread", e))?;
        Ok(Wal {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            failed,
            next_seq,
            stats,
        })
    }

    fn send(&self, m: Msg) -> Result<()> {
        let tx = self.tx.lock().clone().ok_or(EngineError::Closed)?;
        tx.send(m).map_err(|_| EngineError::Closed)
    }

    /// Appends a batch; returns its first sequence number once it is durable (under the
    /// fsync policy) and applied. `records` carry `seq = 0`; the writer numbers them.
    pub fn append(
        &self,
        project: ProjectId,
        records: Vec<LogRecord>,
        body: EncodedBody,
    ) -> Result<u64> {
        if let Some(why) = self.failed.lock().clone() {
            return Err(EngineError::ReadOnly(why));
        }
        let (reply, rx) = crossbeam_channel::bounded(1);
        self.send(Msg::Append(AppendReq {
            project,
            records,
            body,
            reply,
        }))?;
        rx.recv().map_err(|_| EngineError::Closed)?
    }

    /// Asks the writer to delete WAL files that hold only sealed rows.
    pub fn checkpoint(&self) {
        let _ = self.send(Msg::Checkpoint);
    }

    /// Closes the current file (if it holds any batch) so a checkpoint can delete it once
    /// its rows are sealed; waits for it. A deletion uses it to get its logs out of the WAL.
    pub fn rotate(&self) -> Result<()> {
        let (reply, rx) = crossbeam_channel::bounded(1);
        self.send(Msg::Rotate(reply))?;
        rx.recv().map_err(|_| EngineError::Closed)
    }

    /// Waits until everything written so far is fsynced and the files earlier checkpoints
    /// let go are deleted.
    pub fn sync(&self) -> Result<()> {
        let (reply, rx) = crossbeam_channel::bounded(1);
        self.send(Msg::Sync(reply))?;
        rx.recv().map_err(|_| EngineError::Closed)?
    }

    /// Why the WAL turned read-only, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failed.lock().clone()
    }

    /// The sequence number the next batch will start at.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Acquire)
    }

    /// Stops the writer after it has written and synced everything queued.
    pub fn close(&self) {
        let tx = self.tx.lock().take();
        drop(tx);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.close();
    }
}

fn new_file(
    fs: &dyn FileSystem,
    dir: &std::path::Path,
    file_no: u64,
) -> Result<(Arc<dyn DataFile>, u64)> {
    let path = dir.join(super::file_name(file_no));
    let f = crate::fs::create_new_in(fs, &path)?;
    f.append(&format::file_header(file_no))
        .and_then(|_| f.sync_data())
        .map_err(|e| EngineError::io(&path, e))?;
    crate::fs::sync_dir_in(fs, dir)?;
    Ok((f, file_no))
}

/// Most bytes one group writes at once; later requests wait for the next group.
const GROUP_BYTES: usize = 32 << 20;

impl Writer {
    fn path(&self) -> PathBuf {
        self.dir.join(super::file_name(self.file_no))
    }

    fn run(&mut self, rx: Receiver<Msg>) {
        loop {
            let first = match (self.policy, self.dirty_since) {
                (FsyncPolicy::Interval(d), Some(since)) => {
                    match rx.recv_timeout(d.saturating_sub(since.elapsed())) {
                        Ok(m) => m,
                        Err(RecvTimeoutError::Timeout) => {
                            let _ = self.fsync();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                _ => match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                },
            };
            let mut group = Vec::new();
            let mut control = Vec::new();
            let mut bytes = 0;
            let mut next = Some(first);
            while let Some(m) = next.take() {
                match m {
                    Msg::Append(r) => {
                        bytes += r.body.bytes.len();
                        group.push(r);
                    }
                    other => control.push(other),
                }
                if bytes < GROUP_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            if !group.is_empty() {
                let _span =
                    tracing::trace_span!("fsync group", batches = group.len(), bytes).entered();
                self.commit(group);
            }
            for c in control {
                match c {
                    Msg::Checkpoint => self.checkpoint(),
                    Msg::Rotate(reply) => {
                        if self.file_max_seq != 0 {
                            self.rotate();
                        }
                        let _ = reply.send(());
                    }
                    Msg::Sync(reply) => {
                        let synced = self.fsync();
                        self.remover.barrier(reply, synced);
                    }
                    Msg::Append(_) => unreachable!("appends go to the group"),
                }
            }
            if let (FsyncPolicy::Interval(d), Some(since)) = (self.policy, self.dirty_since) {
                if since.elapsed() >= d {
                    let _ = self.fsync();
                }
            }
        }
        // Orderly stop: make everything written durable whatever the policy.
        let _ = self.fsync();
    }

    fn fail_all(group: Vec<AppendReq>, err: impl Fn() -> EngineError) {
        for r in group {
            let _ = r.reply.send(Err(err()));
        }
    }

    fn commit(&mut self, group: Vec<AppendReq>) {
        if let Some(why) = self.failed.lock().clone() {
            return Self::fail_all(group, || EngineError::ReadOnly(why.clone()));
        }
        let seq_before = self.next_seq.load(Ordering::Acquire);
        let mut seq = seq_before;
        self.buf.clear();
        let mut payload = Vec::new();
        for r in &group {
            let count = r.records.len() as u32;
            payload.clear();
            format::batch_payload(&mut payload, r.project, seq, count, &r.body);
            format::put_frame(&mut self.buf, self.file_no, &payload);
            seq += u64::from(count);
        }
        let len_before = self.file_len;
        if let Err(e) = self.file.append(&self.buf) {
            // Undo the partial write so the file ends at a whole record.
            let path = self.path();
            if let Err(cut) = self.file.set_len(self.file_len) {
                self.turn_read_only(format!("{}: undoing a failed write: {cut}", path.display()));
            }
            let err = EngineError::io(&path, e);
            let msg = err.to_string();
            let full = matches!(err, EngineError::StorageFull(_));
            return Self::fail_all(group, || {
                if full {
                    EngineError::StorageFull(msg.clone())
                } else {
                    EngineError::Io {
                        path: path.clone(),
                        error: std::io::Error::other(msg.clone()),
                    }
                }
            });
        }
        self.file_len += self.buf.len() as u64;
        self.stats
            .bytes_written
            .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        self.dirty_since.get_or_insert_with(Instant::now);
        if self.policy == FsyncPolicy::Always {
            if let Err(e) = self.fsync() {
                // Every appender of the group hears "nothing stored", so the frames must not
                // come back on the next open: cut them, as a failed write is cut above. The
                // engine is read-only from here on, so nothing is written after them.
                let path = self.path();
                let mut msg = e.to_string();
                match self.file.set_len(len_before) {
                    Ok(()) => self.file_len = len_before,
                    Err(cut) => {
                        msg = format!("{msg}; undoing the unsynced write failed too: {cut}");
                        tracing::error!(file = %path.display(), error = %cut, "could not cut back a batch whose fsync failed");
                    }
                }
                return Self::fail_all(group, || EngineError::ReadOnly(msg.clone()));
            }
        }
        self.file_max_seq = seq - 1;
        self.next_seq.store(seq, Ordering::Release);
        let mut first = seq_before;
        for r in group {
            let count = r.records.len() as u64;
            let mut records = r.records;
            for (i, rec) in records.iter_mut().enumerate() {
                rec.seq = first + i as u64;
            }
            self.applier.apply(r.project, records, r.body.usage_bytes);
            self.stats.appends.fetch_add(1, Ordering::Relaxed);
            let _ = r.reply.send(Ok(first));
            first += count;
        }
        if self.file_len >= self.file_limit {
            self.rotate();
        }
    }

    fn turn_read_only(&self, why: String) {
        tracing::error!(reason = %why, "WAL turned read-only");
        self.failed.lock().get_or_insert(why);
    }

    fn fsync(&mut self) -> Result<()> {
        if let Some(why) = self.failed.lock().clone() {
            return Err(EngineError::ReadOnly(why));
        }
        if self.dirty_since.is_none() {
            return Ok(());
        }
        let t = Instant::now();
        match self.file.sync_data() {
            Ok(()) => {
                self.stats.record_fsync(t.elapsed());
                self.dirty_since = None;
                Ok(())
            }
            Err(e) => {
                let why = format!("{}: fsync failed: {e}", self.path().display());
                self.turn_read_only(why.clone());
                Err(EngineError::ReadOnly(why))
            }
        }
    }

    /// Closes the current file (fsynced, so closed files are always whole) and starts the next.
    fn rotate(&mut self) {
        if self.fsync().is_err() {
            return;
        }
        match new_file(&*self.fs, &self.dir, self.file_no + 1) {
            Ok((f, no)) => {
                self.closed.push((self.file_no, self.file_max_seq));
                self.file = f;
                self.file_no = no;
                self.file_len = format::HEADER_LEN as u64;
                self.file_max_seq = 0;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not start a new WAL file; keeping the current one")
            }
        }
    }

    /// Hands closed files whose every row is sealed in a segment to the remover thread.
    fn checkpoint(&mut self) {
        let next = self.next_seq.load(Ordering::Acquire);
        let min = self.applier.min_unsealed_seq().unwrap_or(next).min(next);
        if self.file_max_seq != 0 && self.file_max_seq < min {
            self.rotate();
        }
        let mut done = Vec::new();
        self.closed.retain(|&(no, max_seq)| {
            let keep = max_seq >= min;
            if !keep {
                done.push(self.dir.join(super::file_name(no)));
            }
            keep
        });
        if !done.is_empty() {
            self.remover.remove(done);
        }
    }
}
