//! The rollups against brute force: random workloads (levels, timestamps over days, errors,
//! late and out-of-order logs, restarts with and without sealing, retention, project
//! deletion) on a real engine, after which every metrics answer must equal a count over
//! what `Engine::scan` returns.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::bucket::{bucket_window, window, HOUR_US, MINUTE_US};
use super::groups::Agg;
use super::patterns::{self, cluster};
use super::{Bucket, Pattern, RollupConfig, TopError, VolumeBucket};
use crate::config::{EngineConfig, FsyncPolicy};
use crate::db::Engine;
use crate::fingerprint;
use crate::model::{Field, Importance, Level, LogRecord, LogType, NewLog, ProjectId};
use crate::query::{Order, ScanRequest};
use crate::AppendOptions;

const T0: i64 = 1_795_000_000_000_000;

fn config(rollups: RollupConfig) -> EngineConfig {
    EngineConfig {
        seal_rows: 25,
        block_rows: 8,
        fsync: FsyncPolicy::Never,
        wal_file_bytes: 16 << 10,
        rollups,
        ..EngineConfig::default()
    }
}

fn open(dir: &Path, rollups: &RollupConfig) -> Engine {
    Engine::open(dir, config(rollups.clone()))
        .expect("engine opens")
        .0
}

/// Every stored log of a project, oldest first, paged through with a cursor.
fn stored(e: &Engine, p: ProjectId) -> Vec<LogRecord> {
    let mut req = ScanRequest {
        limit: 1000,
        order: Order::Asc,
        ..Default::default()
    };
    let mut out = Vec::new();
    loop {
        let page = e.scan(p, &req).expect("scan");
        out.extend(page.logs);
        match page.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => return out,
        }
    }
}

fn expect_volume(logs: &[LogRecord], now: i64, hours: u32, b: Bucket) -> Vec<VolumeBucket> {
    let (start, end, n) = bucket_window(now, hours, b).unwrap();
    let size = b.micros();
    let mut out: Vec<VolumeBucket> = (0..n)
        .map(|i| VolumeBucket {
            start_us: start + i as i64 * size,
            total: 0,
            by_level: [0; 5],
        })
        .collect();
    for r in logs {
        let ts = r.log.timestamp;
        if ts >= start && ts < end {
            let v = &mut out[((ts - start) / size) as usize];
            v.total += 1;
            v.by_level[r.log.level as usize] += 1;
        }
    }
    out
}

fn in_hours(r: &LogRecord, now: i64, hours: u32) -> bool {
    let (start, end) = window(now, hours, HOUR_US).unwrap();
    (start..end).contains(&r.log.timestamp)
}

