//! Full-text search through the engine: agreement with a brute-force evaluation, freshness,
//! isolation, rebuild of a lost index, and retention.

mod common;

use common::*;
use ledger_engine::search::{self, SearchBudget};
use ledger_engine::{AppendOptions, Engine, Field, Filter, LogId, Order, ScanRequest};
use proptest::prelude::*;

fn search_all(e: &Engine, p: u64, q: &str, filter: Filter, order: Order) -> Vec<LogId> {
    let expr = search::parse(q).unwrap_or_else(|err| panic!("{q}: {err}"));
    let mut req = ScanRequest {
        filter,
        order,
        limit: 9,
        ..Default::default()
    };
    let mut out = Vec::new();
    loop {
        let page = e.search(p, &expr, &req, SearchBudget::default()).unwrap();
        assert!(!page.partial);
        out.extend(page.logs.iter().map(|r| r.id()));
        match page.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => return out,
        }
    }
}

fn brute(e: &Engine, p: u64, q: &str, filter: &Filter, order: Order) -> Vec<LogId> {
    let expr = search::parse(q).unwrap();
    let mut v: Vec<_> = all_logs(e, p)
        .into_iter()
        .filter(|r| filter.matches(r) && search::eval::matches(&expr, r))
        .map(|r| r.id())
        .collect();
    if order == Order::Desc {
        v.reverse();
    }
    v
}

const QUERIES: &[&str] = &[
    "user",
    "thing 2",
    "\"did thing\"",
    "\"thing 1\" OR \"thing 2\"",
    "user -thing",
    "NOT user",
    "(valueerror OR keyerror) bad",
    "level:error",
    "level:warning OR level:critical",
    "service:billing user",
    "environment:prod -service:web",
    "error_type:KeyError",
    "attributes.user_id:u3",
    "attributes.http.status:500",
    "attributes.http.status:>=404",
    "attributes.http.status:[200 TO 404]",
    "attributes.ok:true",
    "message:/did thing [12]/",
    "message:/USER 4\\d/i",
    "error_message:/value 9/",
    "release:v2 AND NOT level:debug",
];

fn corpus(e: &Engine, seed: u64, n: usize) {
    let mut rng = rng(seed);
    for b in 0..(n / 50) {
        let logs = (0..50)
            .map(|i| random_log(&mut rng, T0 + ((i * 37 + b * 11) % 3000) as i64 * 1000))
            .collect();
        e.append(1, logs, AppendOptions::default()).unwrap();
        if b % 4 == 3 {
            e.flush().unwrap();
        }
    }
    e.refresh_search().unwrap();
}

#[test]
fn every_query_agrees_with_a_brute_force_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), small_config());
    corpus(&e, 11, 1500);
    for q in QUERIES {
        for order in [Order::Desc, Order::Asc] {
            let f = Filter::default();
            assert_eq!(
                search_all(&e, 1, q, f.clone(), order),
                brute(&e, 1, q, &f, order),
                "{q} {order:?}"
            );
        }
        let f = Filter {
            levels: Some(0b11100),
            start: Some(T0 + 500_000),
            end: Some(T0 + 2_500_000),
            fields: vec![(Field::Environment, "prod".into())],
            ..Default::default()
        };
        assert_eq!(
            search_all(&e, 1, q, f.clone(), Order::Desc),
            brute(&e, 1, q, &f, Order::Desc),
            "{q} with filters"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]
    #[test]
    fn random_corpora_and_queries_agree_with_brute_force(
        seed in 0u64..1000,
        picks in proptest::collection::vec((0usize..QUERIES.len(), 0usize..QUERIES.len(), 0u8..3), 4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path(), small_config());
        corpus(&e, seed, 400);
        for (a, b, op) in picks {
            let q = match op {
                0 => format!("({}) ({})", QUERIES[a], QUERIES[b]),
                1 => format!("({}) OR ({})", QUERIES[a], QUERIES[b]),
                _ => format!("({}) -({})", QUERIES[a], QUERIES[b]),
            };
            let f = Filter::default();
            prop_assert_eq!(search_all(&e, 1, &q, f.clone(), Order::Desc), brute(&e, 1, &q, &f, Order::Desc), "{}", q);
        }
    }
}

