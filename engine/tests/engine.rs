//! The engine's behaviour through its public handle, on real files in a temp directory.

mod common;

use common::*;
use ledger_engine::{
    AppendOptions, AttrMatch, EngineError, Field, Filter, Level, LogId, Order, RecoveryMode,
    ScanRequest,
};

fn scan_all(e: &ledger_engine::Engine, p: u64, filter: Filter, order: Order) -> Vec<LogId> {
    let mut req = ScanRequest {
        filter,
        order,
        limit: 7,
        ..Default::default()
    };
    let mut out = Vec::new();
    loop {
        let page = e.scan(p, &req).unwrap();
        out.extend(page.logs.iter().map(|r| r.id()));
        match page.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => return out,
        }
    }
}

#[test]
fn appended_logs_are_readable_at_once_by_id_and_scan() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), small_config());
    let acks = e
        .append(
            1,
            vec![tagged(T0, 1, 0, 2), tagged(T0 + 5, 1, 1, 2)],
            AppendOptions::default(),
        )
        .unwrap();
    assert_eq!(acks.len(), 2);
    for a in &acks {
        let r = e.get(1, a.id).unwrap().expect("readable by id");
        assert_eq!(r.id(), a.id);
        assert_eq!(r.ingested_at, a.ingested_at);
    }
    let page = e
        .scan(
            1,
            &ScanRequest {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(page.logs.len(), 2);
    assert_eq!(page.logs[0].id(), acks[1].id, "newest first");
    // Another project sees nothing of it.
    assert!(e.get(2, acks[0].id).unwrap().is_none());
    assert!(e
        .scan(
            2,
            &ScanRequest {
                limit: 10,
                ..Default::default()
            }
        )
        .unwrap()
        .logs
        .is_empty());
}

#[test]
fn scans_agree_with_a_brute_force_filter_across_memtables_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), small_config());
    let mut rng = rng(7);
    for b in 0..30 {
        let logs = (0..37)
            .map(|i| {
                // Timestamps interleave across batches, some late.
                let ts = T0 + ((i * 7919 + b * 104_729) % 5000) as i64 * 1000;
                random_log(&mut rng, ts)
            })
            .collect();
        e.append(3, logs, AppendOptions::default()).unwrap();
        if b % 10 == 9 {
            // Deterministic seals (the automatic ones depend on thread timing).
            e.flush().unwrap();
        }
    }
    for b in 0..3 {
        let logs = (0..50)
            .map(|i| random_log(&mut rng, T0 + (i * 97 + b) as i64 * 1000))
            .collect();
        e.append(3, logs, AppendOptions::default()).unwrap();
    }
    let all = all_logs(&e, 3);
    assert_eq!(all.len(), 30 * 37 + 150);
    assert!(e.stats().segments >= 3, "segments were made");
    let filters = vec![
        Filter::default(),
        Filter {
            levels: Some(1 << Level::Error as u8 | 1 << Level::Critical as u8),
            ..Default::default()
        },
        Filter {
            start: Some(T0 + 1_000_000),
            end: Some(T0 + 2_000_000),
            ..Default::default()
        },
        Filter {
            fields: vec![(Field::Service, "billing".into())],
            ..Default::default()
        },
        Filter {
            fields: vec![
                (Field::Environment, "prod".into()),
                (Field::Release, "v2".into()),
            ],
            ..Default::default()
        },
        Filter {
            attrs: vec![AttrMatch {
                path: vec!["http".into(), "status".into()],
                value: "500".into(),
            }],
            ..Default::default()
        },
        Filter {
            attrs: vec![AttrMatch {
                path: vec!["user_id".into()],
                value: "u3".into(),
            }],
            log_types: Some(0b0011),
            ..Default::default()
        },
        Filter {
            importances: Some(0b100),
            start: Some(T0 + 3_000_000),
            ..Default::default()
        },
    ];
    for f in filters {
        let mut want: Vec<_> = all
            .iter()
            .filter(|r| f.matches(r))
            .map(|r| r.id())
            .collect();
        want.sort_by_key(|id| (id.timestamp, id.seq));
        assert_eq!(scan_all(&e, 3, f.clone(), Order::Asc), want, "asc {f:?}");
        want.reverse();
        assert_eq!(scan_all(&e, 3, f.clone(), Order::Desc), want, "desc {f:?}");
        // Offset skips exactly that many.
        let page = e
            .scan(
                3,
                &ScanRequest {
                    filter: f.clone(),
                    limit: 5,
                    offset: 3,
                    ..Default::default()
                },
            )
            .unwrap();
        let got: Vec<_> = page.logs.iter().map(|r| r.id()).collect();
        assert_eq!(
            got,
            want.iter().skip(3).take(5).copied().collect::<Vec<_>>()
        );
    }
}

