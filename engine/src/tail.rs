//! Live tails: every log of a project, in the order it became durable, handed to each open
//! tail of that project as it is applied.
//!
//! A tail is a bounded queue. The writer never waits for a reader: `publish` makes one
//! shared [`Batch`] of the rows (`Arc<LogRecord>`, the memtable's own) and appends a
//! reference to it to each tail's queue under a short lock; when a queue would hold more
//! than its bound in rows, the rows waiting in it are dropped and counted as skipped: the
//! reader hears how many it missed and goes on from the newest. So a stalled reader costs
//! at most its bound in rows, and ingest never slows for it.
//!
//! A batch is shared by every tail of its project, with a slot where a reader may keep
//! what it made of the rows (the server keeps their events as text): ten tails that show
//! every log make that once per batch, not once per tail.
//!
//! Readers are woken through a [`std::task::Waker`], so the engine stays free of any async
//! runtime; [`Tail::poll_take`] fits a hand-written future or body.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use parking_lot::{Mutex, RwLock};

use crate::model::{LogRecord, ProjectId};

/// The open tails of every project.
#[derive(Default)]
pub struct TailHub {
    projects: RwLock<HashMap<ProjectId, Vec<Arc<Queue>>>>,
}

/// One tail's queue.
struct Queue {
    state: Mutex<State>,
    bound: usize,
}

/// Rows published together, shared by every tail of their project.
#[derive(Debug)]
pub struct Batch {
    pub rows: Vec<Arc<LogRecord>>,
    /// What a reader made of all of `rows`, kept for the other readers.
    pub made: OnceLock<Arc<[u8]>>,
}

/// The part of a batch a tail receives: its rows from `start` on (a queue past its bound
/// keeps only the newest rows of a batch).
#[derive(Debug, Clone)]
pub struct Slice {
    pub batch: Arc<Batch>,
    pub start: usize,
}

impl Slice {
    pub fn rows(&self) -> &[Arc<LogRecord>] {
        &self.batch.rows[self.start..]
    }

    /// Whether this is the whole batch (so what was made of the batch fits it).
    pub fn whole(&self) -> bool {
        self.start == 0
    }
}

#[derive(Default)]
struct State {
    slices: VecDeque<Slice>,
    /// Rows in `slices`.
    len: usize,
    /// Rows dropped since the reader last took.
    skipped: u64,
    waker: Option<Waker>,
    /// The project was deleted: no more rows will come.
    closed: bool,
}

impl State {
    fn take(&mut self) -> Taken {
        self.len = 0;
        Taken {
            skipped: std::mem::take(&mut self.skipped),
            slices: self.slices.drain(..).collect(),
            closed: self.closed,
        }
    }
}

/// What a reader takes from its tail at once.
#[derive(Debug, Default)]
pub struct Taken {
    /// Rows the queue dropped (the reader fell more than its bound behind) before `rows`.
    pub skipped: u64,
    /// New rows, oldest first, as the batches they were published in.
    pub slices: Vec<Slice>,
    /// No more rows will come (the project was deleted).
    pub closed: bool,
}

impl Taken {
    /// Every row taken, oldest first.
    pub fn rows(&self) -> impl Iterator<Item = &Arc<LogRecord>> {
        self.slices.iter().flat_map(Slice::rows)
    }
}

/// An open tail. Dropping it closes it.
pub struct Tail {
    hub: Arc<TailHub>,
    project: ProjectId,
    queue: Arc<Queue>,
}

impl TailHub {
    /// Opens a tail of `project` holding at most `bound` rows for its reader, unless the
    /// project already has `max_open` tails.
    pub fn open(
        self: &Arc<Self>,
        project: ProjectId,
        bound: usize,
        max_open: usize,
    ) -> Option<Tail> {
        let queue = Arc::new(Queue {
            state: Mutex::new(State::default()),
            bound: bound.max(1),
        });
        let mut projects = self.projects.write();
        let open = projects.entry(project).or_default();
        if open.len() >= max_open {
            return None;
        }
        open.push(queue.clone());
        Some(Tail {
            hub: self.clone(),
            project,
            queue,
        })
    }

    /// Tails open on `project` now.
    pub fn open_count(&self, project: ProjectId) -> usize {
        self.projects.read().get(&project).map_or(0, Vec::len)
    }

