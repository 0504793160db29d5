//! The soak's short version for CI: `ledgerctl loadgen --mode mixed` for a few seconds
//! against a real server (run in-process on a free port) with small seal and retention
//! intervals, so ingest, queries, searches, metrics and retention all run at once.
//! `LEDGER_SOAK_DURATION=10m cargo test -p ledger-tools --release --test soak` is the long
//! soak (BENCHMARKS.md has the same against a separate release server).

use std::process::Command;

#[test]
fn a_short_mixed_soak_passes_with_every_acknowledged_id_readable() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = ledger_server::Config::new(tmp.path().join("data"));
    config.pbkdf2_iterations = 10_000;
    config.retention_interval = std::time::Duration::from_secs(1);
    config.engine.seal_rows = 2_000;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(ledger_server::run(listener, config, async {
        let _ = stopped.await;
    }));
    let out = Command::new(env!("CARGO_BIN_EXE_ledgerctl"))
        .args([
            "loadgen",
            "--mode",
            "mixed",
            "--concurrency",
            "4",
            "--batch-size",
            "100",
        ])
        .arg("--duration")
        .arg(std::env::var("LEDGER_SOAK_DURATION").unwrap_or_else(|_| "6s".into()))
        .args(["--pid", &std::process::id().to_string()])
        .arg("--url")
        .arg(format!("http://{addr}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("soak passed"), "{text}");
    assert!(text.contains("rss MiB"), "{text}");
    let _ = stop.send(());
    rt.block_on(server).unwrap().unwrap();
}