#[test]
fn every_id_is_found_after_sealing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    {
        let e = open(dir.path(), small_config());
        let mut rng = rng(3);
        for _ in 0..10 {
            let logs = (0..90)
                .map(|i| random_log(&mut rng, T0 + i * 1_000))
                .collect();
            ids.extend(
                e.append(9, logs, AppendOptions::default())
                    .unwrap()
                    .into_iter()
                    .map(|a| a.id),
            );
        }
        e.close().unwrap();
    }
    let e = open(dir.path(), small_config());
    assert!(e.stats().segments > 0);
    for id in &ids {
        assert!(e.get(9, *id).unwrap().is_some(), "{id} lost");
    }
    assert_eq!(all_logs(&e, 9).len(), ids.len());
}

#[test]
fn unsealed_rows_are_replayed_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    // Half the rows get sealed, half stay in the WAL only.
    let cfg = ledger_engine::EngineConfig {
        seal_rows: 1_000_000,
        ..small_config()
    };
    {
        let e = open(dir.path(), cfg.clone());
        for b in 0..20 {
            let logs = (0..30)
                .map(|i| tagged(T0 + b * 100 + i, b as u64, i as usize, 30))
                .collect();
            ids.extend(
                e.append(4, logs, AppendOptions::default())
                    .unwrap()
                    .into_iter()
                    .map(|a| a.id),
            );
            if b == 9 {
                e.flush().unwrap();
            }
        }
        e.close_without_sealing();
    }
    for round in 0..2 {
        let (e, rep) = ledger_engine::Engine::open(dir.path(), cfg.clone()).unwrap();
        if round == 0 {
            assert_eq!(rep.recovery.rows_replayed, 300, "{rep:?}");
            assert_eq!(rep.segments, 1);
        }
        let got: Vec<LogId> = all_logs(&e, 4).iter().map(|r| r.id()).collect();
        let mut want = ids.clone();
        want.sort_by_key(|id| (id.timestamp, id.seq));
        assert_eq!(got, want, "round {round}");
        e.close_without_sealing();
    }
}

#[test]
fn torn_tail_is_cut_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ledger_engine::EngineConfig {
        seal_rows: 1_000_000,
        ..small_config()
    };
    let mut batches = Vec::new();
    {
        let e = open(dir.path(), cfg.clone());
        for b in 0..5 {
            let logs = (0..3).map(|i| tagged(T0 + i, b, i as usize, 3)).collect();
            batches.push(e.append(5, logs, AppendOptions::default()).unwrap());
        }
        e.close_without_sealing();
    }
    let wal = ledger_engine::wal::list_files(&ledger_engine::fs::RealFs, &dir.path().join("wal"))
        .unwrap();
    let (_, last) = wal.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let (e, rep) = ledger_engine::Engine::open(dir.path(), cfg.clone()).unwrap();
    assert_eq!(rep.recovery.cut.len(), 1, "{rep:?}");
    let (path, _, dropped, _) = &rep.recovery.cut[0];
    assert_eq!(path, last);
    assert!(*dropped > 0);
    for (b, acks) in batches.iter().enumerate() {
        let present = acks
            .iter()
            .filter(|a| e.get(5, a.id).unwrap().is_some())
            .count();
        let want = if b == 4 { 0 } else { 3 };
        assert_eq!(present, want, "batch {b} must be all in or all out");
    }
    e.close_without_sealing();
    // The cut is durable: the next open finds nothing to cut.
    let (_, rep) = ledger_engine::Engine::open(dir.path(), cfg).unwrap();
    assert!(rep.recovery.cut.is_empty());
}

