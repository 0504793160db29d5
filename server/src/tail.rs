//! The live tail as a stream of server-sent events: the body of `GET /api/v1/logs/tail`.
//!
//! One event per new matching log (`id:` the log id, `event: log`, `data:` the stored log
//! as JSON on one line), after any logs a resuming client missed. `event: overflow` (with
//! `{"skipped": n}`) when the reader fell more than the tail's bound behind and the engine
//! dropped what waited for it. A `: keep-alive` comment when nothing else was sent for the
//! keep-alive interval, so proxies and clients see a live connection. The stream ends at
//! its maximum age (clients reconnect with `Last-Event-ID`), when the server shuts down,
//! and when the project is deleted.
//!
//! The stream is polled by hyper as the socket drains: a reader that stops reading stops
//! this body from being polled, and the engine's bounded queue (not this body) absorbs what
//! arrives meanwhile, so a stalled reader holds at most that bound.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Frame;
use ledger_engine::tail::{Slice, Tail, Taken};
use ledger_engine::LogRecord;

use ledger_engine::json::write_record_json;

/// Which logs a tail sends; a tail without one sends every log.
pub type Keep = Box<dyn Fn(&LogRecord) -> bool + Send>;

/// Slots of the render cache, and the largest rendering it keeps (so it holds at most
/// `RENDER_SLOTS × RENDER_MAX_BYTES`, 32 MiB).
const RENDER_SLOTS: usize = 8_192;
const RENDER_MAX_BYTES: usize = 4 << 10;

/// Logs rendered as whole events (`id:`, `event:` and `data:` lines), shared by every tail:
/// ten tails of one busy project would otherwise each build the same JSON and format the
/// same id for every log, and rendering, not sending, is what a tail costs the server. A
/// slot per sequence number modulo the size; tails read in near lockstep, so the newest
/// logs are what they ask for.
pub struct Renders {
    slots: Vec<parking_lot::Mutex<Option<Rendered>>>,
}

/// A log's sequence number and its event.
type Rendered = (u64, Arc<[u8]>);

impl Default for Renders {
    fn default() -> Self {
        Renders {
            slots: (0..RENDER_SLOTS).map(|_| Default::default()).collect(),
        }
    }
}

impl Renders {
    /// The event of `r` (of the project whose id is `project_hex`).
    fn get(&self, r: &LogRecord, project_hex: &str) -> Arc<[u8]> {
        // Sequence numbers are unique across projects, so one is a key by itself.
        let mut slot = self.slots[r.seq as usize % RENDER_SLOTS].lock();
        if let Some((seq, event)) = &*slot {
            if *seq == r.seq {
                return event.clone();
            }
        }
        let mut text = Vec::with_capacity(1024);
        write_event(r, project_hex, &mut text);
        let event: Arc<[u8]> = text.into();
        if event.len() <= RENDER_MAX_BYTES {
            *slot = Some((r.seq, event.clone()));
        }
        event
    }
}

/// The event of `r`: its `id:`, `event:` and `data:` lines.
fn write_event(r: &LogRecord, project_hex: &str, out: &mut Vec<u8>) {
    // Writing into a `Vec` cannot fail.
    let _ = write!(out, "id: {}\nevent: log\ndata: ", r.id());
    write_record_json(r, project_hex, out);
    out.extend_from_slice(b"\n\n");
}

/// Events written into one frame at most, so a long backlog goes out in pieces.
const EVENTS_PER_FRAME: usize = 256;

/// The body of a live tail.
pub struct TailStream {
    tail: Tail,
    renders: Arc<Renders>,
    project_hex: String,
    keep: Option<Keep>,
    /// Frames made and not yet sent.
    pending: VecDeque<Bytes>,
    /// Missed logs of a resuming client, sent before anything live.
    backlog: VecDeque<LogRecord>,
    /// Skipped logs to report before the backlog (it was longer than the bound).
    backlog_skipped: u64,
    /// The newest sequence number sent or passed over: live logs at or below it are ones
    /// the backlog already covered.
    last_seq: u64,
    keepalive: tokio::time::Interval,
    end: Pin<Box<dyn Future<Output = ()> + Send>>,
    started: bool,
    done: bool,
}