fn expect_top_errors(logs: &[LogRecord], now: i64, hours: u32) -> Vec<TopError> {
    let mut groups: HashMap<&str, (Agg, &LogRecord)> = HashMap::new();
    for r in logs.iter().filter(|r| in_hours(r, now, hours)) {
        if let Some(fp) = r.get(Field::ErrorFingerprint) {
            let g = groups.entry(fp).or_insert((Agg::empty(), r));
            g.0.add_log(r.log.timestamp, r.seq, r.log.level);
        }
    }
    let mut out: Vec<TopError> = groups
        .into_iter()
        .map(|(fp, (a, r))| {
            let (ty, msg) = fingerprint::title(&r.log).unwrap();
            TopError {
                fingerprint: fp.to_string(),
                error_type: ty.to_string(),
                error_message: msg,
                count: a.count,
                first_seen_us: a.first_ts,
                last_seen_us: a.last.timestamp,
                sample_log_id: a.last,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (b.count.cmp(&a.count))
            .then_with(|| b.sample_log_id.cmp(&a.sample_log_id))
            .then_with(|| a.fingerprint.cmp(&b.fingerprint))
    });
    out
}

fn template_aggs(logs: &[LogRecord], now: i64, hours: u32) -> Vec<(String, Agg)> {
    let mut groups: HashMap<String, Agg> = HashMap::new();
    for r in logs.iter().filter(|r| in_hours(r, now, hours)) {
        if let Some(t) = patterns::template(&r.log) {
            groups
                .entry(t)
                .or_insert_with(Agg::empty)
                .add_log(r.log.timestamp, r.seq, r.log.level);
        }
    }
    groups.into_iter().collect()
}

fn expect_patterns(logs: &[LogRecord], now: i64, hours: u32) -> Vec<Pattern> {
    cluster(template_aggs(logs, now, hours), 1000)
}

/// Checks every metrics answer of a project against brute force at a few `now`s.
fn check_project(e: &Engine, p: ProjectId, nows: &[i64]) -> Result<(), TestCaseError> {
    let logs = stored(e, p);
    for &now in nows {
        for hours in [1u32, 7, 30, 100] {
            for b in Bucket::ALL {
                let got = e.log_volume(p, now, hours, b).unwrap();
                prop_assert_eq!(
                    &got,
                    &expect_volume(&logs, now, hours, b),
                    "volume {} {}h {}",
                    p,
                    hours,
                    b
                );
                let rate = e.error_rate(p, now, hours, b).unwrap();
                prop_assert_eq!(rate.len(), got.len());
                for (r, v) in rate.iter().zip(&got) {
                    prop_assert_eq!(r.start_us, v.start_us);
                    prop_assert_eq!(r.total, v.total);
                    prop_assert_eq!(r.errors, v.by_level[3] + v.by_level[4]);
                }
            }
            let top = e.top_errors(p, now, hours, 1000).unwrap();
            prop_assert_eq!(
                &top,
                &expect_top_errors(&logs, now, hours),
                "top errors {} {}h",
                p,
                hours
            );
            let pats = e.patterns(p, now, hours, 1000).unwrap();
            prop_assert_eq!(
                &pats,
                &expect_patterns(&logs, now, hours),
                "patterns {} {}h",
                p,
                hours
            );
        }
    }
    Ok(())
}

const NAMES: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// A log from a few message shapes (numbers, words, paths, quotes) and error kinds.
fn make_log(ts: i64, level: u8, shape: u8, n: u32, err: Option<u8>) -> NewLog {
    let level = Level::ALL[level as usize % 5];
    let log_type = if err.is_some() {
        LogType::Exception
    } else {
        LogType::Logger
    };
    let mut l = NewLog::new(ts, level, log_type, Importance::Standard);
    let msg = match shape % 7 {
        0 => Some(format!("user {n} not found")),
        1 => Some(format!("user {} not found", NAMES[n as usize % 4])),
        2 => Some(format!("GET /api/items/{n} took {}ms", n % 100)),
        3 => Some(
            if n & 1 == 0 {
                "cache hit"
            } else {
                "cache miss"
            }
            .to_string(),
        ),
        4 => Some(format!(
            "payment failed for order_{n}: card 'visa {n}' declined"
        )),
        5 => None,
        _ => Some(format!("job {} finished in {n}s", NAMES[n as usize % 3])),
    };
    if let Some(m) = msg {
        l.set(Field::Message, m);
    }
    if let Some(k) = err {
        let ty = ["KeyError", "ValueError", " KeyError "][k as usize % 3];
        l.set(Field::ErrorType, ty);
        if k % 2 == 0 {
            l.set(Field::ErrorMessage, format!("key {n} missing"));
        }
        if k % 4 < 2 {
            l.set(
                Field::StackTrace,
                format!(
                    "Traceback:\n  File \"app/a.py\", line {n}, in f\n  File \"app/{}.py\", line 3, in g",
                    ["b", "c"][k as usize / 2 % 2]
                ),
            );
        }
    }
    l
}

#[derive(Debug, Clone)]
struct Spec {
    late_min: u32,
    sec: u32,
    level: u8,
    shape: u8,
    n: u32,
    err: Option<u8>,
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        project: ProjectId,
        advance_min: u32,
        logs: Vec<Spec>,
    },
    Restart {
        seal: bool,
    },
    Retention {
        project: ProjectId,
        keep_hours: u32,
    },
    Flush,
    Delete {
        project: ProjectId,
    },
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop_oneof![12 => 0u32..5, 1 => 0u32..3000],
        0u32..60,
        prop_oneof![3 => Just(1u8), 1 => 0u8..5],
        0u8..7,
        0u32..50,
        prop::option::weighted(0.3, 0u8..6),
    )
        .prop_map(|(late_min, sec, level, shape, n, err)| Spec {
            late_min,
            sec,
            level,
            shape,
            n,
            err,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (1u64..3, prop_oneof![3 => 0u32..40, 1 => 40u32..600], prop::collection::vec(spec(), 1..40))
            .prop_map(|(project, advance_min, logs)| Op::Append { project, advance_min, logs }),
        2 => any::<bool>().prop_map(|seal| Op::Restart { seal }),
        3 => (1u64..3, 0u32..12).prop_map(|(project, keep_hours)| Op::Retention { project, keep_hours }),
        1 => Just(Op::Flush),
        1 => (1u64..4).prop_map(|project| Op::Delete { project }),
    ]
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RollupConfig::default();
    let mut e = open(dir.path(), &cfg);
    let mut clock = T0;
    let mut deleted = BTreeSet::new();
    let check_all = |e: &Engine, clock: i64| -> Result<(), TestCaseError> {
        for p in 1..4 {
            check_project(e, p, &[clock, clock - 40 * HOUR_US])?;
        }
        Ok(())
    };
    for op in ops {
        match op {
            Op::Append {
                project,
                advance_min,
                logs,
            } => {
                clock += i64::from(advance_min) * MINUTE_US;
                let batch: Vec<NewLog> = logs
                    .iter()
                    .map(|s| {
                        let ts = clock - i64::from(s.late_min) * MINUTE_US
                            + i64::from(s.sec) * 1_000_000;
                        make_log(ts, s.level, s.shape, s.n, s.err)
                    })
                    .collect();
                let r = e.append(project, batch, AppendOptions::default());
                prop_assert_eq!(r.is_ok(), !deleted.contains(&project));
            }
            Op::Restart { seal } => {
                if seal {
                    e.close().unwrap();
                } else {
                    e.close_without_sealing();
                }
                drop(e);
                e = open(dir.path(), &cfg);
                check_all(&e, clock)?;
            }
            Op::Retention {
                project,
                keep_hours,
            } => {
                e.enforce_retention(project, clock - i64::from(keep_hours) * HOUR_US)
                    .unwrap();
                check_all(&e, clock)?;
            }
            Op::Flush => e.flush().unwrap(),
            Op::Delete { project } => {
                e.delete_project(project).unwrap();
                deleted.insert(project);
                prop_assert!(stored(&e, project).is_empty());
            }
        }
    }
    check_all(&e, clock)?;
    e.close().unwrap();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn rollups_equal_brute_force_counts(ops in prop::collection::vec(op(), 1..32)) {
        run(ops)?;
    }
}

