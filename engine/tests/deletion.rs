//! Deleting logs by query: gone from scans, lookups, search, rollups, usage, segments and
//! the WAL; exact counts; resumable after a crash at any write of a rewrite.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use ledger_engine::fs::{FaultFs, Faults};
use ledger_engine::search::{self, SearchBudget};
use ledger_engine::Bucket;
use ledger_engine::{
    AppendOptions, Deletion, Engine, EngineConfig, Field, Level, LogRecord, NewLog, ScanRequest,
};
use rand::Rng;

/// What the test believes is stored: seq → (project, log), and usage per project.
#[derive(Default)]
struct Model {
    rows: BTreeMap<u64, (u64, NewLog)>,
    usage: BTreeMap<u64, u64>,
}

fn append(e: &Engine, m: &mut Model, project: u64, logs: Vec<NewLog>) {
    let n = logs.len() as u64;
    let opts = AppendOptions {
        usage_bytes: n * 100,
        ..AppendOptions::default()
    };
    let ids = e.append(project, logs.clone(), opts).expect("append");
    for (a, l) in ids.iter().zip(logs) {
        m.rows.insert(a.id.seq, (project, l));
    }
    *m.usage.entry(project).or_default() += n;
}

fn check(e: &Engine, m: &Model, context: &str) {
    e.refresh_search().unwrap();
    for project in [1, 2] {
        let want: Vec<(u64, Option<String>)> = m
            .rows
            .iter()
            .filter(|(_, (p, _))| *p == project)
            .map(|(s, (_, l))| (*s, l.get(Field::Message).map(String::from)))
            .collect();
        let mut got: Vec<(u64, Option<String>)> = all_logs(e, project)
            .iter()
            .map(|r| (r.seq, r.get(Field::Message).map(String::from)))
            .collect();
        got.sort();
        assert_eq!(got, want, "{context}: project {project} scan");
        // Search narrows through the index: what it finds is what is stored.
        for q in ["billing", "service:api", "thing"] {
            let expr = search::parse(q).unwrap();
            let req = ScanRequest {
                limit: 1000,
                ..ScanRequest::default()
            };
            let page = e
                .search(project, &expr, &req, SearchBudget::default())
                .unwrap();
            let found: usize = page.logs.len();
            let expected = m
                .rows
                .values()
                .filter(|(p, l)| {
                    *p == project
                        && search::eval::matches(
                            &expr,
                            &LogRecord {
                                seq: 0,
                                ingested_at: 0,
                                log: l.clone(),
                            },
                        )
                })
                .count()
                .min(1000);
            assert_eq!(found, expected, "{context}: project {project} search {q:?}");
            // The index itself holds no document of a deleted log.
            if expected < 1000 {
                assert_eq!(
                    e.index_documents(project, &expr).unwrap(),
                    expected,
                    "{context}: project {project} index documents for {q:?}"
                );
            }
        }
        // Rollups count what is stored.
        let volume: u64 = e
            .log_volume(project, T0 + 40 * 3_600_000_000, 48, Bucket::Hour)
            .unwrap()
            .iter()
            .map(|b| b.total)
            .sum();
        assert_eq!(
            volume,
            want.len() as u64,
            "{context}: project {project} volume"
        );
        // Error groups in every two-hour window: counts, first and last seen, and the sample
        // are those of the logs still stored (the recount after a deletion), never a
        // deleted log's.
        let stored = all_logs(e, project);
        const HOUR: i64 = 3_600_000_000;
        for h in 0..38 {
            let now = T0 + h * HOUR + HOUR / 2;
            let (lo, hi) = ((now - HOUR).div_euclid(HOUR), now.div_euclid(HOUR));
            let mut groups: BTreeMap<String, (u64, i64, i64, (i64, u64))> = BTreeMap::new();
            for r in &stored {
                let hour = r.log.timestamp.div_euclid(HOUR);
                let Some(fp) = r.get(Field::ErrorFingerprint) else {
                    continue;
                };
                if hour < lo || hour > hi {
                    continue;
                }
                let g =
                    groups
                        .entry(fp.to_owned())
                        .or_insert((0, i64::MAX, i64::MIN, (i64::MIN, 0)));
                g.0 += 1;
                g.1 = g.1.min(r.log.timestamp);
                g.2 = g.2.max(r.log.timestamp);
                g.3 = g.3.max((r.log.timestamp, r.seq));
            }
            let top = e.top_errors(project, now, 1, 1000).unwrap();
            assert_eq!(
                top.len(),
                groups.len(),
                "{context}: project {project} hour {h} groups"
            );
            for t in &top {
                let g = groups[&t.fingerprint];
                assert_eq!(
                    (t.count, t.first_seen_us, t.last_seen_us),
                    (g.0, g.1, g.2),
                    "{context}: hour {h} group {}",
                    t.fingerprint
                );
                assert_eq!(
                    (t.sample_log_id.timestamp, t.sample_log_id.seq),
                    g.3,
                    "{context}: hour {h}: the sample of {} is not its latest stored log",
                    t.fingerprint
                );
            }
        }
        assert_eq!(
            total_usage(e, project).logs,
            m.usage.get(&project).copied().unwrap_or(0),
            "{context}: project {project} usage"
        );
    }
}

