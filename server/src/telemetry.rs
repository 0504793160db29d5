//! Figures for `GET /metrics` in the Prometheus text format: requests by route and status
//! with a latency histogram, ingested logs and bytes, and the engine's own gauges.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use ledger_engine::wal::writer::FSYNC_BUCKETS_US;
use ledger_engine::{Engine, EngineStats};
use parking_lot::Mutex;

/// Upper bounds (seconds) of the request latency buckets.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct RouteStats {
    count: u64,
    sum: f64,
    /// Cumulative: bucket `i` counts requests of at most `LATENCY_BUCKETS[i]` seconds.
    buckets: [u64; LATENCY_BUCKETS.len()],
}

/// The server's counters. One per process, shared by every request.
#[derive(Default)]
pub struct Telemetry {
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), RouteStats>>,
    pub ingested_logs: AtomicU64,
    pub ingested_bytes: AtomicU64,
    pub rejected_logs: AtomicU64,
}

impl Telemetry {
    /// Records one finished request.
    pub fn observe(&self, route: &'static str, method: &'static str, status: u16, secs: f64) {
        let mut map = self.requests.lock();
        let s = map.entry((route, method, status)).or_default();
        s.count += 1;
        s.sum += secs;
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
    }

    /// Counts logs accepted by an ingest request.
    pub fn ingested(&self, logs: u64, bytes: u64, rejected: u64) {
        self.ingested_logs.fetch_add(logs, Ordering::Relaxed);
        self.ingested_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.rejected_logs.fetch_add(rejected, Ordering::Relaxed);
    }

    /// The whole exposition.
    pub fn render(&self, engine: &Engine, stats: &EngineStats) -> String {
        let mut out = String::with_capacity(8 << 10);
        let o = &mut out;
        header(
            o,
            "ledger_http_requests_total",
            "counter",
            "HTTP requests answered, by route, method and status.",
        );
        header(
            o,
            "ledger_http_request_duration_seconds",
            "histogram",
            "Time to answer HTTP requests, by route, method and status.",
        );
        let snapshot: Vec<_> = {
            let map = self.requests.lock();
            map.iter()
                .map(|(k, s)| (*k, s.count, s.sum, s.buckets))
                .collect()
        };
        for ((route, method, status), count, _, _) in &snapshot {
            let _ = writeln!(
                o,
                "ledger_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {count}"
            );
        }
        for ((route, method, status), count, sum, buckets) in &snapshot {
            let labels = format!("route=\"{route}\",method=\"{method}\",status=\"{status}\"");
            for (b, n) in LATENCY_BUCKETS.iter().zip(buckets) {
                let _ = writeln!(
                    o,
                    "ledger_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {n}"
                );
            }
            let _ = writeln!(
                o,
                "ledger_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                o,
                "ledger_http_request_duration_seconds_sum{{{labels}}} {sum}"
            );
            let _ = writeln!(
                o,
                "ledger_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            o,
            "ledger_ingested_logs_total",
            "Logs accepted (202) since start.",
            load(&self.ingested_logs),
        );
        counter(
            o,
            "ledger_ingested_bytes_total",
            "Bytes of JSON of the logs accepted since start.",
            load(&self.ingested_bytes),
        );
        counter(
            o,
            "ledger_rejected_logs_total",
            "Logs refused by validation or quota since start.",
            load(&self.rejected_logs),
        );
        gauge(
            o,
            "ledger_queue_depth",
            "Logs accepted but not yet sealed into segments, all projects.",
            stats.memtable_rows as u64,
        );
        gauge(
            o,
            "ledger_index_lag",
            "Logs accepted but not yet findable by search (committed to the index).",
            engine.search_lag(),
        );
        gauge(
            o,
            "ledger_memtable_bytes",
            "Bytes held in memtables.",
            stats.memtable_bytes as u64,
        );
        gauge(
            o,
            "ledger_segments",
            "Sealed segments.",
            stats.segments as u64,
        );
        gauge(
            o,
            "ledger_segment_bytes",
            "Bytes of sealed segment files.",
            stats.segment_bytes,
        );
        gauge(
            o,
            "ledger_segment_raw_bytes",
            "Uncompressed bytes of the rows in sealed segments.",
            stats.segment_raw_bytes,
        );
        gauge(
            o,
            "ledger_segment_rows",
            "Logs in sealed segments.",
            stats.segment_rows,
        );
        gauge(
            o,
            "ledger_projects_with_data",
            "Projects holding logs.",
            stats.projects as u64,
        );
        let w = engine.wal_stats();
        counter(
            o,
            "ledger_wal_appends_total",
            "Batches appended to the WAL.",
            load(&w.appends),
        );
        counter(
            o,
            "ledger_wal_bytes_written_total",
            "Bytes written to the WAL.",
            load(&w.bytes_written),
        );
        counter(
            o,
            "ledger_wal_files_deleted_total",
            "WAL files removed after checkpoints.",
            load(&w.files_deleted),
        );
        header(
            o,
            "ledger_wal_fsync_seconds",
            "histogram",
            "WAL fsync latency.",
        );
        for (b, n) in FSYNC_BUCKETS_US.iter().zip(&w.fsync_buckets) {
            let _ = writeln!(
                o,
                "ledger_wal_fsync_seconds_bucket{{le=\"{}\"}} {}",
                *b as f64 / 1e6,
                load(n)
            );
        }
        let fsyncs = load(&w.fsyncs);
        let _ = writeln!(o, "ledger_wal_fsync_seconds_bucket{{le=\"+Inf\"}} {fsyncs}");
        let _ = writeln!(
            o,
            "ledger_wal_fsync_seconds_sum {}",
            load(&w.fsync_nanos) as f64 / 1e9
        );
        let _ = writeln!(o, "ledger_wal_fsync_seconds_count {fsyncs}");
        out
    }
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(o: &mut String, name: &str, help: &str, v: u64) {
    header(o, name, "counter", help);
    let _ = writeln!(o, "{name} {v}");
}

fn gauge(o: &mut String, name: &str, help: &str, v: u64) {
    header(o, name, "gauge", help);
    let _ = writeln!(o, "{name} {v}");
}