    /// Hands durable rows of `project` to its tails. Never blocks on a reader.
    pub fn publish(&self, project: ProjectId, rows: &[Arc<LogRecord>]) {
        let projects = self.projects.read();
        let Some(open) = projects.get(&project) else {
            return;
        };
        if rows.is_empty() {
            return;
        }
        let batch = Arc::new(Batch {
            rows: rows.to_vec(),
            made: OnceLock::new(),
        });
        for q in open {
            let waker = {
                let mut s = q.state.lock();
                if s.len + rows.len() > q.bound {
                    // Fallen behind: drop what waits and go on from the newest.
                    s.skipped += s.len as u64;
                    s.slices.clear();
                    s.len = 0;
                }
                let keep = rows.len().min(q.bound);
                s.skipped += (rows.len() - keep) as u64;
                s.slices.push_back(Slice {
                    batch: batch.clone(),
                    start: rows.len() - keep,
                });
                s.len += keep;
                s.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// Ends every tail of a deleted project.
    pub fn close_project(&self, project: ProjectId) {
        let open = self.projects.write().remove(&project).unwrap_or_default();
        for q in open {
            let waker = {
                let mut s = q.state.lock();
                s.closed = true;
                s.slices.clear();
                s.len = 0;
                s.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

impl Tail {
    /// The project this tail follows.
    pub fn project(&self) -> ProjectId {
        self.project
    }

    /// Takes what has arrived, or registers `cx`'s waker and returns `Pending` when nothing
    /// has (no rows, nothing skipped, not closed).
    pub fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Taken> {
        let mut s = self.queue.state.lock();
        if s.slices.is_empty() && s.skipped == 0 && !s.closed {
            s.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(s.take())
    }

    /// Takes what has arrived without waiting (possibly nothing).
    pub fn take(&self) -> Taken {
        self.queue.state.lock().take()
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let mut projects = self.hub.projects.write();
        if let Some(open) = projects.get_mut(&self.project) {
            open.retain(|q| !Arc::ptr_eq(q, &self.queue));
            if open.is_empty() {
                projects.remove(&self.project);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Importance, Level, LogRecord, LogType, NewLog};

    fn row(seq: u64) -> Arc<LogRecord> {
        Arc::new(LogRecord {
            seq,
            ingested_at: 0,
            log: NewLog::new(0, Level::Info, LogType::Logger, Importance::Standard),
        })
    }

    fn seqs(t: &Taken) -> Vec<u64> {
        t.rows().map(|r| r.seq).collect()
    }

    #[test]
    fn rows_reach_every_tail_of_their_project_only() {
        let hub = Arc::new(TailHub::default());
        let a1 = hub.open(1, 100, 10).unwrap();
        let a2 = hub.open(1, 100, 10).unwrap();
        let b = hub.open(2, 100, 10).unwrap();
        hub.publish(1, &[row(1), row(2)]);
        hub.publish(2, &[row(3)]);
        assert_eq!(seqs(&a1.take()), [1, 2]);
        assert_eq!(seqs(&a2.take()), [1, 2]);
        assert_eq!(seqs(&b.take()), [3]);
        assert!(a1.take().slices.is_empty());
    }

    #[test]
    fn a_reader_that_falls_behind_skips_to_the_newest_and_hears_how_many() {
        let hub = Arc::new(TailHub::default());
        let t = hub.open(1, 5, 10).unwrap();
        hub.publish(1, &[row(1), row(2), row(3), row(4)]);
        hub.publish(1, &[row(5), row(6)]);
        let got = t.take();
        assert_eq!(got.skipped, 4);
        assert_eq!(seqs(&got), [5, 6]);
        // A batch larger than the bound keeps its newest rows.
        hub.publish(1, &(10..20).map(row).collect::<Vec<_>>());
        let got = t.take();
        assert_eq!(got.skipped, 5);
        assert_eq!(seqs(&got), [15, 16, 17, 18, 19]);
    }

    #[test]
    fn tails_per_project_are_capped_and_dropping_one_frees_its_place() {
        let hub = Arc::new(TailHub::default());
        let mut open: Vec<Tail> = (0..3).map(|_| hub.open(7, 10, 3).unwrap()).collect();
        assert!(hub.open(7, 10, 3).is_none());
        assert!(
            hub.open(8, 10, 3).is_some(),
            "other projects are not counted"
        );
        drop(open.pop());
        assert_eq!(hub.open_count(7), 2);
        assert!(hub.open(7, 10, 3).is_some());
    }

    #[test]
    fn a_waiting_reader_is_woken_by_a_publish_and_by_a_close() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::Wake;
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let hub = Arc::new(TailHub::default());
        let t = hub.open(1, 10, 10).unwrap();
        assert!(t.poll_take(&mut cx).is_pending());
        hub.publish(1, &[row(1)]);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(matches!(t.poll_take(&mut cx), Poll::Ready(ref g) if seqs(g) == [1]));
        assert!(t.poll_take(&mut cx).is_pending());
        hub.close_project(1);
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert!(matches!(t.poll_take(&mut cx), Poll::Ready(ref g) if g.closed));
    }
}
