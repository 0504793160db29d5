//! Crash test: a child process appends batches (and single logs) and prints each
//! acknowledgement, now and then drops expired segments (retention) and deletes a project;
//! the parent kills it with SIGKILL at a random moment, reopens the data directory, and
//! checks: every acknowledged log is there exactly once, no batch is half there, a deleted
//! project is wholly gone, daily usage and the metrics rollups equal the stored logs, and
//! `verify` is clean. Many rounds on one directory, so kills land during appends, seals,
//! index commits and merges, WAL rotation and checkpoints, retention drops and deletions.
//!
//! `LEDGER_CRASH_ROUNDS` sets the number of rounds (default 25; the long mode is 1,000);
//! `LEDGER_CRASH_SEED` the seed.
//! This file has its own `main` (harness = false) because it re-executes itself as the child.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use ledger_engine::{AppendOptions, EngineConfig, Field, FsyncPolicy};
use rand::Rng;

const CHILD_DIR: &str = "LEDGER_CRASH_CHILD_DIR";
const CHILD_FROM: &str = "LEDGER_CRASH_CHILD_FROM";

fn config() -> EngineConfig {
    EngineConfig {
        fsync: FsyncPolicy::Always,
        seal_rows: 400,
        block_rows: 64,
        wal_file_bytes: 32 << 10,
        ..EngineConfig::default()
    }
}

/// The project whose logs are old enough for retention to drop them at every call.
const EXPIRING: u64 = 4;
/// Each child run appends to its own project `DOOMED_BASE + from`, then deletes it.
const DOOMED_BASE: u64 = 1_000_000;
/// Logs of `EXPIRING` are stamped before this; retention drops segments older than it.
const OLD: i64 = T0 - 86_400_000_000;

/// What a batch counts in usage bytes: 100 per log, so bytes check as well as logs.
fn opts(n: usize) -> AppendOptions {
    AppendOptions {
        usage_bytes: n as u64 * 100,
        ..AppendOptions::default()
    }
}

/// The child: append until killed, printing `ack <project> <batch> <rows>` after each
/// acknowledgement and `deleted <project>` after a deletion returns.
fn child(dir: &str, from: u64) -> ! {
    let e = open(std::path::Path::new(dir), config());
    let mut rng = rng(from);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").expect("stdout");
    out.flush().expect("stdout");
    let doomed = DOOMED_BASE + from;
    let delete_at = from + rng.gen_range(5..40);
    for b in from.. {
        let (project, base) = match b % 5 {
            3 => (EXPIRING, OLD - 10_000_000),
            4 if b < delete_at => (doomed, T0),
            _ => (b % 3 + 1, T0),
        };
        // A quarter are single logs, like `/ingest/single`.
        let n = if rng.gen_bool(0.25) {
            1
        } else {
            rng.gen_range(2..60usize)
        };
        let logs = (0..n)
            .map(|i| tagged(base + rng.gen_range(0..10_000_000), b, i, n))
            .collect();
        match e.append(project, logs, opts(n)) {
            Ok(_) => {
                writeln!(out, "ack {project} {b} {n}").expect("stdout");
                out.flush().expect("stdout");
            }
            Err(err) => panic!("append failed: {err}"),
        }
        if b % 17 == 0 {
            e.enforce_retention(EXPIRING, OLD).expect("retention");
        }
        if b == delete_at {
            e.delete_project(doomed).expect("delete project");
            writeln!(out, "deleted {doomed}").expect("stdout");
            out.flush().expect("stdout");
        }
    }
    unreachable!()
}

/// Parses `b<batch> r<row> of <n>`.
fn parse_tag(msg: &str) -> Option<(u64, usize, usize)> {
    let mut it = msg.split(' ');
    let b = it.next()?.strip_prefix('b')?.parse().ok()?;
    let r = it.next()?.strip_prefix('r')?.parse().ok()?;
    it.next()?;
    let n = it.next()?.parse().ok()?;
    Some((b, r, n))
}

/// What the parent knows of the children: acknowledged batches, projects whose deletion
/// returned, and every doomed project a child started.
#[derive(Default)]
struct Known {
    acked: HashMap<u64, (u64, usize)>,
    deleted: HashSet<u64>,
    doomed: HashSet<u64>,
}