#[test]
fn a_log_is_findable_within_the_refresh_interval_under_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ledger_engine::EngineConfig {
        search_refresh: std::time::Duration::from_millis(200),
        ..small_config()
    };
    let e = open(dir.path(), cfg);
    let writer = {
        let e = e.clone();
        std::thread::spawn(move || {
            let mut rng = rng(5);
            for _ in 0..40 {
                let logs = (0..50).map(|i| random_log(&mut rng, T0 + i)).collect();
                e.append(1, logs, AppendOptions::default()).unwrap();
            }
        })
    };
    let mut log = tagged(T0, 1, 0, 1);
    log.set(Field::Message, "needle zebracorn");
    let id = e.append(1, vec![log], AppendOptions::default()).unwrap()[0].id;
    let expr = search::parse("zebracorn").unwrap();
    let req = ScanRequest {
        limit: 10,
        ..Default::default()
    };
    let start = std::time::Instant::now();
    // The interval is 200 ms; allow generous slack for a loaded machine, but it must come.
    loop {
        let page = e.search(1, &expr, &req, SearchBudget::default()).unwrap();
        if page.logs.iter().any(|r| r.id() == id) {
            break;
        }
        assert!(start.elapsed().as_secs() < 20, "never became findable");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    writer.join().unwrap();
}

#[test]
fn projects_never_see_each_others_logs() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), small_config());
    let mut a = tagged(T0, 1, 0, 1);
    a.set(Field::Message, "secret alpha");
    let mut b = tagged(T0, 1, 0, 1);
    b.set(Field::Message, "secret beta");
    e.append(1, vec![a], AppendOptions::default()).unwrap();
    e.append(2, vec![b], AppendOptions::default()).unwrap();
    e.refresh_search().unwrap();
    for (p, want) in [(1, "secret alpha"), (2, "secret beta")] {
        for q in ["secret", "NOT nothing", "message:/secret/"] {
            let expr = search::parse(q).unwrap();
            let page = e
                .search(
                    p,
                    &expr,
                    &ScanRequest {
                        limit: 10,
                        ..Default::default()
                    },
                    SearchBudget::default(),
                )
                .unwrap();
            let msgs: Vec<_> = page
                .logs
                .iter()
                .map(|r| r.get(Field::Message).unwrap())
                .collect();
            assert_eq!(msgs, vec![want], "project {p}, {q}");
        }
    }
}

#[test]
fn a_deleted_index_is_rebuilt_from_segments_and_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let want;
    {
        let e = open(dir.path(), small_config());
        corpus(&e, 3, 600);
        let extra = (0..20)
            .map(|i| tagged(T0 + i, 77, i as usize, 20))
            .collect();
        e.append(1, extra, AppendOptions::default()).unwrap();
        e.refresh_search().unwrap();
        want = search_all(&e, 1, "user OR b77", Filter::default(), Order::Desc);
        e.close_without_sealing();
    }
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let e = open(dir.path(), small_config());
    assert!(want.len() > 600);
    assert_eq!(
        search_all(&e, 1, "user OR b77", Filter::default(), Order::Desc),
        want
    );
    drop(e);
    // A damaged index is rebuilt the same way.
    std::fs::write(dir.path().join("index/meta.json"), b"{not json").unwrap();
    let e = open(dir.path(), small_config());
    assert_eq!(
        search_all(&e, 1, "user OR b77", Filter::default(), Order::Desc),
        want
    );
}

#[test]
fn unindexed_rows_are_indexed_again_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ledger_engine::EngineConfig {
        search_refresh: std::time::Duration::from_secs(3600),
        ..small_config()
    };
    {
        let e = open(dir.path(), cfg.clone());
        e.refresh_search().unwrap();
        corpus_no_refresh(&e);
        // A crash before the index commits: nothing of it reached the index.
        std::mem::forget(e);
    }
    // The forgotten engine still holds its files' locks in this process, so check in a
    // copy, as a restarted process would see the directory.
    let copy = tempfile::tempdir().unwrap();
    copy_tree(dir.path(), copy.path());
    let e = open(copy.path(), cfg);
    let got = search_all(&e, 1, "user", Filter::default(), Order::Desc);
    assert_eq!(got, brute(&e, 1, "user", &Filter::default(), Order::Desc));
    assert!(got.len() > 100);
}

