//! Search proofs: sustained ingest with indexing on (until every log is findable), index
//! bytes per log and total bytes per byte of JSON, and newest-100 search latency for a rare
//! term, a common term, a phrase, an attribute term and a regex.
//!
//! Knobs: `LEDGER_BENCH_LOGS` (stored logs, default 1,000,000; the targets are stated at
//! 10,000,000), `LEDGER_BENCH_QUERIES` (per query, default 500).

use std::time::Instant;

use hdrhistogram::Histogram;
use ledger_benches::{append_retrying, dir_bytes, json_len, knob, print_table, LogGen, Row};
use ledger_engine::search::{self, SearchBudget};
use ledger_engine::{Engine, EngineConfig, FsyncPolicy, ScanRequest};

const T0: i64 = 1_795_000_000_000_000;

fn main() {
    let stored = knob("LEDGER_BENCH_LOGS", 1_000_000) as usize;
    let queries = knob("LEDGER_BENCH_QUERIES", 500) as usize;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = EngineConfig {
        fsync: FsyncPolicy::Always,
        // LEDGER_BENCH_ZSTD_LEVEL: the segments' zstd level (the engine's default is 3).
        zstd_level: knob("LEDGER_BENCH_ZSTD_LEVEL", 3) as i32,
        ..EngineConfig::default()
    };
    let (e, _) = Engine::open(dir.path(), cfg).expect("open");
    // Four appenders, each generating its own logs as it goes (generation and JSON sizing
    // are counted in the time, so the figure is conservative).
    let per_thread = stored / 4000;
    let t = Instant::now();
    let threads: Vec<_> = (0..4u64)
        .map(|a| {
            let e = e.clone();
            std::thread::spawn(move || {
                let mut g = LogGen::new(7 + a, T0);
                let mut json = 0u64;
                for _ in 0..per_thread {
                    let b = g.batch(1000);
                    json += b.iter().map(|l| json_len(l) as u64).sum::<u64>();
                    append_retrying(&e, 1, &b);
                }
                json
            })
        })
        .collect();
    let json_bytes: u64 = threads
        .into_iter()
        .map(|t| t.join().expect("appender"))
        .sum();
    let stored = per_thread * 4000;
    e.refresh_search().expect("refresh");
    let secs = t.elapsed().as_secs_f64();
    let rate = stored as f64 / secs;
    e.flush().expect("flush");
    let mut rows = vec![Row {
        figure: format!(
            "ingest with indexing, durable, 4 appenders x 1000, {stored} logs, until searchable"
        ),
        target: ">= 100,000 logs/s".into(),
        measured: format!("{rate:.0} logs/s"),
        met: Some(rate >= 100_000.0),
    }];
    let index = dir_bytes(&dir.path().join("index"));
    let segs = e.stats().segment_bytes;
    rows.push(Row {
        figure: "index bytes per log".into(),
        target: "-".into(),
        measured: format!("{:.1}", index as f64 / stored as f64),
        met: None,
    });
    // Where the index's bytes go (the same figures as `ledgerctl inspect`).
    if let Ok(Some(space)) = ledger_engine::inspect::index_space(dir.path()) {
        for f in &space.fields {
            println!(
                "index field {:<24} {:>6.2} bytes/log (terms {:.2}, postings {:.2}, positions {:.2}, fast {:.2})",
                f.field,
                f.total() as f64 / stored as f64,
                f.terms as f64 / stored as f64,
                f.postings as f64 / stored as f64,
                f.positions as f64 / stored as f64,
                f.fast as f64 / stored as f64,
            );
        }
        println!(
            "index store {:.2}, other (norms, deletes, meta) {:.2} bytes/log; {} index segments",
            space.store as f64 / stored as f64,
            space.other as f64 / stored as f64,
            space.segments
        );
    }
    let ratio = (index + segs) as f64 / json_bytes as f64;
    rows.push(Row {
        figure: "bytes on disk per byte of JSON (segments + index)".into(),
        target: "<= 0.20".into(),
        measured: format!(
            "{ratio:.3} (segments {:.3}, index {:.3})",
            segs as f64 / json_bytes as f64,
            index as f64 / json_bytes as f64
        ),
        met: Some(ratio <= 0.20),
    });
    let cases = [
        ("rare term", "31337", 10_000),
        ("common term", "database", 10_000),
        ("phrase", "\"cache miss for key\"", 10_000),
        ("attribute term", "attributes.http.status:500", 10_000),
        ("regex", "message:/query took \\d+ms/", 0),
    ];
    for (name, q, target_us) in cases {
        let expr = search::parse(q).expect("query parses");
        let req = ScanRequest {
            limit: 100,
            ..Default::default()
        };
        let mut h = Histogram::<u64>::new(3).expect("histogram");
        let mut hits = 0;
        for _ in 0..queries {
            let t = Instant::now();
            let page = e
                .search(1, &expr, &req, SearchBudget::default())
                .expect("search");
            h.record(t.elapsed().as_micros() as u64).expect("record");
            hits = page.logs.len();
        }
        let (p50, p99) = (h.value_at_quantile(0.5), h.value_at_quantile(0.99));
        println!("search {name} {q}: {hits} hits, p50 {p50} us, p99 {p99} us");
        rows.push(Row {
            figure: format!("search {name} `{q}`, newest 100, {stored} logs"),
            target: if target_us > 0 {
                "p99 <= 10 ms (at 10 M)".into()
            } else {
                "-".into()
            },
            measured: format!(
                "p50 {:.2} ms, p99 {:.2} ms ({hits} hits)",
                p50 as f64 / 1e3,
                p99 as f64 / 1e3
            ),
            met: (target_us > 0).then_some(p99 <= target_us),
        });
    }
    e.close().expect("close");
    print_table(&rows);
}
