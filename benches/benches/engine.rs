//! Engine proofs: durable append throughput (1, 4, 16 appenders × batches of 100 and 1,000),
//! bytes on disk per byte of JSON, and newest-100 scan latency with filters.
//!
//! Knobs: `LEDGER_BENCH_APPEND_LOGS` (logs per append configuration, default 300,000),
//! `LEDGER_BENCH_LOGS` (stored logs for the scan figures, default 1,000,000; the target is
//! stated at 10,000,000), `LEDGER_BENCH_QUERIES` (default 2,000).

use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use ledger_benches::{append_retrying, json_len, knob, print_table, LogGen, Row};
use ledger_engine::{
    AppendOptions, Engine, EngineConfig, Field, Filter, FsyncPolicy, Level, ScanRequest,
};

const T0: i64 = 1_795_000_000_000_000;

/// The engine's storage path alone: the search index has its own bench (`search.rs`).
fn storage_config() -> EngineConfig {
    EngineConfig {
        search: false,
        ..EngineConfig::default()
    }
}

fn append_throughput(appenders: usize, batch: usize, total: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let (e, _) = Engine::open(dir.path(), storage_config()).expect("open");
    let per = total / appenders / batch;
    // Generate outside the timed part.
    let work: Vec<Vec<Vec<_>>> = (0..appenders)
        .map(|a| {
            let mut g = LogGen::new(a as u64, T0);
            (0..per).map(|_| g.batch(batch)).collect()
        })
        .collect();
    let e = Arc::new(e);
    let start = Instant::now();
    let threads: Vec<_> = work
        .into_iter()
        .enumerate()
        .map(|(a, batches)| {
            let e = e.clone();
            std::thread::spawn(move || {
                for b in batches {
                    e.append(a as u64 + 1, b, AppendOptions::default())
                        .expect("append");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("appender");
    }
    let secs = start.elapsed().as_secs_f64();
    e.close().expect("close");
    (per * batch * appenders) as f64 / secs
}

/// Encode + compress and decompress + decode speed and size of segment blocks of 1,024
/// rows: the layout written today (version 3: a zstd frame per column, string columns
/// templated) and the one of versions 1 and 2 (one frame, every column plain), on the same
/// rows. The rows are four generators' logs interleaved by timestamp, as a segment of a
/// project fed by several clients holds them.
fn block_codec(rows: &mut Vec<Row>) {
    use ledger_engine::segment::block;
    let mut gens: Vec<LogGen> = (0..4).map(|a| LogGen::new(3 + a, T0)).collect();
    let mut all: Vec<ledger_engine::LogRecord> = Vec::new();
    let mut seq = 0;
    for round in 0..20 {
        for g in gens.iter_mut() {
            for log in g.batch(256) {
                seq += 1;
                all.push(ledger_engine::LogRecord {
                    seq,
                    ingested_at: T0 + round * 300_000,
                    log,
                });
            }
        }
    }
    all.sort_by_key(|r| r.key());
    let blocks: Vec<&[ledger_engine::LogRecord]> = all.chunks(1024).collect();
    let json: usize = all.iter().map(|r| json_len(&r.log)).sum();
    let n = all.len();
    let rounds = knob("LEDGER_BENCH_BLOCK_ROUNDS", 10) as usize;
    let mut figures = Vec::new();
    for version in [3, 2] {
        let t = Instant::now();
        let mut packed = Vec::new();
        for _ in 0..rounds {
            packed = blocks
                .iter()
                .map(|b| {
                    if version == 3 {
                        let p = block::pack(b, 3).expect("pack");
                        (p.bytes, p.raw_len)
                    } else {
                        let raw = block::encode(b);
                        (zstd::bulk::compress(&raw, 3).expect("zstd"), raw.len())
                    }
                })
                .collect();
        }
        let enc = (rounds * n) as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..rounds {
            for ((z, raw_len), b) in packed.iter().zip(&blocks) {
                let back = if version == 3 {
                    block::unpack(z, *raw_len).expect("unpack")
                } else {
                    block::decode(&zstd::bulk::decompress(z, *raw_len).expect("zstd"))
                        .expect("decode")
                };
                assert_eq!(back.len(), b.len());
            }
        }
        let dec = (rounds * n) as f64 / t.elapsed().as_secs_f64();
        let bytes: usize = packed.iter().map(|(z, _)| z.len()).sum();
        println!(
            "version {version} blocks of 1024 rows: {:.1} JSON bytes a log, {:.1} stored ({:.3} of the JSON); encode {enc:.0} rows/s, decode {dec:.0} rows/s",
            json as f64 / n as f64,
            bytes as f64 / n as f64,
            bytes as f64 / json as f64
        );
        figures.push((version, bytes, enc, dec));
    }
    for (version, bytes, enc, dec) in figures {
        let layout = if version == 3 {
            "version 3: a frame per column, strings templated"
        } else {
            "version 2: one frame, plain columns"
        };
        rows.push(Row {
            figure: format!("block bytes per log, zstd -3, {layout}"),
            target: "-".into(),
            measured: format!(
                "{:.1} bytes/log, {:.3} of its JSON",
                bytes as f64 / n as f64,
                bytes as f64 / json as f64
            ),
            met: None,
        });
        rows.push(Row {
            figure: format!("block encode + compress / decompress + decode, version {version}"),
            target: "-".into(),
            measured: format!("{enc:.0} / {dec:.0} rows/s"),
            met: None,
        });
    }
}

fn main() {
    let total = knob("LEDGER_BENCH_APPEND_LOGS", 300_000) as usize;
    let stored = knob("LEDGER_BENCH_LOGS", 1_000_000) as usize;
    let queries = knob("LEDGER_BENCH_QUERIES", 2_000) as usize;
    let mut rows = Vec::new();
    block_codec(&mut rows);
    // LEDGER_BENCH_BLOCKS_ONLY=1: the block figures alone (a few seconds).
    if knob("LEDGER_BENCH_BLOCKS_ONLY", 0) == 1 {
        print_table(&rows);
        return;
    }
    println!("durable append (fsync always, group commit), {total} logs per configuration");
    for appenders in [1, 4, 16] {
        for batch in [100, 1000] {
            let rate = append_throughput(appenders, batch, total);
            println!("  {appenders:>2} appenders x batch {batch:>4}: {rate:>10.0} logs/s");
            rows.push(Row {
                figure: format!("append, {appenders} appenders, batch {batch}"),
                target: ">= 500,000 logs/s".into(),
                measured: format!("{rate:.0} logs/s"),
                met: Some(rate >= 500_000.0),
            });
        }
    }

    // Stored data set for size and scan figures.
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = EngineConfig {
        fsync: FsyncPolicy::Never,
        ..storage_config()
    };
    let (e, _) = Engine::open(dir.path(), cfg).expect("open");
    let mut g = LogGen::new(42, T0);
    let mut json_bytes = 0u64;
    let t = Instant::now();
    let mut done = 0;
    while done < stored {
        let n = 1000.min(stored - done);
        let b = g.batch(n);
        json_bytes += b.iter().map(|l| json_len(l) as u64).sum::<u64>();
        append_retrying(&e, 1, &b);
        done += n;
    }
    e.flush().expect("flush");
    let st = e.stats();
    println!(
        "stored {stored} logs in {:.1}s; {} segments, {:.1} JSON bytes per log",
        t.elapsed().as_secs_f64(),
        st.segments,
        json_bytes as f64 / stored as f64
    );
    let ratio = st.segment_bytes as f64 / json_bytes as f64;
    rows.push(Row {
        figure: "segment bytes per byte of JSON".into(),
        target: "<= 0.20 (segments + index)".into(),
        measured: format!(
            "{ratio:.3} ({:.1} bytes/log; index not yet built)",
            st.segment_bytes as f64 / stored as f64
        ),
        met: Some(ratio <= 0.20),
    });

    // (name, filter, logs a page holds)
    let scans: Vec<(&str, Filter, usize)> = vec![
        ("newest 100, no filter", Filter::default(), 100),
        (
            "newest 100, level=error,critical",
            Filter {
                levels: Some(1 << Level::Error as u8 | 1 << Level::Critical as u8),
                ..Default::default()
            },
            100,
        ),
        (
            "newest 100, service=billing & environment=prod",
            Filter {
                fields: vec![
                    (Field::Service, "billing".into()),
                    (Field::Environment, "prod".into()),
                ],
                ..Default::default()
            },
            100,
        ),
        // A value no log has: every block is ruled out by its keyword filter, unread.
        (
            "release matching no log",
            Filter {
                fields: vec![(Field::Release, "2025.01.1".into())],
                ..Default::default()
            },
            0,
        ),
    ];
    for (name, filter, want) in scans {
        let req = ScanRequest {
            filter,
            limit: 100,
            ..Default::default()
        };
        let mut h = Histogram::<u64>::new(3).expect("histogram");
        for _ in 0..queries {
            let t = Instant::now();
            let page = e.scan(1, &req).expect("scan");
            h.record(t.elapsed().as_micros() as u64).expect("record");
            assert_eq!(page.logs.len(), want);
        }
        let (p50, p99) = (h.value_at_quantile(0.5), h.value_at_quantile(0.99));
        println!("  scan {name}: p50 {p50} us, p99 {p99} us");
        rows.push(Row {
            figure: format!("scan {name}, {stored} logs"),
            target: "p99 <= 5 ms (at 10 M)".into(),
            measured: format!(
                "p50 {:.2} ms, p99 {:.2} ms",
                p50 as f64 / 1e3,
                p99 as f64 / 1e3
            ),
            met: Some(p99 <= 5_000),
        });
    }
    e.close().expect("close");
    print_table(&rows);
}
