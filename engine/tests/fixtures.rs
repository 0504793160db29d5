//! The checked-in fixtures of every format version still read, and verify as expected.
//! `LEDGER_WRITE_FIXTURES=1 cargo test -p ledger-engine --test fixtures` rewrites the
//! current version's (`testdata/v3`); older versions' fixtures must stay as they are.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use ledger_engine::{AppendOptions, Engine, EngineConfig, Field, FsyncPolicy};

fn testdata(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../testdata/v{version}"))
}

fn cfg() -> EngineConfig {
    EngineConfig {
        seal_rows: 1_000_000,
        fsync: FsyncPolicy::Always,
        ..small_config()
    }
}

/// 40 sealed logs in one segment and 10 more in the WAL only, for project 1. The sealed
/// ones carry `service` `svc0`..`svc3` (a field the version 2 keyword filters cover).
fn write_datadir(data: &Path) {
    let _ = std::fs::remove_dir_all(data);
    let e = open(data, cfg());
    let logs = (0..40)
        .map(|i| {
            tagged(T0 + i * 1000, 1, i as usize, 40).with(Field::Service, format!("svc{}", i % 4))
        })
        .collect();
    e.append(1, logs, AppendOptions::default()).unwrap();
    e.flush().unwrap();
    for b in 2..4 {
        let logs = (0..5)
            .map(|i| tagged(T0 + 100_000 + b * 10 + i, b as u64, i as usize, 5))
            .collect();
        e.append(1, logs, AppendOptions::default()).unwrap();
    }
    e.close_without_sealing();
    drop(e);
    // The search index is tantivy's format, not ours, and is rebuilt from the data when
    // missing: leave it out so the fixture holds only what FORMAT.md documents.
    let _ = std::fs::remove_dir_all(data.join("index"));
}

fn messages(e: &Engine) -> Vec<String> {
    all_logs(e, 1)
        .iter()
        .map(|r| r.get(Field::Message).unwrap().to_owned())
        .collect()
}

/// The version of the one segment file under a fixture data directory.
fn segment_version(data: &Path) -> u8 {
    let dir = data.join("segments/0000000000000001");
    let seg = std::fs::read_dir(dir).unwrap().next().unwrap().unwrap();
    std::fs::read(seg.path()).unwrap()[ledger_engine::segment::VERSION_OFFSET]
}

/// Opens a copy of a fixture data directory and checks what it holds.
fn check_datadir(fixture: &Path) -> (tempfile::TempDir, Engine) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("datadir");
    copy_dir(fixture, &data).unwrap();
    let rep = ledger_engine::inspect::verify_dir(&data).unwrap();
    assert!(rep.problems.is_empty() && rep.notes.is_empty(), "{rep:?}");
    assert_eq!(rep.segment_rows, 40);
    let (e, open) = Engine::open(&data, cfg()).unwrap();
    assert_eq!(open.segments, 1);
    assert_eq!(open.recovery.rows_replayed, 10);
    assert_eq!(messages(&e).len(), 50);
    assert_eq!(messages(&e)[0], "b1 r0 of 40");
    (tmp, e)
}

/// The keyword filters written since version 2 answer exact matches, present and absent.
fn check_filters(e: &Engine) {
    for (svc, want) in [("svc1", 10), ("svc9", 0)] {
        let f = ledger_engine::Filter {
            fields: vec![(Field::Service, svc.into())],
            ..Default::default()
        };
        assert_eq!(scan_all(e, 1, f).len(), want, "{svc}");
    }
}

#[test]
fn version_3_fixtures_read_and_verify() {
    if std::env::var_os("LEDGER_WRITE_FIXTURES").is_some() {
        write_datadir(&testdata(3).join("datadir"));
    }
    assert_eq!(segment_version(&testdata(3).join("datadir")), 3);
    let (_tmp, e) = check_datadir(&testdata(3).join("datadir"));
    check_filters(&e);
}

/// `testdata/v2` was written by this file's fixture writer as of commit 718747b (the same
/// data directory as `write_datadir`).
#[test]
fn version_2_fixtures_read_and_verify() {
    assert_eq!(segment_version(&testdata(2).join("datadir")), 2);
    let (_tmp, e) = check_datadir(&testdata(2).join("datadir"));
    check_filters(&e);
}

/// `testdata/v1` was written by this file's fixture writer as of commit 774ad45:
/// the same data directory as `write_datadir` but without `service`, then `torn-tail` (its
/// newest non-empty WAL file cut by 9 bytes) and `corrupt-wal` (byte 50 of that file
/// flipped). The WAL format is still version 1, so these also stand for today's WAL.
#[test]
fn version_1_fixtures_read_and_verify() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(segment_version(&testdata(1).join("datadir")), 1);
    let (_data, e) = check_datadir(&testdata(1).join("datadir"));
    drop(e);

    let torn = tmp.path().join("torn-tail");
    copy_dir(&testdata(1).join("torn-tail"), &torn).unwrap();
    let rep = ledger_engine::inspect::verify_dir(&torn).unwrap();
    assert!(
        rep.problems.is_empty(),
        "a torn tail is not damage: {rep:?}"
    );
    assert_eq!(rep.notes.len(), 1, "{rep:?}");
    let (e, open) = Engine::open(&torn, cfg()).unwrap();
    assert_eq!(open.recovery.cut.len(), 1);
    assert_eq!(messages(&e).len(), 45, "the torn batch is all out");
    drop(e);

    let bad = tmp.path().join("corrupt-wal");
    copy_dir(&testdata(1).join("corrupt-wal"), &bad).unwrap();
    let rep = ledger_engine::inspect::verify_dir(&bad).unwrap();
    assert_eq!(rep.problems.len(), 1, "{rep:?}");
    assert_eq!(rep.problems[0].offset, 24);
    assert!(Engine::open(&bad, cfg()).is_err());
}
