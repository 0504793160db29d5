//! Fault injection through the file-system seam (`ledger_engine::fs::FaultFs`): a crash at
//! every numbered write of a workload, failed fsyncs, a full disk, short writes and read
//! errors. After each, the rebooted file system (only what was synced survives) must hold
//! every acknowledged log exactly once, no partial batch, and verify clean.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use ledger_engine::fs::{FaultFs, Faults};
use ledger_engine::{AppendOptions, Engine, EngineConfig, EngineError, Field, FsyncPolicy};

fn dir() -> PathBuf {
    PathBuf::from("/ledger-faults")
}

fn config(fs: &FaultFs) -> EngineConfig {
    EngineConfig {
        fs: Arc::new(fs.clone()),
        fsync: FsyncPolicy::Always,
        search: false,
        seal_rows: 60,
        block_rows: 16,
        wal_file_bytes: 4 << 10,
        ..EngineConfig::default()
    }
}

/// Batches acknowledged: batch number → (project, rows).
type Acked = HashMap<u64, (u64, usize)>;

/// Appends batches until one fails; seals now and then. Returns what was acknowledged and
/// the first error.
fn workload(e: &Engine, batches: u64) -> (Acked, Option<EngineError>) {
    workload_sealing(e, batches, true)
}

fn workload_sealing(e: &Engine, batches: u64, seal: bool) -> (Acked, Option<EngineError>) {
    let mut acked = Acked::new();
    for b in 0..batches {
        let project = b % 2 + 1;
        let n = (b % 7 + 1) as usize;
        let logs = (0..n)
            .map(|i| tagged(T0 + (b * 10 + i as u64) as i64, b, i, n))
            .collect();
        let opts = AppendOptions {
            usage_bytes: n as u64 * 100,
            ..AppendOptions::default()
        };
        match e.append(project, logs, opts) {
            Ok(_) => {
                acked.insert(b, (project, n));
            }
            Err(err) => return (acked, Some(err)),
        }
        if seal && b % 9 == 8 {
            let _ = e.flush();
        }
    }
    (acked, None)
}

/// Opens the rebooted file system and checks the guarantees.
fn check(fs: &FaultFs, acked: &Acked, context: &str) {
    let (e, _) = Engine::open(&dir(), config(fs))
        .unwrap_or_else(|err| panic!("{context}: reopen failed: {err}"));
    let mut seen: HashMap<u64, Vec<usize>> = HashMap::new();
    for project in 1..=2 {
        let rows = all_logs(&e, project);
        // Usage is durable with the batch: it counts exactly the batches that are stored.
        assert_eq!(
            total_usage(&e, project),
            ledger_engine::DayUsage {
                logs: rows.len() as u64,
                bytes: rows.len() as u64 * 100
            },
            "{context}: usage of project {project} differs from its stored logs"
        );
        for r in rows {
            let msg = r.get(Field::Message).unwrap();
            let mut it = msg.split(' ');
            let b: u64 = it.next().unwrap()[1..].parse().unwrap();
            let i: usize = it.next().unwrap()[1..].parse().unwrap();
            assert_eq!(
                b % 2 + 1,
                project,
                "{context}: batch {b} in the wrong project"
            );
            seen.entry(b).or_default().push(i);
        }
    }
    for (b, rows) in &mut seen {
        rows.sort_unstable();
        let n = (*b % 7 + 1) as usize;
        assert_eq!(
            *rows,
            (0..n).collect::<Vec<_>>(),
            "{context}: batch {b} not whole and once"
        );
    }
    for b in acked.keys() {
        assert!(
            seen.contains_key(b),
            "{context}: acknowledged batch {b} lost"
        );
    }
    drop(e);
    let rep = ledger_engine::inspect::verify_dir_in(fs, &dir()).expect("verify runs");
    assert!(
        rep.problems.is_empty(),
        "{context}: verify found {:?}",
        rep.problems
    );
}