#[test]
fn late_logs_land_in_their_own_bucket_and_retention_recounts_samples() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), &RollupConfig::default());
    let p = 7;
    let at = |h: i64, m: i64| T0 - T0.rem_euclid(HOUR_US) + h * HOUR_US + m * MINUTE_US;
    // Hour 0 and hour 2 in one segment each, then a late error back in hour 0.
    let mk = |ts| make_log(ts, 3, 0, 5, Some(0));
    e.append(
        p,
        vec![mk(at(0, 1)), mk(at(0, 2))],
        AppendOptions::default(),
    )
    .unwrap();
    e.flush().unwrap();
    e.append(p, vec![mk(at(2, 0))], AppendOptions::default())
        .unwrap();
    e.flush().unwrap();
    e.append(p, vec![mk(at(0, 30))], AppendOptions::default())
        .unwrap();
    let now = at(2, 5);
    let top = e.top_errors(p, now, 3, 10).unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].count, 4);
    let vol = e.log_volume(p, now, 3, Bucket::Hour).unwrap();
    assert_eq!(
        vol.iter().map(|b| b.total).collect::<Vec<_>>(),
        [0, 3, 0, 1]
    );
    // Drop the first segment (max ts in hour 0): the late log in hour 0 stays, and the
    // hour's earliest time and the sample must now come from it.
    let (segs, rows) = e.enforce_retention(p, at(1, 0)).unwrap();
    assert_eq!((segs, rows), (1, 2));
    let top = e.top_errors(p, now, 3, 10).unwrap();
    assert_eq!(top[0].count, 2);
    assert_eq!(top[0].first_seen_us, at(0, 30));
    let old = e.top_errors(p, at(0, 59), 1, 10).unwrap();
    assert_eq!(old[0].count, 1);
    assert_eq!(old[0].sample_log_id.timestamp, at(0, 30));
    assert_eq!(
        e.get(p, old[0].sample_log_id)
            .unwrap()
            .map(|r| r.log.timestamp),
        Some(at(0, 30))
    );
    e.close().unwrap();
}