fn logs(rng: &mut rand::rngs::StdRng, n: usize) -> Vec<NewLog> {
    (0..n)
        .map(|_| {
            let ts = T0 + rng.gen_range(0..36 * 3_600_000_000i64);
            random_log(rng, ts)
        })
        .collect()
}

/// A deletion's time bounds and its condition.
type Condition = (
    Option<i64>,
    Option<i64>,
    Arc<dyn Fn(&NewLog) -> bool + Send + Sync>,
);

/// A random deletion's condition, as the server would build it.
fn condition(rng: &mut rand::rngs::StdRng) -> Condition {
    match rng.gen_range(0..4) {
        0 => {
            let s = ["api", "billing", "web"][rng.gen_range(0..3)];
            (
                None,
                None,
                Arc::new(move |l: &NewLog| l.get(Field::Service) == Some(s)),
            )
        }
        1 => {
            let lv = Level::ALL[rng.gen_range(0..5)];
            (None, None, Arc::new(move |l: &NewLog| l.level == lv))
        }
        2 => {
            let lo = T0 + rng.gen_range(0..30) * 3_600_000_000;
            let hi = lo + 3 * 3_600_000_000;
            (
                Some(lo),
                Some(hi),
                Arc::new(move |l: &NewLog| (lo..=hi).contains(&l.timestamp)),
            )
        }
        _ => {
            let u = rng.gen_range(0..50);
            let word = format!("user {u} ");
            (
                None,
                None,
                Arc::new(move |l: &NewLog| {
                    l.get(Field::Message).is_some_and(|m| m.contains(&word))
                }),
            )
        }
    }
}

/// Random deletions interleaved with ingest, restarts and retention: every scan, search,
/// metric and usage figure equals a model with the deleted logs removed, each deletion's
/// count is exact, and verify stays clean.
#[test]
fn deletions_interleaved_with_ingest_restarts_and_retention_match_a_model() {
    for seed in [1u64, 2, 3] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let cfg = || EngineConfig {
            search_refresh: std::time::Duration::from_millis(50),
            ..small_config()
        };
        let mut e = open(&dir, cfg());
        let mut rng = rng(seed);
        let mut m = Model::default();
        let mut deletion = 0;
        for step in 0..40 {
            let context = format!("seed {seed} step {step}");
            match rng.gen_range(0..10) {
                0..=4 => {
                    let project = rng.gen_range(1..=2);
                    let n = rng.gen_range(1..120);
                    append(&e, &mut m, project, logs(&mut rng, n));
                }
                5..=7 => {
                    let project = rng.gen_range(1..=2);
                    let (start, end, cond) = condition(&mut rng);
                    deletion += 1;
                    let through = e.next_seq() - 1;
                    let c = cond.clone();
                    let matches = move |r: &LogRecord| c(&r.log);
                    let d = Deletion {
                        id: deletion,
                        through,
                        start,
                        end,
                        matches: &matches,
                    };
                    let before = m.rows.len();
                    m.rows
                        .retain(|s, (p, l)| !(*p == project && *s <= through && cond(l)));
                    let gone = (before - m.rows.len()) as u64;
                    *m.usage.entry(project).or_default() -= gone;
                    let n = e.delete_logs(project, &d).expect("delete");
                    assert_eq!(n, gone, "{context}: deletion {deletion} count");
                    // Run again (a resumed deletion): nothing more, the same count.
                    assert_eq!(
                        e.delete_logs(project, &d).unwrap(),
                        gone,
                        "{context}: rerun"
                    );
                    // Logs arriving after it are untouched even if they match.
                    append(&e, &mut m, project, logs(&mut rng, 20));
                }
                8 => {
                    e.close().unwrap();
                    drop(e);
                    e = open(&dir, cfg());
                }
                _ => {
                    let project = rng.gen_range(1..=2);
                    let cutoff = T0 + rng.gen_range(0..12) * 3_600_000_000;
                    e.enforce_retention(project, cutoff).unwrap();
                    let stored: std::collections::HashSet<u64> =
                        all_logs(&e, project).iter().map(|r| r.seq).collect();
                    m.rows.retain(|s, (p, l)| {
                        *p != project || l.timestamp >= cutoff || stored.contains(s)
                    });
                }
            }
            check(&e, &m, &context);
        }
        e.close().unwrap();
        drop(e);
        let rep = ledger_engine::inspect::verify_dir(&dir).unwrap();
        assert!(rep.problems.is_empty(), "seed {seed}: {:?}", rep.problems);
        let e = open(&dir, cfg());
        check(&e, &m, &format!("seed {seed} after the last reopen"));
        e.close().unwrap();
    }
}