impl TailStream {
    /// A stream of what `tail` receives and `keep` accepts, after `backlog` (oldest first,
    /// with `backlog_skipped` older ones dropped), ending when `end` completes.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tail: Tail,
        renders: Arc<Renders>,
        project_hex: String,
        keep: Option<Keep>,
        after_seq: u64,
        backlog: Vec<LogRecord>,
        backlog_skipped: u64,
        keepalive: Duration,
        end: impl Future<Output = ()> + Send + 'static,
    ) -> TailStream {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        TailStream {
            tail,
            renders,
            project_hex,
            keep,
            pending: VecDeque::new(),
            backlog: backlog.into(),
            backlog_skipped,
            last_seq: after_seq,
            keepalive: tick,
            end: Box::pin(end),
            started: false,
            done: false,
        }
    }

    /// The event of `r`, unless it was sent already or the tail does not keep it.
    fn event(&mut self, r: &LogRecord) -> Option<Arc<[u8]>> {
        if r.seq <= self.last_seq {
            return None;
        }
        self.last_seq = r.seq;
        if self.keep.as_ref().is_some_and(|keep| !keep(r)) {
            return None;
        }
        Some(self.renders.get(r, &self.project_hex))
    }

    /// `head`, then the events of `rows`, as one piece of text allocated once (growing it as
    /// it filled was a tenth of a busy tail's cost, in copies).
    fn events<'r>(&mut self, head: &[u8], rows: impl Iterator<Item = &'r LogRecord>) -> Vec<u8> {
        let events: Vec<Arc<[u8]>> = rows.filter_map(|r| self.event(r)).collect();
        let mut out =
            Vec::with_capacity(head.len() + events.iter().map(|e| e.len()).sum::<usize>());
        out.extend_from_slice(head);
        for e in &events {
            out.extend_from_slice(e);
        }
        out
    }

    fn overflow(out: &mut Vec<u8>, skipped: u64) {
        let _ = write!(out, "event: overflow\ndata: {{\"skipped\":{skipped}}}\n\n");
    }

    /// Queues the frames of what was taken.
    fn taken(&mut self, t: Taken) {
        let mut head = Vec::new();
        if t.skipped > 0 {
            Self::overflow(&mut head, t.skipped);
        }
        for slice in &t.slices {
            if let Some(shared) = self.shared(slice) {
                if !head.is_empty() {
                    self.pending.push_back(std::mem::take(&mut head).into());
                }
                self.pending.push_back(Bytes::from_owner(shared));
                continue;
            }
            let text = self.events(&head, slice.rows().iter().map(|r| &**r));
            head.clear();
            if !text.is_empty() {
                self.pending.push_back(text.into());
            }
        }
        if !head.is_empty() {
            self.pending.push_back(head.into());
        }
        if t.closed {
            self.done = true;
        }
    }

    /// For a tail that sends every log, the events of a whole batch, made by the first of
    /// the project's tails to take it and shared by the rest: ten such tails cost one
    /// rendering and no copies of their own.
    fn shared(&mut self, slice: &Slice) -> Option<Arc<[u8]>> {
        let (first, last) = (slice.rows().first()?, slice.rows().last()?);
        if self.keep.is_some() || !slice.whole() || first.seq <= self.last_seq {
            return None;
        }
        let made = slice.batch.made.get_or_init(|| {
            let mut text = Vec::with_capacity(slice.rows().len() * 1024);
            for r in slice.rows() {
                write_event(r, &self.project_hex, &mut text);
            }
            text.into()
        });
        self.last_seq = last.seq;
        Some(made.clone())
    }
}

fn frame(s: Vec<u8>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
    Poll::Ready(Some(Ok(Frame::data(Bytes::from(s)))))
}

