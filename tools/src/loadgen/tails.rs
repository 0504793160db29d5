//! `loadgen --tails N`: opens N live tails (`/api/v1/logs/tail`) beside the ingest load and
//! measures how long a log takes from its `202` to its event on every open tail. The first
//! id of each acknowledged batch is sampled: its acknowledgement time is noted when the 202
//! arrives, and each tail notes when it sees the id. A tail may see a log before the client
//! has read its 202 (the server hands a batch to the tails as it becomes durable, then
//! answers): that counts as 0.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::Request;
use parking_lot::Mutex;

use super::HttpClient;

/// What the tails and the ingest workers note, by log id.
#[derive(Default)]
pub struct Book {
    acked: Mutex<HashMap<String, Instant>>,
    seen: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Book {
    /// Notes the first id of a native batch answer (`{"ids": ["…", …]}`), if any.
    pub fn acked(&self, answer: &[u8]) {
        let Some(at) = find(answer, b"\"ids\":[\"") else {
            return;
        };
        if let Some(id) = answer.get(at..at + 32) {
            if let Ok(id) = std::str::from_utf8(id) {
                self.acked.lock().insert(id.to_owned(), Instant::now());
            }
        }
    }

    /// The report: latencies from 202 to event (over every tail), and sampled logs that
    /// some tail never showed.
    pub fn report(&self, tails: usize) {
        let acked = self.acked.lock();
        let seen = self.seen.lock();
        let mut h = super::new_hist();
        let mut missing = 0u64;
        for (id, at) in acked.iter() {
            let times = seen.get(id).map_or(&[][..], Vec::as_slice);
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

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + needle.len())
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
    let mut buf = Vec::new();
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
        buf.extend_from_slice(&data);
        let mut seen = Vec::new();
        let mut start = 0;
        while let Some(end) = find(&buf[start..], b"\n").map(|e| start + e) {
            let line = &buf[start..end - 1];
            if let Some(id) = line.strip_prefix(b"id: ") {
                if let Ok(id) = std::str::from_utf8(id) {
                    seen.push(id.to_owned());
                }
            }
            start = end;
        }
        buf.drain(..start);
        let mut book_seen = book.seen.lock();
        for id in seen {
            book_seen.entry(id).or_default().push(now);
        }
    }
}