/// After a deletion, the WAL holds no file from before it and `/logs/{id}` finds nothing.
#[test]
fn a_deletion_leaves_no_wal_file_and_no_lookup_of_its_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let e = open(&dir, small_config());
    let mut m = Model::default();
    let mut r = rng(9);
    append(&e, &mut m, 1, logs(&mut r, 150));
    let secret: Vec<NewLog> = (0..5)
        .map(|i| random_log(&mut r, T0 + i).with(Field::Message, "password hunter2"))
        .collect();
    let ids = e.append(1, secret, AppendOptions::default()).unwrap();
    // Another project's unsealed logs share the WAL files.
    append(&e, &mut m, 2, logs(&mut r, 30));
    let wal_before: Vec<PathBuf> = wal_files(&dir);
    let matches = |r: &LogRecord| r.get(Field::Message) == Some("password hunter2");
    let d = Deletion {
        id: 1,
        through: e.next_seq() - 1,
        start: None,
        end: None,
        matches: &matches,
    };
    assert_eq!(e.delete_logs(1, &d).unwrap(), 5);
    for a in &ids {
        assert!(
            e.get(1, a.id).unwrap().is_none(),
            "lookup by id finds nothing"
        );
    }
    let after = wal_files(&dir);
    for f in &wal_before {
        assert!(!after.contains(f), "{} survived the deletion", f.display());
    }
    // And nothing in any file under the data directory holds the text.
    e.close().unwrap();
    // The index's term dictionaries are prefix-compressed, so the byte search below
    // cannot see a word in them: ask the index itself. A term's document frequency
    // counts deleted documents until their segment is merged.
    let index = tantivy::Index::open_in_dir(dir.join("index")).unwrap();
    let searcher = index.reader().unwrap().searcher();
    let message = index.schema().get_field("message").unwrap();
    let term = tantivy::Term::from_field_text(message, "hunter2");
    assert_eq!(
        searcher.doc_freq(&term).unwrap(),
        0,
        "an index segment still holds the deleted word"
    );
    assert!(
        searcher
            .segment_readers()
            .iter()
            .all(|r| r.num_deleted_docs() == 0),
        "an index segment still holds deleted documents"
    );
    for f in walk(&dir) {
        let bytes = std::fs::read(&f).unwrap();
        let raw = contains(&bytes, b"hunter2");
        let unzstd = zstd_frames_contain(&bytes, b"hunter2");
        assert!(
            !raw && !unzstd,
            "{} still holds the deleted text",
            f.display()
        );
    }
}

