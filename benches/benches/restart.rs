//! Restart proof: how long `Engine::open` takes to replay a large WAL (target: 1 GB in
//! ≤ 10 s). The WAL is written by an engine that never seals (as after a crash with a long
//! unsealed tail), then the data directory is opened with the default configuration, which
//! replays every frame, rebuilds the memtables and seals them into segments as it goes.
//!
//! Knobs: `LEDGER_BENCH_WAL_BYTES` (WAL to write, default 1 GiB), `LEDGER_BENCH_SEARCH`
//! (1 also feeds the replayed rows to the search index, which indexes them in the
//! background after `open` returns; default 0), `LEDGER_BENCH_RUNS` (restarts timed, each
//! from a fresh copy of the written directory; the median is reported; default 3),
//! `LEDGER_BENCH_ZSTD_LEVEL` (the zstd level of the segments replay seals; default the
//! engine's, 3: what a cheaper level would save, and cost on disk).

use std::time::Instant;

use ledger_benches::{copy_dir, dir_bytes, knob, print_table, LogGen, Row};
use ledger_engine::{AppendOptions, Engine, EngineConfig, FsyncPolicy};

const T0: i64 = 1_795_000_000_000_000;

fn main() {
    let target = knob("LEDGER_BENCH_WAL_BYTES", 1 << 30);
    let search = knob("LEDGER_BENCH_SEARCH", 0) == 1;
    let dir = tempfile::tempdir().expect("tempdir");
    let wal_dir = dir.path().join("wal");

    // Write: no sealing, no backpressure, no fsync (the bytes are the same; only the
    // restart is timed).
    let writer = EngineConfig {
        seal_rows: usize::MAX,
        seal_bytes: usize::MAX,
        seal_age: std::time::Duration::from_secs(1 << 32),
        memtable_limit_bytes: usize::MAX,
        fsync: FsyncPolicy::Never,
        search: false,
        ..EngineConfig::default()
    };
    let (e, _) = Engine::open(dir.path(), writer).expect("open");
    let mut gens: Vec<LogGen> = (0..4).map(|p| LogGen::new(p, T0)).collect();
    let t = Instant::now();
    let mut logs = 0u64;
    while dir_bytes(&wal_dir) < target {
        for (p, g) in gens.iter_mut().enumerate() {
            for _ in 0..10 {
                e.append(p as u64 + 1, g.batch(1000), AppendOptions::default())
                    .expect("append");
                logs += 1000;
            }
        }
    }
    e.sync().expect("sync");
    e.close_without_sealing();
    drop(e);
    let wal = dir_bytes(&wal_dir);
    println!(
        "wrote {logs} logs, {:.0} MiB of WAL ({:.0} bytes/log) in {:.1}s",
        wal as f64 / (1 << 20) as f64,
        wal as f64 / logs as f64,
        t.elapsed().as_secs_f64()
    );

    let runs = knob("LEDGER_BENCH_RUNS", 3).max(1);
    let mut times = Vec::new();
    let mut wal_bytes = 0;
    for run in 1..=runs {
        // Each restart replays the same WAL: a copy, since replay seals and trims it.
        let copy = tempfile::tempdir().expect("tempdir");
        copy_dir(dir.path(), copy.path());
        let defaults = EngineConfig::default();
        let cfg = EngineConfig {
            search,
            zstd_level: knob("LEDGER_BENCH_ZSTD_LEVEL", defaults.zstd_level as u64) as i32,
            ..defaults
        };
        println!("restart {run} of {runs} (pid {})", std::process::id());
        let t = Instant::now();
        let (e, report) = Engine::open(copy.path(), cfg).expect("reopen");
        let secs = t.elapsed().as_secs_f64();
        let st = e.stats();
        let stored = dir_bytes(copy.path()) - dir_bytes(&copy.path().join("wal"));
        println!(
            "replayed {} rows ({:.0} MiB) in {secs:.2}s; {} segments, {} rows still in memtables, \
             {:.0} MiB besides the WAL",
            report.recovery.rows_replayed,
            report.recovery.wal_bytes as f64 / (1 << 20) as f64,
            st.segments,
            st.memtable_rows,
            stored as f64 / (1 << 20) as f64
        );
        assert_eq!(report.recovery.rows_replayed, logs, "every log replayed");
        e.close().expect("close");
        times.push(secs);
        wal_bytes = report.recovery.wal_bytes;
    }
    times.sort_by(f64::total_cmp);
    let secs = times[times.len() / 2];
    let per_gb = secs / (wal_bytes as f64 / 1e9);
    let logs_per_s = logs as f64 / secs;
    let report_gb = wal_bytes as f64 / 1e9;
    print_table(&[
        Row {
            figure: format!(
                "restart, {report_gb:.2} GB of WAL replayed and sealed{} (median of {runs})",
                if search { ", search on" } else { "" }
            ),
            target: "<= 10 s for 1 GB".into(),
            measured: format!("{secs:.2} s ({per_gb:.2} s per GB; runs {times:.2?})"),
            met: Some(per_gb <= 10.0),
        },
        Row {
            figure: "replay rate".into(),
            target: "-".into(),
            measured: format!("{logs_per_s:.0} logs/s"),
            met: None,
        },
    ]);
}