#[test]
fn a_crash_at_any_write_loses_nothing_acknowledged() {
    // Count the writes of the whole workload once, then crash at points across it.
    let probe = FaultFs::new(Faults::default());
    {
        let (e, _) = Engine::open(&dir(), config(&probe)).unwrap();
        let (_, err) = workload(&e, 40);
        assert!(err.is_none());
        e.close().unwrap();
    }
    let total = probe.writes();
    assert!(total > 50, "the workload should write a lot: {total}");
    let step = (total / 120).max(1);
    let mut crashes = 0;
    for k in (1..=total).step_by(step as usize) {
        let fs = FaultFs::new(Faults {
            crash_at_write: Some(k),
            ..Faults::default()
        });
        let acked = match Engine::open(&dir(), config(&fs)) {
            Ok((e, _)) => {
                let (acked, _) = workload(&e, 40);
                drop(e);
                acked
            }
            Err(_) => Acked::new(), // crashed while creating the directory
        };
        crashes += u64::from(fs.crashed());
        for seed in [k, k * 31 + 7] {
            check(
                &fs.reboot(seed),
                &acked,
                &format!("crash at write {k}, seed {seed}"),
            );
        }
    }
    assert!(
        crashes > 100,
        "most sweep points must really crash: {crashes}"
    );
}

#[test]
fn a_failed_fsync_is_final_and_never_acknowledged() {
    let mut read_only = 0;
    for n in 1..40 {
        let fs = FaultFs::new(Faults {
            fail_fsync: Some(n),
            ..Faults::default()
        });
        let Ok((e, _)) = Engine::open(&dir(), config(&fs)) else {
            continue; // the failed fsync was one of the open's own
        };
        let (acked, err) = workload(&e, 30);
        if let Some(EngineError::ReadOnly(_)) = err {
            read_only += 1;
            assert!(e.health().wal.is_err(), "health must say the WAL failed");
            // Never retried as if it had worked: every later append is refused too.
            let again = e.append(1, vec![tagged(T0, 999, 0, 1)], AppendOptions::default());
            assert!(matches!(again, Err(EngineError::ReadOnly(_))), "{again:?}");
        }
        drop(e);
        check(&fs.reboot(n), &acked, &format!("fsync {n} failed"));
    }
    assert!(
        read_only > 5,
        "some failed fsyncs must be the WAL's: {read_only}"
    );
}

#[test]
fn a_batch_refused_after_a_failed_fsync_never_comes_back() {
    let mut refused = 0;
    for n in 1..40 {
        let fs = FaultFs::new(Faults {
            fail_fsync: Some(n),
            ..Faults::default()
        });
        let Ok((e, _)) = Engine::open(&dir(), config(&fs)) else {
            continue;
        };
        // Without sealing, every fsync after the open's is a WAL group's.
        let (acked, err) = workload_sealing(&e, 30, false);
        drop(e);
        if !matches!(err, Some(EngineError::ReadOnly(_))) {
            continue;
        }
        refused += 1;
        // Batches are appended in order, so the refused one follows the acknowledged ones.
        let failed = acked.len() as u64;
        // The process restarts on the same machine: what was written (not only what was
        // synced) is still there. The refused batch must not be.
        fs.set_faults(Faults::default());
        let (e, _) = Engine::open(&dir(), config(&fs)).expect("reopen");
        let project = failed % 2 + 1;
        let back: Vec<_> = all_logs(&e, project)
            .into_iter()
            .filter(|r| {
                r.get(Field::Message)
                    .unwrap()
                    .starts_with(&format!("b{failed} "))
            })
            .collect();
        assert!(
            back.is_empty(),
            "fsync {n}: batch {failed} was answered ReadOnly but came back: {} rows",
            back.len()
        );
        drop(e);
        check(&fs, &acked, &format!("restart after fsync {n} failed"));
    }
    assert!(
        refused > 5,
        "some failed fsyncs must refuse a batch: {refused}"
    );
}

