//! Admission: whether an ingest request may go on to read its body. Decided from the
//! engine's pressure (unsealed bytes, index lag, the project's queue depth) before a byte of
//! the body is read, so that under overload a refusal costs microseconds instead of the
//! read, decompress, parse and validate of a body that is then thrown away.
//!
//! A request that finds the engine under pressure is held briefly rather than refused at
//! once: it waits (polling the engine's state, its body still unread in the socket) for at
//! most `max_wait`, and goes on as soon as the pressure clears. Clients are slowed, not
//! turned away, and none of the bodies of waiting requests is in memory. At most
//! `max_waiting` requests wait at a time; past that, or after `max_wait`, the answer is
//! `503 backpressure` with `Retry-After`. `append` checks the pressure again with the real
//! batch size, so admission can only be more generous, never let past a limit.
//!
//! After its body is read, a request takes a turn: at most `turns` requests (twice the
//! cores by default) decode, parse, validate and append at once, in arrival order, and the
//! one whose turn it is waits (within the same deadline) until the engine has room before
//! it starts. Without turns, every request held for capacity would rush in together when
//! capacity returned, parse its body, and most would then be refused by `append` after all
//! that work: the CPU that accepted logs need would go to refused ones.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ledger_engine::Engine;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::{ApiError, ApiResult};
use crate::meta::Project;

/// How often a waiting request looks at the engine's state again.
const POLL: Duration = Duration::from_millis(5);

/// The wait queue of ingest requests held for capacity.
pub struct Admission {
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
    turns: Semaphore,
}

/// A request let in to read its body, with the time by which it must have its turn.
pub struct Admitted {
    deadline: Instant,
}

/// A request's turn at the CPU-heavy part of ingest; held until it is answered.
pub struct Turn<'a> {
    _permit: SemaphorePermit<'a>,
}

/// Gives back a place in the wait queue when the request stops waiting (or is dropped).
struct Place<'a>(&'a AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    /// `max_wait` zero refuses at once, as a server without a wait queue would; `turns`
    /// requests at most decode and append at once.
    pub fn new(max_waiting: usize, max_wait: Duration, turns: usize) -> Admission {
        Admission {
            waiting: AtomicUsize::new(0),
            max_waiting,
            max_wait,
            turns: Semaphore::new(turns.max(1)),
        }
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Returns when `project` may append about `expected` logs (guessed from the request's
    /// headers: its size decides whether it may use the engine's reserve for small appends),
    /// or `503 backpressure` when it may not within the wait (or the wait queue is full).
    pub async fn admit(
        &self,
        engine: &Engine,
        project: &Project,
        expected: usize,
    ) -> ApiResult<Admitted> {
        let deadline = Instant::now() + self.max_wait;
        self.wait_for_room(engine, project, expected, deadline)
            .await?;
        Ok(Admitted { deadline })
    }

    /// Waits for a turn (in arrival order), then for room in the engine for `expected` logs
    /// (what the request likely carries: its count is known only once its body is parsed,
    /// and waiting here for too little room would parse a body `append` then refuses), both
    /// by the admitted request's deadline; `503 backpressure` past it.
    pub async fn turn(
        &self,
        engine: &Engine,
        project: &Project,
        admitted: &Admitted,
        expected: usize,
    ) -> ApiResult<Turn<'_>> {
        let busy = || ApiError::Backpressure {
            message: "ingest is at capacity, retry later".into(),
            retry_after: 1,
        };
        let permit =
            match tokio::time::timeout_at(admitted.deadline.into(), self.turns.acquire()).await {
                Ok(Ok(p)) => p,
                _ => return Err(busy()),
            };
        self.wait_for_room(engine, project, expected, admitted.deadline)
            .await?;
        Ok(Turn { _permit: permit })
    }

    async fn wait_for_room(
        &self,
        engine: &Engine,
        project: &Project,
        incoming: usize,
        deadline: Instant,
    ) -> ApiResult<()> {
        let depth = usize::try_from(project.max_queue_depth).unwrap_or(usize::MAX);
        // Never more than the queue can hold at all, or the wait could not end.
        let incoming = incoming.clamp(1, depth.max(1));
        let check = || engine.pressure(project.id, Some(depth), incoming);
        let Err(first) = check() else {
            return Ok(());
        };
        if self.max_wait.is_zero() {
            return Err(first.into());
        }
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(first.into());
        }
        let _place = Place(&self.waiting);
        loop {
            tokio::time::sleep(POLL).await;
            match check() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(ApiError::from(e)),
                Err(_) => {}
            }
        }
    }
}
