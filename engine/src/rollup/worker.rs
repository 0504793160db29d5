//! The rollup thread: counts rows in off the WAL writer thread, and lets readers wait until
//! it has caught up.
//!
//! The WAL writer only queues each applied batch (its rows are the `Arc`s the memtable
//! holds, so queueing copies no log) and counts it as sent. The thread counts batches in the
//! order they were queued — for each project, sequence order — and counts each as done.
//! Every metrics answer, retention and project deletion first waits until everything sent
//! before it is done ([`Worker::catch_up`]), so an answer counts every log acknowledged
//! before it was asked for, exactly as if the count had been made on the writer thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex};

use super::Registry;
use crate::error::{EngineError, Result};
use crate::model::{LogRecord, ProjectId};

type Batch = (ProjectId, Vec<Arc<LogRecord>>);

/// Batches that may wait for the thread. Past this the WAL writer waits for it, so a thread
/// that falls behind slows appends (backpressure) rather than holding rows in memory without
/// bound. The thread counts millions of logs a second, so in practice the queue is short.
const QUEUE_BATCHES: usize = 1024;

#[derive(Default)]
struct Progress {
    sent: AtomicU64,
    done: AtomicU64,
    lock: Mutex<()>,
    cv: Condvar,
    /// Set if counting ever panicked: the figures can no longer be trusted.
    failed: Mutex<Option<String>>,
}

/// The rollup thread's handle; dropping it stops the thread once the queue is drained.
pub struct Worker {
    tx: Option<Sender<Batch>>,
    thread: Option<JoinHandle<()>>,
    progress: Arc<Progress>,
}

impl Worker {
    /// Starts the thread, or says why it could not.
    pub fn start(reg: Arc<Registry>) -> std::io::Result<Worker> {
        let (tx, rx) = crossbeam_channel::bounded::<Batch>(QUEUE_BATCHES);
        let progress = Arc::new(Progress::default());
        let p = progress.clone();
        let thread = std::thread::Builder::new()
            .name("ledger-rollups".into())
            .spawn(move || {
                for (project, rows) in rx {
                    let counted = catch_unwind(AssertUnwindSafe(|| reg.count(project, &rows)));
                    if counted.is_err() {
                        let why = format!("counting a batch of project {project} panicked");
                        tracing::error!("rollups: {why}; metrics answers fail from now on");
                        p.failed.lock().get_or_insert(why);
                    }
                    p.done.fetch_add(1, Ordering::AcqRel);
                    let _g = p.lock.lock();
                    p.cv.notify_all();
                }
            })?;
        Ok(Worker {
            tx: Some(tx),
            thread: Some(thread),
            progress,
        })
    }

    /// Queues a batch for counting (waiting while the queue is full). Called by the WAL
    /// writer, in sequence order.
    pub fn send(&self, project: ProjectId, rows: Vec<Arc<LogRecord>>) {
        let Some(tx) = &self.tx else {
            return;
        };
        // Counted as sent before it is queued, so a reader that starts after this call
        // returns waits for it.
        self.progress.sent.fetch_add(1, Ordering::AcqRel);
        if tx.send((project, rows)).is_err() {
            // The thread is gone (it only stops when dropped): nothing will count this.
            self.progress
                .failed
                .lock()
                .get_or_insert_with(|| "the rollup thread stopped".into());
            self.progress.done.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Whether every batch sent so far is counted (a [`Worker::catch_up`] now would not wait).
    pub fn caught_up(&self) -> bool {
        let p = &self.progress;
        p.done.load(Ordering::Acquire) >= p.sent.load(Ordering::Acquire)
    }

    /// Waits until every batch sent before this call is counted.
    pub fn catch_up(&self) -> Result<()> {
        let p = &self.progress;
        let target = p.sent.load(Ordering::Acquire);
        if p.done.load(Ordering::Acquire) < target {
            let mut g = p.lock.lock();
            while p.done.load(Ordering::Acquire) < target {
                p.cv.wait(&mut g);
            }
        }
        match p.failed.lock().clone() {
            Some(why) => Err(EngineError::Unavailable(format!(
                "metrics are unavailable: {why}"
            ))),
            None => Ok(()),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