#[test]
fn corruption_before_the_tail_stops_the_open_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ledger_engine::EngineConfig {
        seal_rows: 1_000_000,
        ..small_config()
    };
    {
        let e = open(dir.path(), cfg.clone());
        for b in 0..5 {
            let logs = (0..3).map(|i| tagged(T0 + i, b, i as usize, 3)).collect();
            e.append(6, logs, AppendOptions::default()).unwrap();
        }
        e.close_without_sealing();
    }
    let wal = ledger_engine::wal::list_files(&ledger_engine::fs::RealFs, &dir.path().join("wal"))
        .unwrap();
    let (_, last) = wal
        .iter()
        .rev()
        .find(|(_, p)| std::fs::metadata(p).unwrap().len() > 100)
        .unwrap()
        .clone();
    let mut bytes = std::fs::read(&last).unwrap();
    bytes[40] ^= 0xff;
    std::fs::write(&last, &bytes).unwrap();
    let err = match ledger_engine::Engine::open(dir.path(), cfg.clone()) {
        Err(e) => e,
        Ok(_) => panic!("open must refuse a corrupt WAL"),
    };
    match &err {
        EngineError::Corrupt { path, offset, .. } => {
            assert_eq!(path, &last);
            assert_eq!(
                *offset, 24,
                "the first frame starts after the 24-byte header"
            );
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains(&last.display().to_string()));
    // An explicit salvage mode opens it, keeping what is readable.
    let cfg = ledger_engine::EngineConfig {
        recovery: RecoveryMode::TolerateAnyCorruption,
        ..cfg
    };
    let (_, rep) = ledger_engine::Engine::open(dir.path(), cfg).unwrap();
    assert_eq!(rep.recovery.cut.len(), 1);
}

#[test]
fn exact_match_filters_skip_blocks_without_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), small_config());
    // 640 logs of service "api" sealed in blocks of 32, one "rare" log among them.
    for b in 0..4u64 {
        let logs = (0..160)
            .map(|i| {
                let n = b as i64 * 160 + i;
                let svc = if n == 333 { "rare" } else { "api" };
                tagged(T0 + n, b, i as usize, 160).with(Field::Service, svc.to_string())
            })
            .collect();
        e.append(3, logs, AppendOptions::default()).unwrap();
    }
    e.flush().unwrap();
    assert_eq!(e.stats().memtable_rows, 0, "everything is in segments");
    // A budget of two blocks: a scan that read every block would run out of it.
    let scan = |svc: &str| {
        let req = ScanRequest {
            filter: Filter {
                fields: vec![(Field::Service, svc.into())],
                ..Default::default()
            },
            max_examined: Some(64),
            limit: 100,
            ..Default::default()
        };
        e.scan(3, &req).unwrap()
    };
    let page = scan("rare");
    assert!(!page.partial, "blocks without the value were read");
    assert_eq!(page.logs.len(), 1);
    assert_eq!(page.logs[0].log.timestamp, T0 + 333);
    let page = scan("absent");
    assert!(!page.partial && page.logs.is_empty());
    // A value in every block reads blocks until the budget runs out: the budget is real.
    assert!(scan("api").partial);
}

#[test]
fn retention_drops_whole_old_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), small_config());
    let old: Vec<_> = (0..50).map(|i| tagged(T0 + i, 1, i as usize, 50)).collect();
    let new: Vec<_> = (0..50)
        .map(|i| tagged(T0 + 10_000_000 + i, 2, i as usize, 50))
        .collect();
    e.append(7, old, AppendOptions::default()).unwrap();
    e.flush().unwrap();
    e.append(7, new, AppendOptions::default()).unwrap();
    e.flush().unwrap();
    let (segs, rows) = e.enforce_retention(7, T0 + 5_000_000).unwrap();
    assert_eq!((segs, rows), (1, 50));
    let left = all_logs(&e, 7);
    assert_eq!(left.len(), 50);
    assert!(left.iter().all(|r| r.log.timestamp >= T0 + 10_000_000));
    e.close().unwrap();
    let e = open(dir.path(), small_config());
    assert_eq!(all_logs(&e, 7).len(), 50, "retention is durable");
}

