//! Deleting logs by query at the engine, without HTTP and without ingest beside it: the
//! cost of the work itself (the HTTP target, under ingest, is `benches/http/deletion.sh`).
//! Fills one project with generated logs (indexed), then deletes its `critical` ones
//! (about 1 %, spread over every block) and reports the time and the engine's own account
//! of where it went (its `deletion finished` line, printed as it logs it).
//!
//! Knobs: `LEDGER_BENCH_LOGS` (stored logs, default 2,000,000).

use std::time::Instant;

use ledger_benches::{append_retrying, knob, print_table, LogGen, Row};
use ledger_engine::{Deletion, Engine, EngineConfig, FsyncPolicy, Level, LogRecord};

const T0: i64 = 1_795_000_000_000_000;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter("ledger_engine::db::deletion=info")
        .with_target(false)
        .with_ansi(false)
        .init();
    let stored = knob("LEDGER_BENCH_LOGS", 2_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = EngineConfig {
        fsync: FsyncPolicy::Never,
        ..EngineConfig::default()
    };
    let (e, _) = Engine::open(dir.path(), cfg).expect("open");
    let mut g = LogGen::new(1, T0);
    let t = Instant::now();
    let mut logs = 0;
    while logs < stored {
        let b = g.batch(1000);
        append_retrying(&e, 1, &b);
        logs += 1000;
    }
    e.sync().expect("sync");
    println!("filled {logs} logs in {:.1} s", t.elapsed().as_secs_f64());

    let matches = |r: &LogRecord| r.log.level == Level::Critical;
    let d = Deletion {
        id: 1,
        through: e.next_seq(),
        start: None,
        end: None,
        matches: &matches,
    };
    println!("deleting (pid {})", std::process::id());
    let t = Instant::now();
    let removed = e.delete_logs(1, &d).expect("delete");
    let secs = t.elapsed().as_secs_f64();
    e.close().expect("close");
    print_table(&[
        Row {
            figure: format!("delete the critical logs of {logs}, no ingest beside it"),
            target: "-".into(),
            measured: format!(
                "{removed} removed in {secs:.1} s ({:.0} stored logs/s)",
                logs as f64 / secs
            ),
            met: None,
        },
        Row {
            figure: "the same per stored log".into(),
            target: "-".into(),
            measured: format!("{:.2} µs", secs * 1e6 / logs as f64),
            met: None,
        },
    ]);
}