#[test]
fn a_full_disk_refuses_appends_keeps_reads_and_recovers_when_space_returns() {
    let fs = FaultFs::new(Faults::default());
    let cfg = EngineConfig {
        seal_rows: 1_000_000,
        ..config(&fs)
    };
    let (e, _) = Engine::open(&dir(), cfg).unwrap();
    // The WAL grows until the disk is full (nothing is sealed, so nothing is freed).
    fs.set_faults(Faults {
        space_bytes: Some(fs.usage() + (64 << 10)),
        ..Faults::default()
    });
    let (acked, err) = workload_sealing(&e, 10_000, false);
    assert!(
        matches!(err, Some(EngineError::StorageFull(_))),
        "expected storage full, got {err:?}"
    );
    let stored: usize = (1..=2).map(|p| all_logs(&e, p).len()).sum();
    assert_eq!(
        stored,
        acked.values().map(|(_, n)| n).sum::<usize>(),
        "reads keep working"
    );
    // Space returns: appends resume by themselves.
    fs.set_faults(Faults::default());
    let b = 20_000u64;
    let n = (b % 7 + 1) as usize;
    let logs = (0..n).map(|i| tagged(T0 + i as i64, b, i, n)).collect();
    let opts = AppendOptions {
        usage_bytes: n as u64 * 100,
        ..AppendOptions::default()
    };
    let more = e.append(b % 2 + 1, logs, opts);
    assert!(more.is_ok(), "{more:?}");
    let mut acked = acked;
    acked.insert(b, (b % 2 + 1, n));
    drop(e);
    check(&fs.reboot(1), &acked, "disk full");
}

#[test]
fn a_short_write_is_cut_back_and_refused() {
    let mut refused = 0;
    for k in [5, 9, 14, 30] {
        let fs = FaultFs::new(Faults {
            short_write_at: Some(k),
            ..Faults::default()
        });
        let Ok((e, _)) = Engine::open(&dir(), config(&fs)) else {
            continue; // the short write was one of the open's own
        };
        let mut acked = Acked::new();
        for round in 0..3 {
            // A refused batch is simply not acknowledged; later ones go on.
            let (a, err) = workload(&e, 12);
            refused += usize::from(err.is_some());
            for (b, v) in a {
                acked.insert(b + round * 1000, v);
            }
        }
        drop(e);
        let fs = fs.reboot(k);
        let (e, _) = Engine::open(&dir(), config(&fs)).unwrap();
        let stored: usize = (1..=2).map(|p| all_logs(&e, p).len()).sum();
        assert!(
            stored >= acked.values().map(|(_, n)| n).sum::<usize>(),
            "short write at {k}: lost acknowledged logs"
        );
        drop(e);
        let rep = ledger_engine::inspect::verify_dir_in(&fs, &dir()).unwrap();
        assert!(
            rep.problems.is_empty(),
            "short write at {k}: {:?}",
            rep.problems
        );
    }
    // Else every short write fell in an open, and no append was ever tested.
    assert!(refused > 0, "no short write refused an append");
}

#[test]
fn read_errors_are_reported_with_the_file_not_a_panic() {
    let fs = FaultFs::new(Faults::default());
    let (e, _) = Engine::open(&dir(), config(&fs)).unwrap();
    let (_, err) = workload(&e, 30);
    assert!(err.is_none());
    e.flush().unwrap();
    drop(e);
    let fs = fs.reboot(0);
    fs.set_faults(Faults {
        eio_reading: Some(".seg".into()),
        ..Faults::default()
    });
    // Segments that cannot be read are set aside at open, named, and the rest stays readable.
    let (e, report) = Engine::open(&dir(), config(&fs)).unwrap();
    assert!(!report.damaged_segments.is_empty());
    assert!(
        report.damaged_segments[0].contains(".seg"),
        "{:?}",
        report.damaged_segments
    );
    assert!(e.health().storage.is_err());
}

