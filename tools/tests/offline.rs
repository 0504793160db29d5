//! `ledgerctl inspect`, `verify` and `dump` on the checked-in fixtures, as a user runs them.

use std::path::PathBuf;
use std::process::Command;

fn testdata(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/v1")
        .join(p)
}

fn ledgerctl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ledgerctl"))
        .args(args)
        .output()
        .expect("ledgerctl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fixtures are copied so that nothing a command does can change the checked-in files.
fn copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    let status = Command::new("cp")
        .arg("-r")
        .arg(testdata(name))
        .arg(&dst)
        .status()
        .unwrap();
    assert!(status.success());
    (tmp, dst)
}

const SEGMENT: &str = "segments/0000000000000001/0000000000000001.seg";

#[test]
fn verify_accepts_a_clean_directory_and_a_torn_tail() {
    let (_t, dir) = copy("datadir");
    let (code, out, _) = ledgerctl(&["verify", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("clean"), "{out}");
    let (_t, dir) = copy("torn-tail");
    let (code, out, _) = ledgerctl(&["verify", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("torn tail at byte"), "{out}");
}

#[test]
fn verify_names_file_and_offset_of_damage_and_exits_1() {
    let (_t, dir) = copy("corrupt-wal");
    let (code, _, err) = ledgerctl(&["verify", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("0000000000000002.wal: byte 24"), "{err}");

    let (_t, dir) = copy("datadir");
    let seg = dir.join(SEGMENT);
    let mut b = std::fs::read(&seg).unwrap();
    b[40] ^= 0xff;
    std::fs::write(&seg, b).unwrap();
    let (code, _, err) = ledgerctl(&["verify", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("0000000000000001.seg: byte 32: block checksum mismatch"),
        "{err}"
    );
}

#[test]
fn inspect_lists_segments_and_wal() {
    let (_t, dir) = copy("datadir");
    let (code, out, _) = ledgerctl(&["inspect", dir.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("total: 40 rows"), "{out}");
    assert!(out.contains("2 batches, 10 rows"), "{out}");
    assert!(out.contains("search index: none"), "{out}");
    let (code, out, _) = ledgerctl(&["inspect", dir.join(SEGMENT).to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("40 rows in 2 blocks"), "{out}");
}

#[test]
fn dump_writes_ndjson() {
    let (_t, dir) = copy("datadir");
    let (code, out, _) = ledgerctl(&["dump", dir.join(SEGMENT).to_str().unwrap(), "--limit", "3"]);
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["message"], "b1 r0 of 40");
    assert_eq!(lines[0]["project_id"], "0000000000000001");
}

#[test]
fn missing_and_wrong_files_are_clear_errors_not_panics() {
    for args in [
        vec!["inspect", "/nonexistent/ledger"],
        vec!["verify", "/nonexistent/ledger"],
        vec!["dump", "/nonexistent/x.seg"],
        vec!["dump", env!("CARGO_MANIFEST_DIR")],
        vec!["verify", env!("CARGO_MANIFEST_DIR")],
    ] {
        let (code, _, err) = ledgerctl(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.starts_with("ledgerctl: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.seg");
    std::fs::write(
        &junk,
        b"not a segment at all, just some bytes that are long enough",
    )
    .unwrap();
    let (code, _, err) = ledgerctl(&["dump", junk.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("junk.seg") && err.contains("byte"), "{err}");
}

#[test]
fn reindex_rebuilds_the_index_offline() {
    let (_t, dir) = copy("datadir");
    let d = dir.to_str().unwrap();
    let (code, out, err) = ledgerctl(&["reindex", d]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("re-indexed 50 logs"), "{out}");
    assert!(dir.join("index/meta.json").exists());
    let (code, out, err) = ledgerctl(&["inspect", d]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("search index: 50 documents"), "{out}");
    let message = out
        .lines()
        .find(|l| l.trim_start().starts_with("message "))
        .unwrap_or_else(|| panic!("a message row: {out}"));
    let bytes: Vec<u64> = message
        .split_whitespace()
        .skip(1)
        .take(3)
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        bytes.iter().all(|&b| b > 0),
        "terms, postings, positions: {message}"
    );
    let (code, out, err) = ledgerctl(&["reindex", d, "--project", "0000000000000001"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("re-indexed 50 logs of project 0000000000000001"),
        "{out}"
    );
    let (code, _, err) = ledgerctl(&["reindex", d, "--project", "xyz"]);
    assert_eq!(code, 2);
    assert!(err.contains("16 hex digits"), "{err}");
}
