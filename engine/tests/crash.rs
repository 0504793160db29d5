//! Crash test: a child process appends batches and prints each acknowledgement; the parent
//! kills it with SIGKILL at a random moment, reopens the data directory, and checks that
//! every acknowledged log is there exactly once and that no batch is half there. Many rounds
//! on one directory, so crashes land during appends, seals, WAL rotation and checkpoints.
//!
//! `LEDGER_CRASH_ROUNDS` sets the number of rounds (default 25); `LEDGER_CRASH_SEED` the seed.
//! This file has its own `main` (harness = false) because it re-executes itself as the child.

mod common;

use std::collections::HashMap;
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

/// The child: append until killed, printing `ack <project> <batch> <rows>` after each.
fn child(dir: &str, from: u64) -> ! {
    let e = open(std::path::Path::new(dir), config());
    let mut rng = rng(from);
    let mut out = std::io::stdout().lock();
    for b in from.. {
        let project = b % 3 + 1;
        let n = rng.gen_range(1..60usize);
        let logs = (0..n)
            .map(|i| tagged(T0 + rng.gen_range(0..10_000_000), b, i, n))
            .collect();
        match e.append(project, logs, AppendOptions::default()) {
            Ok(_) => {
                writeln!(out, "ack {project} {b} {n}").expect("stdout");
                out.flush().expect("stdout");
            }
            Err(err) => panic!("append failed: {err}"),
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

fn check(dir: &std::path::Path, acked: &HashMap<u64, (u64, usize)>) -> usize {
    let (e, report) = ledger_engine::Engine::open(dir, config()).expect("reopen after SIGKILL");
    let mut rows: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut sizes: HashMap<u64, (u64, usize)> = HashMap::new();
    for project in 1..=3 {
        for r in all_logs(&e, project) {
            let msg = r.get(Field::Message).expect("message");
            let (b, i, n) = parse_tag(msg).unwrap_or_else(|| panic!("bad row {msg}"));
            assert_eq!(b % 3 + 1, project, "batch {b} in the wrong project");
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
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("own path");
    let mut acked: HashMap<u64, (u64, usize)> = HashMap::new();
    let mut next_batch = 0u64;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .env(CHILD_DIR, dir.path())
            .env(CHILD_FROM, next_batch.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..400)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        let lines = reader.join().expect("reader");
        let mut last = next_batch;
        for l in &lines {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() == 4 && f[0] == "ack" {
                let (p, b, n) = (
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                );
                acked.insert(b, (p, n));
                last = last.max(b + 1);
            }
        }
        // Unacknowledged batches may or may not have landed; skip past their numbers.
        next_batch = last + 1000;
        let batches = check(dir.path(), &acked);
        let rep = ledger_engine::inspect::verify_dir(dir.path()).expect("verify runs");
        assert!(
            rep.problems.is_empty(),
            "verify found damage: {:?}",
            rep.problems
        );
        println!(
            "round {round}: {} acks this round, {} acked batches in all, {batches} batches stored",
            lines.len(),
            acked.len()
        );
    }
    assert!(
        acked.len() > rounds as usize,
        "the child acknowledged too little to test anything"
    );
    println!("crash: {rounds} passed, 0 failed");
}