#[test]
fn a_failed_fsync_during_replay_fails_the_open_and_loses_nothing() {
    let written = FaultFs::default();
    let writer = EngineConfig {
        seal_rows: usize::MAX,
        seal_bytes: usize::MAX,
        ..config(&written)
    };
    let mut want = 0;
    {
        let (e, _) = Engine::open(&dir(), writer).unwrap();
        for b in 0..40u64 {
            let logs = (0..25)
                .map(|i| tagged(T0 + (b * 25 + i) as i64, b, i as usize, 25))
                .collect();
            e.append(1 + b % 3, logs, AppendOptions::default()).unwrap();
            want += 25;
        }
        e.close_without_sealing();
    }
    // How many fsyncs a clean open of the same files makes (the writer synced everything,
    // so a reboot copies every byte): replay seals a dozen segments among them. (Closing
    // seals too; those fsyncs are not the open's.)
    let clean = {
        let fs = written.reboot(0);
        let before = fs.fsyncs();
        let (e, rep) = Engine::open(&dir(), config(&fs)).unwrap();
        assert_eq!(rep.recovery.rows_replayed as usize, want);
        let n = fs.fsyncs() - before;
        assert!(e.stats().segments >= 12, "replay sealed: {:?}", e.stats());
        n
    };
    let mut sealed_before_failing = 0;
    for k in 1..=clean {
        let fs = written.reboot(0);
        fs.set_faults(Faults {
            fail_fsync: Some(fs.fsyncs() + k),
            ..Default::default()
        });
        let failed = Engine::open(&dir(), config(&fs));
        assert!(failed.is_err(), "fsync {k}: the open went on past it");
        drop(failed);
        fs.set_faults(Faults::default());
        let (e, rep) = Engine::open(&dir(), config(&fs)).unwrap();
        sealed_before_failing += usize::from(rep.segments > 0);
        let mut got = 0;
        for p in 1..=3 {
            let mut tags: Vec<String> = all_logs(&e, p)
                .iter()
                .map(|r| r.log.get(Field::Message).unwrap_or_default().to_owned())
                .collect();
            let n = tags.len();
            tags.sort();
            tags.dedup();
            assert_eq!(tags.len(), n, "fsync {k}, project {p}: a log twice");
            got += n;
        }
        assert_eq!(got, want, "fsync {k}: logs lost");
        drop(e);
        let rep = ledger_engine::inspect::verify_dir_in(&fs, &dir()).unwrap();
        assert!(rep.problems.is_empty(), "fsync {k}: {:?}", rep.problems);
    }
    // Else no failure fell after a seal, and recovery from a half-done replay went untested.
    assert!(sealed_before_failing > 0);
}

/// Segment files under the data directory.
fn segment_files(fs: &FaultFs) -> usize {
    use ledger_engine::fs::FileSystem;
    let root = dir().join("segments");
    let Ok(projects) = fs.list_dir(&root) else {
        return 0;
    };
    projects
        .iter()
        .filter(|(_, is_dir)| *is_dir)
        .flat_map(|(p, _)| fs.list_dir(p).unwrap_or_default())
        .filter(|(f, _)| f.extension().is_some_and(|x| x == "seg"))
        .count()
}

#[test]
fn seals_retried_after_a_failed_catalog_commit_leave_no_files_behind() {
    let logs = || (0..50).map(|i| tagged(T0 + i as i64, 1, i, 50)).collect();
    // How many fsyncs one seal makes (segment file, directory, catalog commit).
    let per_seal = {
        let fs = FaultFs::default();
        let (e, _) = Engine::open(&dir(), config(&fs)).unwrap();
        e.append(1, logs(), AppendOptions::default()).unwrap();
        let before = fs.fsyncs();
        e.flush().unwrap();
        fs.fsyncs() - before
    };
    assert!(per_seal >= 2, "{per_seal}");
    let mut refused = 0;
    for k in 1..=per_seal {
        let fs = FaultFs::default();
        let (e, _) = Engine::open(&dir(), config(&fs)).unwrap();
        e.append(1, logs(), AppendOptions::default()).unwrap();
        fs.set_faults(Faults {
            fail_fsync: Some(fs.fsyncs() + k),
            ..Default::default()
        });
        if e.flush().is_ok() {
            continue;
        }
        // A retry that succeeds adds its segment; one the catalog refuses adds nothing.
        for _ in 0..3 {
            let before = segment_files(&fs);
            if e.flush().is_err() {
                refused += 1;
                assert_eq!(
                    segment_files(&fs),
                    before,
                    "fsync {k}: a refused retry left its segment file"
                );
            }
        }
        drop(e);
        fs.set_faults(Faults::default());
        let (e, _) = Engine::open(&dir(), config(&fs)).unwrap();
        assert_eq!(all_logs(&e, 1).len(), 50, "fsync {k}");
    }
    // Else no retry was refused, and the clean-up went untested.
    assert!(refused > 0);
}