#[test]
fn deleted_project_is_gone_and_stays_gone_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = open(dir.path(), small_config());
        for p in [10, 11] {
            let logs = (0..300)
                .map(|i| tagged(T0 + i, p, i as usize, 300))
                .collect();
            e.append(p, logs, AppendOptions::default()).unwrap();
        }
        e.append(10, vec![tagged(T0, 99, 0, 1)], AppendOptions::default())
            .unwrap();
        e.delete_project(10).unwrap();
        assert!(all_logs(&e, 10).is_empty());
        assert!(matches!(
            e.append(10, vec![tagged(T0, 1, 0, 1)], AppendOptions::default()),
            Err(EngineError::UnknownProject(10))
        ));
        e.close_without_sealing();
    }
    let e = open(dir.path(), small_config());
    assert!(
        all_logs(&e, 10).is_empty(),
        "WAL replay must not resurrect a deleted project"
    );
    assert_eq!(all_logs(&e, 11).len(), 300);
}

#[test]
fn queue_depth_limit_refuses_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ledger_engine::EngineConfig {
        seal_rows: 1_000_000,
        ..small_config()
    };
    let e = open(dir.path(), cfg);
    let opts = AppendOptions {
        max_queue_depth: Some(10),
        ..AppendOptions::default()
    };
    e.append(1, (0..8).map(|i| tagged(T0 + i, 1, 0, 1)).collect(), opts)
        .unwrap();
    let err = e
        .append(1, (0..3).map(|i| tagged(T0 + i, 2, 0, 1)).collect(), opts)
        .unwrap_err();
    assert!(matches!(err, EngineError::Backpressure(_)));
    assert_eq!(
        e.queue_depth(1),
        8,
        "nothing of the refused batch was stored"
    );
    e.flush().unwrap();
    assert_eq!(e.queue_depth(1), 0);
    e.append(1, (0..3).map(|i| tagged(T0 + i, 3, 0, 1)).collect(), opts)
        .unwrap();
}

#[test]
fn cursor_pages_stay_correct_while_new_logs_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), small_config());
    let mut want = Vec::new();
    for b in 0..10 {
        let logs = (0..50)
            .map(|i| tagged(T0 + b * 1000 + i, b as u64, i as usize, 50))
            .collect();
        want.extend(
            e.append(2, logs, AppendOptions::default())
                .unwrap()
                .into_iter()
                .map(|a| a.id),
        );
    }
    want.sort_by_key(|id| std::cmp::Reverse((id.timestamp, id.seq)));
    let writer = {
        let e = e.clone();
        std::thread::spawn(move || {
            for b in 0..40u64 {
                // Newer logs, arriving while the reader pages backwards in time.
                let logs = (0..25)
                    .map(|i| {
                        tagged(
                            T0 + 1_000_000 + (b * 25 + i) as i64,
                            100 + b,
                            i as usize,
                            25,
                        )
                    })
                    .collect();
                e.append(2, logs, AppendOptions::default()).unwrap();
            }
        })
    };
    let mut req = ScanRequest {
        limit: 13,
        filter: Filter {
            end: Some(T0 + 1_000_000),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut got = Vec::new();
    loop {
        let page = e.scan(2, &req).unwrap();
        got.extend(page.logs.iter().map(|r| r.id()));
        match page.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => break,
        }
    }
    writer.join().unwrap();
    assert_eq!(got, want, "every log exactly once, in order");
    // And paging everything, including the new logs, also sees each once.
    let all = all_logs(&e, 2);
    let mut seen = std::collections::HashSet::new();
    assert!(all.iter().all(|r| seen.insert(r.id())));
    assert_eq!(all.len(), 500 + 40 * 25);
}

#[test]
fn fingerprints_are_assigned_at_append() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), small_config());
    let mut a = tagged(T0, 1, 0, 1);
    a.set(Field::ErrorType, "NotFound")
        .set(Field::ErrorMessage, "user 42 not found");
    let mut b = tagged(T0, 1, 0, 1);
    b.set(Field::ErrorType, "NotFound")
        .set(Field::ErrorMessage, "user 97 not found");
    let acks = e
        .append(1, vec![a, b, tagged(T0, 1, 0, 1)], AppendOptions::default())
        .unwrap();
    let get = |i: usize| e.get(1, acks[i].id).unwrap().unwrap();
    let fa = get(0).get(Field::ErrorFingerprint).map(str::to_owned);
    assert!(fa.is_some());
    assert_eq!(fa.as_deref(), get(1).get(Field::ErrorFingerprint));
    assert_eq!(get(2).get(Field::ErrorFingerprint), None);
}