fn check(dir: &std::path::Path, known: &Known) -> usize {
    let acked = &known.acked;
    let (e, report) = ledger_engine::Engine::open(dir, config()).expect("reopen after SIGKILL");
    let mut rows: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut sizes: HashMap<u64, (u64, usize)> = HashMap::new();
    let projects: Vec<u64> = (1..=EXPIRING).chain(known.doomed.iter().copied()).collect();
    for &project in &projects {
        let stored = all_logs(&e, project);
        let usage = total_usage(&e, project);
        let n = stored.len() as u64;
        if project == EXPIRING {
            // Retention drops logs, not usage: what was accepted stays counted.
            assert!(
                usage.logs >= n,
                "usage of {project}: {usage:?} < {n} stored"
            );
        } else {
            assert_eq!(
                usage,
                ledger_engine::DayUsage {
                    logs: n,
                    bytes: n * 100
                },
                "usage of project {project} differs from its {n} stored logs"
            );
            // The rollups count exactly the stored logs (all within ten seconds of T0).
            let volume: u64 = e
                .log_volume(project, T0 + 3_600_000_000, 2, ledger_engine::Bucket::Hour)
                .expect("volume")
                .iter()
                .map(|b| b.total)
                .sum();
            assert_eq!(volume, n, "log volume of project {project}");
        }
        if known.deleted.contains(&project) {
            assert_eq!(n, 0, "deleted project {project} still has {n} logs");
        }
        for r in stored {
            let msg = r.get(Field::Message).expect("message");
            let (b, i, n) = parse_tag(msg).unwrap_or_else(|| panic!("bad row {msg}"));
            let home = match b % 5 {
                3 => EXPIRING,
                4 if known.doomed.contains(&project) => project,
                _ => b % 3 + 1,
            };
            assert_eq!(home, project, "batch {b} in the wrong project");
            rows.entry(b).or_default().push(i);
            sizes.insert(b, (project, n));
        }
    }
    for (b, idx) in &mut rows {
        idx.sort_unstable();
        let n = sizes[b].1;
        assert_eq!(
            *idx,
            (0..n).collect::<Vec<_>>(),
            "batch {b} is not whole and once: rows {idx:?} of {n}"
        );
    }
    for (b, (project, n)) in acked {
        if *project == EXPIRING && !sizes.contains_key(b) {
            continue; // retention may have dropped it (whole: checked above)
        }
        if known.doomed.contains(project) && !sizes.keys().any(|k| sizes[k].0 == *project) {
            continue; // the deletion committed before the kill (and it is wholly gone)
        }
        assert_eq!(
            sizes.get(b),
            Some(&(*project, *n)),
            "acknowledged batch {b} ({n} rows, project {project}) lost; recovery: {:?}",
            report.recovery
        );
    }
    drop(e);
    rows.len()
}

fn main() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let from = std::env::var(CHILD_FROM)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        child(&dir, from);
    }
    let rounds: u64 = std::env::var("LEDGER_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(25);
    let seed: u64 = std::env::var("LEDGER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| ledger_engine::now_micros() as u64);
    println!("crash test: {rounds} rounds, seed {seed} (LEDGER_CRASH_SEED={seed} to repeat)");
    let mut rng = rng(seed);
    let mut dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("own path");
    let mut known = Known::default();
    let (mut total_acked, mut total_deleted, mut during_open) = (0, 0, 0);
    let mut next_batch = 0u64;
    for round in 0..rounds {
        // A fresh directory every 100 rounds keeps a long run's rounds equally quick.
        if round > 0 && round % 100 == 0 {
            total_acked += known.acked.len();
            total_deleted += known.deleted.len();
            known = Known::default();
            dir = tempfile::tempdir().expect("tempdir");
        }
        let mut child = Command::new(&exe)
            .env(CHILD_DIR, dir.path())
            .env(CHILD_FROM, next_batch.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if l == "ready" {
                    let _ = ready_tx.send(());
                }
                lines.push(l);
            }
            lines
        });
        if rng.gen_bool(0.15) {
            // Some kills land while the engine opens: replay, index rebuild, first seals.
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..150)));
            during_open += 1;
        } else {
            let _ = ready_rx.recv_timeout(Duration::from_secs(60));
            std::thread::sleep(Duration::from_millis(rng.gen_range(5..300)));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        let lines = reader.join().expect("reader");
        let mut last = next_batch;
        known.doomed.insert(DOOMED_BASE + next_batch);
        for l in &lines {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() == 4 && f[0] == "ack" {
                let (p, b, n) = (
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                );
                known.acked.insert(b, (p, n));
                last = last.max(b + 1);
            }
            if f.len() == 2 && f[0] == "deleted" {
                known.deleted.insert(f[1].parse().unwrap());
            }
        }
        // Unacknowledged batches may or may not have landed; skip past their numbers.
        next_batch = last + 1000;
        let batches = check(dir.path(), &known);
        let rep = ledger_engine::inspect::verify_dir(dir.path()).expect("verify runs");
        assert!(
            rep.problems.is_empty(),
            "verify found damage: {:?}",
            rep.problems
        );
        println!(
            "round {round}: {} acks this round, {} acked batches in all, {batches} batches stored",
            lines.len(),
            known.acked.len()
        );
    }
    println!(
        "crash: {rounds} kills ({during_open} while opening); {} acknowledged batches, 0 lost, 0 duplicated, 0 miscounted; {} projects deleted",
        total_acked + known.acked.len(),
        total_deleted + known.deleted.len()
    );
    assert!(
        total_acked + known.acked.len() > rounds as usize,
        "the child acknowledged too little to test anything"
    );
    println!("crash: {rounds} passed, 0 failed");
}
