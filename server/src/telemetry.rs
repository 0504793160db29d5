//! Figures for `GET /metrics`, encoded by `prometheus-client`: requests by route and status
//! with a latency histogram, ingested logs and bytes, and the engine's own figures.
//!
//! The request and ingest figures are live metrics in a registry; the engine's (queue depth,
//! segments, WAL, fsync latency) are read from the engine at each scrape and encoded as
//! constants, so the engine keeps its plain atomics and knows nothing of Prometheus.

use std::sync::atomic::{AtomicU64, Ordering};

use ledger_engine::FSYNC_BUCKETS_US;
use ledger_engine::{Engine, EngineStats};
use prometheus_client::encoding::{text, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the request latency buckets.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The content type of the classic Prometheus text format, for scrapers (and people) that do
/// not ask for OpenMetrics (see [`classic_text`]; the sample lines are identical in both).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// What Prometheus asks for first.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The server's counters. One per process, shared by every request.
pub struct Telemetry {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram, fn() -> Histogram>,
    ingested_logs: Counter,
    ingested_bytes: Counter,
    rejected_logs: Counter,
}

impl Default for Telemetry {
    fn default() -> Telemetry {
        let t = Telemetry {
            registry: Registry::default(),
            requests: Family::default(),
            durations: Family::new_with_constructor(latency_histogram),
            ingested_logs: Counter::default(),
            ingested_bytes: Counter::default(),
            rejected_logs: Counter::default(),
        };
        let mut registry = Registry::default();
        registry.register(
            "ledger_http_requests",
            "HTTP requests answered, by route, method and status",
            t.requests.clone(),
        );
        registry.register(
            "ledger_http_request_duration_seconds",
            "Time to answer HTTP requests, by route, method and status",
            t.durations.clone(),
        );
        for (name, help, counter) in [
            (
                "ledger_ingested_logs",
                "Logs accepted (202) since start",
                &t.ingested_logs,
            ),
            (
                "ledger_ingested_bytes",
                "Bytes of JSON of the logs accepted since start",
                &t.ingested_bytes,
            ),
            (
                "ledger_rejected_logs",
                "Logs refused by validation or quota since start",
                &t.rejected_logs,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
        Telemetry { registry, ..t }
    }
}

impl Telemetry {
    /// Records one finished request.
    pub fn observe(&self, route: &'static str, method: &'static str, status: u16, secs: f64) {
        let labels = RequestLabels {
            route,
            method,
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.durations.get_or_create(&labels).observe(secs);
    }

    /// Counts logs accepted by an ingest request.
    pub fn ingested(&self, logs: u64, bytes: u64, rejected: u64) {
        self.ingested_logs.inc_by(logs);
        self.ingested_bytes.inc_by(bytes);
        self.rejected_logs.inc_by(rejected);
    }

    /// The whole exposition: the live metrics, then the engine's figures as of now, then
    /// `extra` counters (name without `_total`, help, value) and `extra_gauges` the caller
    /// owns.
    pub fn render(
        &self,
        engine: &Engine,
        stats: &EngineStats,
        extra: &[(&str, &str, u64)],
        extra_gauges: &[(&str, &str, f64)],
    ) -> String {
        let mut scrape = Registry::default();
        let gauges: [(&str, &str, u64); 9] = [
            (
                "ledger_queue_depth",
                "Logs accepted but not yet sealed into segments, all projects",
                stats.memtable_rows as u64,
            ),
            (
                "ledger_index_lag",
                "Logs accepted but not yet findable by search (committed to the index)",
                engine.search_lag(),
            ),
            (
                "ledger_memtable_bytes",
                "Bytes held in memtables",
                stats.memtable_bytes as u64,
            ),
            ("ledger_segments", "Sealed segments", stats.segments as u64),
            (
                "ledger_segment_bytes",
                "Bytes of sealed segment files",
                stats.segment_bytes,
            ),
            (
                "ledger_segment_local_bytes",
                "Bytes of sealed segment files on the local disk (the rest are read from object storage)",
                stats.segment_local_bytes,
            ),
            (
                "ledger_segment_raw_bytes",
                "Bytes of sealed segments' columns before zstd compression",
                stats.segment_raw_bytes,
            ),
            (
                "ledger_segment_rows",
                "Logs in sealed segments",
                stats.segment_rows,
            ),
            (
                "ledger_projects_with_data",
                "Projects holding logs",
                stats.projects as u64,
            ),
        ];
        for (name, help, v) in gauges {
            scrape.register(name, help, ConstGauge::new(v));
        }
        for (name, help, v) in extra_gauges {
            scrape.register(*name, *help, ConstGauge::new(*v));
        }
        let w = engine.wal_stats();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counters = [
            (
                "ledger_wal_appends",
                "Batches appended to the WAL",
                load(&w.appends),
            ),
            (
                "ledger_wal_bytes_written",
                "Bytes written to the WAL",
                load(&w.bytes_written),
            ),
            (
                "ledger_wal_files_deleted",
                "WAL files removed after checkpoints",
                load(&w.files_deleted),
            ),
        ];
        for (name, help, v) in counters.into_iter().chain(extra.iter().copied()) {
            scrape.register(name, help, ConstCounter::new(v));
        }
        scrape.register(
            "ledger_wal_fsync_seconds",
            "WAL fsync latency",
            FixedHistogram::from_cumulative(
                FSYNC_BUCKETS_US.iter().map(|us| *us as f64 / 1e6),
                w.fsync_buckets.iter().map(load),
                load(&w.fsyncs),
                load(&w.fsync_nanos) as f64 / 1e9,
            ),
        );
        let mut out = String::with_capacity(16 << 10);
        // Writing into a String cannot fail.
        let _ = text::encode_registry(&mut out, &self.registry)
            .and_then(|()| text::encode_registry(&mut out, &scrape))
            .and_then(|()| text::encode_eof(&mut out));
        out
    }
}

/// The classic Prometheus text format (0.0.4) of an OpenMetrics exposition. The samples are
/// the same; what differs is the metadata: OpenMetrics names a counter family without its
/// `_total` suffix, the classic format names it with it (a classic parser would otherwise
/// file the `_total` samples under an untyped family), and `# EOF` and `# UNIT` are
/// OpenMetrics-only.
pub fn classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let total = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                out.push_str(&format!("{prefix}{name}{total} {tail}"));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// A histogram read from someone else's counters at scrape time.
#[derive(Debug)]
struct FixedHistogram {
    sum: f64,
    count: u64,
    /// Per-bucket (not cumulative) counts; the last bound is `f64::MAX`, which encodes `+Inf`.
    buckets: Vec<(f64, u64)>,
}

impl FixedHistogram {
    /// From cumulative bucket counts (`cumulative[i]` = observations ≤ `bounds[i]`), as the
    /// engine keeps them.
    fn from_cumulative(
        bounds: impl Iterator<Item = f64>,
        cumulative: impl Iterator<Item = u64>,
        count: u64,
        sum: f64,
    ) -> FixedHistogram {
        let mut below = 0;
        let mut buckets: Vec<(f64, u64)> = bounds
            .zip(cumulative)
            .map(|(b, c)| {
                let n = c.saturating_sub(below);
                below = below.max(c);
                (b, n)
            })
            .collect();
        buckets.push((f64::MAX, count.saturating_sub(below)));
        FixedHistogram {
            sum,
            count,
            buckets,
        }
    }
}

impl TypedMetric for FixedHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for FixedHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }
    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counter_families_with_their_total_suffix() {
        let open = "# HELP a_requests Requests.\n# TYPE a_requests counter\na_requests_total 3\n\
                    # HELP b Depth.\n# TYPE b gauge\nb 1\n# EOF\n";
        assert_eq!(
            classic_text(open),
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\na_requests_total 3\n\
             # HELP b Depth.\n# TYPE b gauge\nb 1\n"
        );
    }

    #[test]
    fn fixed_histogram_turns_cumulative_counts_into_buckets() {
        let h = FixedHistogram::from_cumulative(
            [0.1, 0.5, 1.0].into_iter(),
            [2, 5, 5].into_iter(),
            7,
            3.5,
        );
        assert_eq!(h.buckets, vec![(0.1, 2), (0.5, 3), (1.0, 0), (f64::MAX, 2)]);
        let mut r = Registry::default();
        r.register("x_seconds", "x", h);
        let mut out = String::new();
        text::encode(&mut out, &r).unwrap();
        for line in [
            "x_seconds_bucket{le=\"0.5\"} 5",
            "x_seconds_bucket{le=\"1.0\"} 5",
            "x_seconds_bucket{le=\"+Inf\"} 7",
            "x_seconds_count 7",
        ] {
            assert!(out.contains(line), "{line} in\n{out}");
        }
    }

    #[test]
    fn requests_are_counted_by_route_method_and_status() {
        let t = Telemetry::default();
        t.observe("/api/v1/logs", "GET", 200, 0.003);
        t.observe("/api/v1/logs", "GET", 200, 0.2);
        let mut out = String::new();
        text::encode_registry(&mut out, &t.registry).unwrap();
        for line in [
            "ledger_http_requests_total{route=\"/api/v1/logs\",method=\"GET\",status=\"200\"} 2",
            "ledger_http_request_duration_seconds_bucket{le=\"0.005\",route=\"/api/v1/logs\",method=\"GET\",status=\"200\"} 1",
            "ledger_http_request_duration_seconds_count{route=\"/api/v1/logs\",method=\"GET\",status=\"200\"} 2",
        ] {
            assert!(out.contains(line), "{line} in\n{out}");
        }
    }
}