#[test]
fn memtable_memory_limit_gives_backpressure_and_clears_after_sealing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ledger_engine::EngineConfig {
        seal_rows: 1_000_000,
        seal_bytes: usize::MAX,
        memtable_limit_bytes: 64 << 10,
        search: false,
        ..small_config()
    };
    let e = open(dir.path(), cfg);
    let big = |b| {
        (0..100)
            .map(|i| tagged(T0 + i, b, i as usize, 100))
            .collect::<Vec<_>>()
    };
    let mut refused = None;
    for b in 0..100 {
        match e.append(1, big(b), AppendOptions::default()) {
            Ok(_) => {}
            Err(err) => {
                refused = Some((b, err));
                break;
            }
        }
    }
    let (b, err) = refused.expect("the limit must be reached");
    assert!(matches!(err, EngineError::Backpressure(_)), "{err}");
    assert_eq!(
        all_logs(&e, 1).len(),
        b as usize * 100,
        "nothing of the refused batch stored"
    );
    // Single logs still go in, into a reserve past the limit that batches cannot use...
    let one = |i: usize| vec![tagged(T0 + i as i64, 5000, i, 1)];
    e.append(1, one(0), AppendOptions::default())
        .expect("a single log has the reserve");
    assert!(matches!(
        e.append(1, big(b + 1), AppendOptions::default()),
        Err(EngineError::Backpressure(_))
    ));
    // ...and the reserve is bounded: single logs too are refused past it.
    let mut singles = 1;
    while e.append(1, one(singles), AppendOptions::default()).is_ok() {
        singles += 1;
        assert!(singles < 100_000, "the reserve must end");
    }
    e.flush().unwrap();
    e.append(1, big(1000), AppendOptions::default())
        .expect("accepted again once sealed");
}

#[test]
fn metrics_without_rollups_are_unavailable_not_the_callers_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config();
    cfg.rollups.enabled = false;
    let e = open(dir.path(), cfg);
    let err = e
        .error_rate(1, T0, 24, ledger_engine::Bucket::Hour)
        .unwrap_err();
    assert!(
        matches!(err, ledger_engine::EngineError::Unavailable(_)),
        "{err:?}"
    );
    // A window out of range is the caller's mistake.
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), small_config());
    let err = e
        .error_rate(1, T0, 0, ledger_engine::Bucket::Hour)
        .unwrap_err();
    assert!(
        matches!(err, ledger_engine::EngineError::Invalid(_)),
        "{err:?}"
    );
}

/// `since` (what a resuming live tail missed) finds every log after a sequence number, in
/// the order they became durable, across memtables and segments; and an open tail is handed
/// each batch as it is applied.
#[test]
fn since_and_tails_follow_the_order_logs_became_durable() {
    use common::{open, small_config, tagged, T0};
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), small_config());
    let tail = e.open_tail(1, 100_000, 10).expect("a tail opens");
    let mut seqs = Vec::new();
    for b in 0..12u64 {
        // Timestamps run backwards across batches: durable order is not time order.
        let logs = (0..50)
            .map(|r| tagged(T0 - (b as i64) * 1_000_000 + r as i64, b, r, 50))
            .collect();
        let ids = e.append(1, logs, Default::default()).unwrap();
        seqs.extend(ids.iter().map(|a| a.id.seq));
        if b == 5 {
            e.flush().unwrap(); // the first half sealed into segments
        }
    }
    e.append(2, vec![tagged(T0, 99, 0, 1)], Default::default())
        .unwrap();
    let after = seqs[99];
    let (rows, skipped) = e.since(1, after, 0, 1_000).unwrap();
    assert_eq!(skipped, 0);
    let got: Vec<u64> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(got, seqs[100..], "since missed, repeated or reordered logs");
    // A limit keeps the newest and counts the rest.
    let (rows, skipped) = e.since(1, after, 0, 10).unwrap();
    assert_eq!(skipped, seqs.len() - 100 - 10);
    assert_eq!(rows[0].seq, seqs[seqs.len() - 10]);
    // Logs ingested before `min_ingested_at` are left out.
    assert!(e.since(1, 0, i64::MAX, 10).unwrap().0.is_empty());
    // The tail saw project 1's logs only, in durable order.
    let taken = tail.take();
    assert_eq!(taken.skipped, 0);
    let tailed: Vec<u64> = taken.rows().map(|r| r.seq).collect();
    assert_eq!(tailed, seqs);
    e.close().unwrap();
}