impl hyper::body::Body for TailStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if (this.done && this.pending.is_empty()) || this.end.as_mut().poll(cx).is_ready() {
            this.done = true;
            return Poll::Ready(None);
        }
        if !this.started {
            // Something at once, so the client knows the stream is open.
            this.started = true;
            let mut out = b": tail open\n\n".to_vec();
            if this.backlog_skipped > 0 {
                Self::overflow(&mut out, this.backlog_skipped);
            }
            return frame(out);
        }
        while !this.backlog.is_empty() {
            let n = this.backlog.len().min(EVENTS_PER_FRAME);
            let rows: Vec<LogRecord> = this.backlog.drain(..n).collect();
            let out = this.events(&[], rows.iter());
            if !out.is_empty() {
                return frame(out);
            }
        }
        loop {
            if let Some(f) = this.pending.pop_front() {
                this.keepalive.reset();
                return Poll::Ready(Some(Ok(Frame::data(f))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.tail.poll_take(cx) {
                Poll::Ready(t) => this.taken(t),
                Poll::Pending => break,
            }
        }
        if this.keepalive.poll_tick(cx).is_ready() {
            return frame(b": keep-alive\n\n".to_vec());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http_body_util::BodyExt;
    use ledger_engine::tail::TailHub;
    use ledger_engine::{Importance, Level, LogType, NewLog};

    use super::*;

    fn row(seq: u64) -> LogRecord {
        LogRecord {
            seq,
            ingested_at: 1,
            log: NewLog::new(
                seq as i64,
                Level::Info,
                LogType::Logger,
                Importance::Standard,
            ),
        }
    }

    /// Reads events until `n` logs came, returning their sequence numbers (from the ids).
    async fn seqs(body: &mut TailStream, n: usize) -> Vec<u64> {
        let mut out = Vec::new();
        while out.len() < n {
            let frame = body.frame().await.expect("the stream goes on").unwrap();
            let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
            for line in text.lines() {
                if let Some(id) = line.strip_prefix("id: ") {
                    out.push(ledger_engine::LogId::parse(id).unwrap().seq);
                }
            }
        }
        out
    }

    /// A log applied between opening the tail and reading the backlog is in both: the
    /// stream sends it once.
    #[tokio::test]
    async fn logs_in_both_the_backlog_and_the_live_queue_are_sent_once() {
        let hub = Arc::new(TailHub::default());
        let tail = hub.open(1, 100, 10).unwrap();
        let live: Vec<Arc<LogRecord>> = (5..=8).map(|s| Arc::new(row(s))).collect();
        hub.publish(1, &live);
        let backlog = (3..=6).map(row).collect();
        let keep: Option<Keep> = Some(Box::new(|r: &LogRecord| r.seq != 7));
        let mut body = TailStream::new(
            tail,
            Default::default(),
            "00".into(),
            keep,
            2,
            backlog,
            0,
            Duration::from_secs(60),
            std::future::pending(),
        );
        assert_eq!(seqs(&mut body, 5).await, [3, 4, 5, 6, 8]);
        hub.publish(1, &[Arc::new(row(6)), Arc::new(row(9))]);
        assert_eq!(seqs(&mut body, 1).await, [9], "an old row was sent again");
    }

    fn stream(tail: Tail, renders: &Arc<Renders>, keep: Option<Keep>, after: u64) -> TailStream {
        TailStream::new(
            tail,
            renders.clone(),
            "00".into(),
            keep,
            after,
            Vec::new(),
            0,
            Duration::from_secs(60),
            std::future::pending(),
        )
    }

    /// The next frame's bytes, past the opening comment.
    async fn next_frame(body: &mut TailStream) -> Bytes {
        loop {
            let f = body.frame().await.expect("the stream goes on").unwrap();
            let data = f.into_data().unwrap();
            if !data.starts_with(b": tail open") {
                return data;
            }
        }
    }

    /// Tails of every log share one rendering of a batch (the same bytes, made once);
    /// a filtered tail and a tail resuming inside the batch make their own, and each sends
    /// what it should.
    #[tokio::test]
    async fn tails_of_every_log_share_a_batchs_events() {
        let hub = Arc::new(TailHub::default());
        let renders: Arc<Renders> = Default::default();
        let mut a = stream(hub.open(1, 100, 10).unwrap(), &renders, None, 0);
        let mut b = stream(hub.open(1, 100, 10).unwrap(), &renders, None, 0);
        let odd: Option<Keep> = Some(Box::new(|r: &LogRecord| r.seq % 2 == 1));
        let mut filtered = stream(hub.open(1, 100, 10).unwrap(), &renders, odd, 0);
        let mut resumed = stream(hub.open(1, 100, 10).unwrap(), &renders, None, 2);
        hub.publish(1, &(1..=4).map(|s| Arc::new(row(s))).collect::<Vec<_>>());
        let (fa, fb) = (next_frame(&mut a).await, next_frame(&mut b).await);
        assert_eq!(fa, fb);
        assert_eq!(
            fa.as_ptr(),
            fb.as_ptr(),
            "the second tail made its own copy of the batch's events"
        );
        let ids = |f: &Bytes| -> Vec<u64> {
            String::from_utf8_lossy(f)
                .lines()
                .filter_map(|l| l.strip_prefix("id: "))
                .map(|id| ledger_engine::LogId::parse(id).unwrap().seq)
                .collect()
        };
        assert_eq!(ids(&fa), [1, 2, 3, 4]);
        let ff = next_frame(&mut filtered).await;
        assert_ne!(ff.as_ptr(), fa.as_ptr());
        assert_eq!(ids(&ff), [1, 3]);
        assert_eq!(ids(&next_frame(&mut resumed).await), [3, 4]);
    }
}