fn corpus_no_refresh(e: &Engine) {
    let mut rng = rng(9);
    for b in 0..8 {
        let logs = (0..50)
            .map(|i| random_log(&mut rng, T0 + (i + b * 50) as i64))
            .collect();
        e.append(1, logs, AppendOptions::default()).unwrap();
    }
    e.flush().unwrap();
    e.sync().unwrap();
}

/// Copies a directory the forgotten engine may still be writing to (tantivy writes its
/// metadata through temporary files that vanish when renamed). A copy during which a file
/// vanished is not a snapshot of one instant, so it is thrown away and taken again.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for attempt in 0.. {
        match copy_dir(from, to) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < 50 => {
                std::fs::remove_dir_all(to).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("copying {}: {e}", from.display()),
        }
    }
}

#[test]
fn retention_removes_a_segments_logs_from_search() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), small_config());
    let old = (0..30).map(|i| tagged(T0 + i, 1, i as usize, 30)).collect();
    let new = (0..30)
        .map(|i| tagged(T0 + 50_000_000 + i, 2, i as usize, 30))
        .collect();
    e.append(1, old, AppendOptions::default()).unwrap();
    e.flush().unwrap();
    e.append(1, new, AppendOptions::default()).unwrap();
    e.flush().unwrap();
    e.refresh_search().unwrap();
    assert_eq!(
        search_all(&e, 1, "of", Filter::default(), Order::Desc).len(),
        60
    );
    e.enforce_retention(1, T0 + 10_000_000).unwrap();
    e.refresh_search().unwrap();
    let left = search_all(&e, 1, "of", Filter::default(), Order::Desc);
    assert_eq!(left.len(), 30);
    assert!(left.iter().all(|id| id.timestamp >= T0 + 50_000_000));
}

#[test]
fn reindexing_a_project_keeps_results_identical() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), small_config());
    corpus(&e, 21, 500);
    let before = search_all(&e, 1, "user", Filter::default(), Order::Desc);
    assert_eq!(e.reindex_project(1).unwrap(), 500);
    assert_eq!(
        search_all(&e, 1, "user", Filter::default(), Order::Desc),
        before
    );
    // Twice in a row leaves no duplicates either.
    e.reindex_project(1).unwrap();
    assert_eq!(
        search_all(&e, 1, "user", Filter::default(), Order::Desc),
        before
    );
}

#[test]
fn inspect_reports_the_index_bytes_of_each_field() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = open(dir.path(), small_config());
        corpus(&e, 5, 600);
        e.close().unwrap();
    }
    let space = ledger_engine::inspect::index_space(dir.path())
        .unwrap()
        .expect("search is on: there is an index");
    assert_eq!(space.docs, 600);
    let field = |name: &str| {
        space
            .fields
            .iter()
            .find(|f| f.field == name)
            .unwrap_or_else(|| panic!("{name} in {:?}", space.fields))
            .clone()
    };
    let message = field("message");
    assert!(message.terms > 0 && message.postings > 0 && message.positions > 0);
    // Positions only where phrases are common.
    assert_eq!(field("service").positions, 0);
    assert!(field("ts").fast > 0 && field("ts").terms == 0);
    assert!(space
        .fields
        .windows(2)
        .all(|w| w[0].total() >= w[1].total()));
    let in_fields: u64 = space.fields.iter().map(|f| f.total()).sum();
    // No field is stored, but tantivy's document store keeps an entry per document.
    assert!(space.store > 0);
    assert_eq!(in_fields + space.store + space.other, space.total);
    // Search off: no index, no figures.
    let off = tempfile::tempdir().unwrap();
    {
        let mut cfg = small_config();
        cfg.search = false;
        let e = open(off.path(), cfg);
        corpus_no_search(&e);
        e.close().unwrap();
    }
    assert!(ledger_engine::inspect::index_space(off.path())
        .unwrap()
        .is_none());
}

fn corpus_no_search(e: &Engine) {
    let mut rng = rng(6);
    let logs = (0..50).map(|i| random_log(&mut rng, T0 + i)).collect();
    e.append(1, logs, AppendOptions::default()).unwrap();
}