fn wal_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for ent in std::fs::read_dir(dir).unwrap() {
        let p = ent.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Decompresses every zstd frame found in `bytes` and looks for `needle` in it (segments
/// and large WAL batches are zstd-compressed).
fn zstd_frames_contain(bytes: &[u8], needle: &[u8]) -> bool {
    const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    let mut i = 0;
    while let Some(off) = bytes[i..].windows(4).position(|w| w == MAGIC) {
        let start = i + off;
        let mut out = Vec::new();
        let mut dec = zstd::stream::read::Decoder::new(&bytes[start..])
            .unwrap()
            .single_frame();
        let _ = std::io::Read::read_to_end(&mut dec, &mut out);
        if contains(&out, needle) {
            return true;
        }
        i = start + 4;
    }
    false
}

fn fault_dir() -> PathBuf {
    PathBuf::from("/ledger-deletion")
}

fn fault_config(fs: &FaultFs) -> EngineConfig {
    EngineConfig {
        fs: Arc::new(fs.clone()),
        fsync: ledger_engine::FsyncPolicy::Always,
        search: false,
        seal_rows: 60,
        block_rows: 16,
        wal_file_bytes: 4 << 10,
        ..EngineConfig::default()
    }
}

/// A crash at any write of a deletion leaves each segment either whole or rewritten (never
/// both counted, never neither), and running the deletion again finishes it with the exact
/// count; verify stays clean throughout.
#[test]
fn a_crash_at_any_write_of_a_deletion_leaves_old_or_new_and_resumes() {
    sweep_deletion_faults(Fault::Crash);
}

/// The same for a failed fsync at any point of a deletion, the process going on: a catalog
/// commit whose last fsync failed may still be durable, so neither file of that swap may be
/// removed before the next open knows which one the catalog lists.
#[test]
fn a_failed_fsync_at_any_point_of_a_deletion_leaves_old_or_new_and_resumes() {
    sweep_deletion_faults(Fault::FailedFsync);
}

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// The machine stops at the k-th write; what was synced survives.
    Crash,
    /// The k-th fsync fails; the process closes the engine and opens it again.
    FailedFsync,
}

fn sweep_deletion_faults(fault: Fault) {
    let counter = |fs: &FaultFs| match fault {
        Fault::Crash => fs.writes(),
        Fault::FailedFsync => fs.fsyncs(),
    };
    let mut r = rng(5);
    let batches: Vec<Vec<NewLog>> = (0..8).map(|_| logs(&mut r, 40)).collect();
    let setup = |fs: &FaultFs| -> Model {
        let (e, _) = Engine::open(&fault_dir(), fault_config(fs)).unwrap();
        let mut m = Model::default();
        for b in &batches {
            append(&e, &mut m, 1, b.clone());
        }
        e.flush().unwrap();
        e.close().unwrap();
        m
    };
    let billing = |r: &LogRecord| r.get(Field::Service) == Some("billing");
    let deletion = |e: &Engine| {
        e.delete_logs(
            1,
            &Deletion {
                id: 7,
                through: 1 << 40,
                start: None,
                end: None,
                matches: &billing,
            },
        )
    };
    // Count the writes (fsyncs) of the deletion alone.
    let probe = FaultFs::new(Faults::default());
    let m = setup(&probe);
    let before = counter(&probe);
    // The open before the deletion writes too; counted in, like the runs below.
    let removed = {
        let (e, _) = Engine::open(&fault_dir(), fault_config(&probe)).unwrap();
        let n = deletion(&e).unwrap();
        e.close().unwrap();
        n
    };
    let expected: Vec<u64> = m
        .rows
        .iter()
        .filter(|(_, (_, l))| l.get(Field::Service) != Some("billing"))
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(removed as usize, m.rows.len() - expected.len());
    assert!(
        removed > 20,
        "the deletion must remove enough to matter: {removed}"
    );
    let total = counter(&probe) - before;
    // About 40 writes and 10 fsyncs (the count varies with the background threads).
    let least = if fault == Fault::Crash { 10 } else { 5 };
    assert!(total > least, "a deletion writes and syncs: {total}");
    let mut faults_hit = 0;
    for k in 1..=total {
        let fs = FaultFs::new(Faults::default());
        setup(&fs);
        let at = counter(&fs) + k;
        fs.set_faults(match fault {
            Fault::Crash => Faults {
                crash_at_write: Some(at),
                ..Faults::default()
            },
            Fault::FailedFsync => Faults {
                fail_fsync: Some(at),
                ..Faults::default()
            },
        });
        if let Ok((e, _)) = Engine::open(&fault_dir(), fault_config(&fs)) {
            let _ = deletion(&e);
            drop(e);
        }
        let (fs, context) = match fault {
            Fault::Crash => {
                faults_hit += u64::from(fs.crashed());
                (fs.reboot(k), format!("crash at write {k} of the deletion"))
            }
            Fault::FailedFsync => {
                faults_hit += u64::from(counter(&fs) >= at);
                fs.set_faults(Faults::default());
                (fs, format!("failed fsync {k} of the deletion"))
            }
        };
        {
            let (e, _) = Engine::open(&fault_dir(), fault_config(&fs))
                .unwrap_or_else(|err| panic!("{context}: reopen: {err}"));
            let rows = all_logs(&e, 1);
            let mut seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
            seqs.sort_unstable();
            let mut dedup = seqs.clone();
            dedup.dedup();
            assert_eq!(dedup, seqs, "{context}: a log counted twice");
            for s in &expected {
                assert!(
                    seqs.binary_search(s).is_ok(),
                    "{context}: kept log {s} lost"
                );
            }
            let erased_so_far = e.erased(7).unwrap();
            assert_eq!(
                rows.len() as u64 + erased_so_far,
                m.rows.len() as u64,
                "{context}: stored + counted as deleted ≠ what was there"
            );
            // Resume: it finishes with the exact count.
            assert_eq!(deletion(&e).unwrap(), removed, "{context}: resumed count");
            let mut rows: Vec<u64> = all_logs(&e, 1).iter().map(|r| r.seq).collect();
            rows.sort_unstable();
            assert_eq!(rows, expected, "{context}: after resuming");
            assert_eq!(
                total_usage(&e, 1).logs,
                expected.len() as u64,
                "{context}: usage"
            );
            e.close().unwrap();
        }
        let rep = ledger_engine::inspect::verify_dir_in(&fs, &fault_dir()).expect("verify runs");
        assert!(
            rep.problems.is_empty(),
            "{context}: verify found {:?}",
            rep.problems
        );
    }
    assert!(
        faults_hit > total / 2,
        "most points must really fail: {faults_hit} of {total}"
    );
}
