//! `loadgen --tails N`: opens N live tails (`/api/v1/logs/tail`) beside the ingest load and
//! measures how long a log takes from its `202` to its event on every open tail. The first
//! log of each request is a probe: its message starts with `tail probe <n> `, `n` counting
//! requests, so a tail finds it by a byte search of what it reads (ten tails of a busy
//! project read hundreds of MB/s, and the load generator runs on the cores the server
//! needs: parsing every event was half a core). The probe's acknowledgement time is noted
//! when its 202 arrives, and each tail notes when it sees it. A tail may see a log before
//! the client has read its 202 (the server hands a batch to the tails as it becomes
//! durable, then answers): that counts as 0.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Request;
use memchr::memmem;
use parking_lot::Mutex;

use super::HttpClient;

/// What starts a probe's message; ten digits follow, then a space.
pub const PROBE: &str = "tail probe ";
const DIGITS: usize = 10;

/// The text a probe's message starts with before its number is written in.
pub fn probe_placeholder() -> String {
    format!("{PROBE}{} ", "0".repeat(DIGITS))
}

/// What the tails and the ingest workers note, by probe number.
#[derive(Default)]
pub struct Book {
    next: AtomicU64,
    acked: Mutex<HashMap<u64, Instant>>,
    seen: Mutex<HashMap<u64, Vec<Instant>>>,
}

impl Book {
    /// `body` with its probe numbered (the placeholder's digits are at `at`), and the number.
    pub fn number(&self, body: &Bytes, at: usize) -> (Bytes, u64) {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut b = body.to_vec();
        let digits = format!("{n:0DIGITS$}");
        b[at..at + DIGITS].copy_from_slice(digits.as_bytes());
        (b.into(), n)
    }

    /// Notes that probe `n` was acknowledged now.
    pub fn acked(&self, n: u64) {
        self.acked.lock().insert(n, Instant::now());
    }

    /// The report: latencies from 202 to event (over every tail), and sampled logs that
    /// some tail never showed.
    pub fn report(&self, tails: usize) {
        let acked = self.acked.lock();
        let seen = self.seen.lock();
        let mut h = super::new_hist();
        let mut missing = 0u64;
        for (n, at) in acked.iter() {
            let times = seen.get(n).map_or(&[][..], Vec::as_slice);
            missing += tails.saturating_sub(times.len()) as u64;
            for t in times {
                let us = t.saturating_duration_since(*at).as_micros() as u64;
                let _ = h.record(us.max(1));
            }
        }
        println!(
            "tail: {tails} tails, {} sampled logs, 202 → event (ms): p50 {:.2}  p99 {:.2}  max {:.2}; \
             {missing} sampled (log, tail) pairs not seen",
            acked.len(),
            h.value_at_quantile(0.5) as f64 / 1e3,
            h.value_at_quantile(0.99) as f64 / 1e3,
            h.max() as f64 / 1e3,
        );
    }
}

/// The probe numbers in `buf`, and how much of its end to keep for the next read (a probe
/// cut in two by the frames).
fn probes(buf: &[u8]) -> (Vec<u64>, usize) {
    let whole = PROBE.len() + DIGITS;
    let mut found = Vec::new();
    let mut done = 0;
    for at in memmem::find_iter(buf, PROBE.as_bytes()) {
        let Some(digits) = buf.get(at + PROBE.len()..at + whole) else {
            break;
        };
        if let Some(n) = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
        {
            found.push(n);
        }
        done = at + whole;
    }
    let keep = buf.len() - done.max(buf.len().saturating_sub(whole - 1));
    (found, keep)
}

/// Opens one tail and notes every id it shows until `until`.
pub async fn follow(
    client: HttpClient,
    base: String,
    key: String,
    book: Arc<Book>,
    until: Instant,
) -> anyhow::Result<()> {
    let req = Request::get(format!("{base}/api/v1/logs/tail"))
        .header("authorization", format!("Bearer {key}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))?;
    let resp = client.request(req).await?;
    anyhow::ensure!(resp.status() == 200, "the tail answered {}", resp.status());
    let mut body = resp.into_body();
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        let frame =
            match tokio::time::timeout(left.max(Duration::from_millis(1)), body.frame()).await {
                Err(_) => return Ok(()),
                Ok(None) => anyhow::bail!("the server ended the tail"),
                Ok(Some(f)) => f?,
            };
        let now = Instant::now();
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let (found, keep) = if carry.is_empty() {
            let (found, keep) = probes(&data);
            carry.extend_from_slice(&data[data.len() - keep..]);
            (found, keep)
        } else {
            carry.extend_from_slice(&data);
            let (found, keep) = probes(&carry);
            carry.drain(..carry.len() - keep);
            (found, keep)
        };
        debug_assert_eq!(carry.len(), keep);
        if !found.is_empty() {
            let mut seen = book.seen.lock();
            for n in found {
                seen.entry(n).or_default().push(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_is_found_once_even_when_the_frames_cut_it() {
        let text =
            format!("data: {{\"message\":\"{PROBE}0000000042 x\"}}\n\nid: 1\n{PROBE}0000000043 y");
        let bytes = text.as_bytes();
        for cut in 0..bytes.len() {
            let (mut all, keep) = probes(&bytes[..cut]);
            let mut rest = bytes[cut - keep..].to_vec();
            let (more, _) = probes(&rest);
            all.extend(more);
            rest.clear();
            assert_eq!(all, [42, 43], "cut at {cut}");
        }
    }
}