/// With tiny caps, groups get evicted; answers stay exact for windows after the point the
/// status reports, and never overcount before it.
#[test]
fn capped_tables_stay_exact_after_the_eviction_point() {
    for seed in 0..4u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let cfg = RollupConfig {
            enabled: true,
            max_fingerprints: 6,
            max_patterns: 5,
        };
        let mut e = open(dir.path(), &cfg);
        let p = 1;
        let mut clock = T0;
        for round in 0..40 {
            clock += rng.gen_range(0..90) * MINUTE_US;
            let batch: Vec<NewLog> = (0..rng.gen_range(1..12))
                .map(|_| {
                    let ts = clock - rng.gen_range(0..120) * MINUTE_US;
                    // Many distinct error types and message words: more groups than the caps.
                    let mut l = make_log(
                        ts,
                        rng.gen_range(0..5),
                        rng.gen_range(0..7),
                        rng.gen_range(0..9),
                        Some(0),
                    );
                    let kind = rng.gen_range(0..12);
                    l.set(
                        Field::ErrorType,
                        format!(
                            "Error{}",
                            ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L"][kind]
                        ),
                    );
                    l.set(
                        Field::Message,
                        format!(
                            "step {} {}",
                            ["a", "b", "c", "d", "e", "f", "g", "h"][rng.gen_range(0..8)],
                            NAMES[rng.gen_range(0..4)]
                        ),
                    );
                    l
                })
                .collect();
            e.append(p, batch, AppendOptions::default()).unwrap();
            if round % 13 == 12 {
                e.close().unwrap();
                drop(e);
                e = open(dir.path(), &cfg);
            }
            if round % 17 == 16 {
                e.enforce_retention(p, clock - 30 * HOUR_US).unwrap();
            }
        }
        let logs = stored(&e, p);
        let status = e.rollup_status(p);
        assert!(
            status.fingerprints <= 6 && status.patterns <= 5,
            "{status:?}"
        );
        assert!(
            status.fingerprints_exact_after_us.is_some(),
            "the caps were passed"
        );
        for hours in [1u32, 3, 12, 48, 200] {
            let (start, _) = window(clock, hours, HOUR_US).unwrap();
            let top = e.top_errors(p, clock, hours, 1000).unwrap();
            let want = expect_top_errors(&logs, clock, hours);
            if status.fingerprints_exact_after_us.is_none_or(|t| start > t) {
                assert_eq!(top, want, "seed {seed}, {hours}h");
            } else {
                for t in &top {
                    let w = want
                        .iter()
                        .find(|w| w.fingerprint == t.fingerprint)
                        .unwrap();
                    assert!(t.count <= w.count);
                }
            }
            let pats = e.patterns(p, clock, hours, 1000).unwrap();
            if status.patterns_exact_after_us.is_none_or(|t| start > t) {
                assert_eq!(
                    pats,
                    expect_patterns(&logs, clock, hours),
                    "seed {seed}, {hours}h"
                );
            } else {
                let all: u64 = template_aggs(&logs, clock, hours)
                    .iter()
                    .map(|t| t.1.count)
                    .sum();
                assert!(pats.iter().map(|p| p.count).sum::<u64>() <= all);
            }
            // Level counts are never capped.
            assert_eq!(
                e.log_volume(p, clock, hours, Bucket::Hour).unwrap(),
                expect_volume(&logs, clock, hours, Bucket::Hour)
            );
        }
        e.close().unwrap();
    }
}

#[test]
fn deleted_and_unknown_projects_answer_empty() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), &RollupConfig::default());
    e.append(
        9,
        vec![make_log(T0, 3, 0, 1, Some(0))],
        AppendOptions::default(),
    )
    .unwrap();
    assert_eq!(e.top_errors(9, T0, 1, 5).unwrap().len(), 1);
    e.delete_project(9).unwrap();
    assert!(e.top_errors(9, T0, 1, 5).unwrap().is_empty());
    assert!(e.patterns(9, T0, 1, 5).unwrap().is_empty());
    let v = e.log_volume(9, T0, 1, Bucket::FifteenMinutes).unwrap();
    assert!(v.iter().all(|b| b.total == 0) && !v.is_empty());
    assert!(e
        .log_volume(42, T0, 1, Bucket::Day)
        .unwrap()
        .iter()
        .all(|b| b.total == 0));
    assert!(e.top_errors(42, T0, 0, 5).is_err());
    assert!(e.top_errors(42, T0, 1, 0).is_err());
    e.close().unwrap();
}

#[test]
fn disabled_rollups_cost_nothing_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RollupConfig {
        enabled: false,
        ..RollupConfig::default()
    };
    let e = open(dir.path(), &cfg);
    e.append(
        1,
        vec![make_log(T0, 1, 0, 1, None)],
        AppendOptions::default(),
    )
    .unwrap();
    assert!(e.log_volume(1, T0, 1, Bucket::Hour).is_err());
    assert_eq!(e.rollup_status(1).approx_bytes, 0);
    e.close().unwrap();
}
