//! `kill -9` during ingest, then restart: every log that got a 202 is there.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{log, request, Server};
use serde_json::json;

#[test]
fn every_acknowledged_log_survives_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut s = Server::start_in(&dir, &[]);
    let t = s.tenant("a@b.co");
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (addr, key, acked, stop) = (s.addr.clone(), t.key.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let auth = format!("Bearer {key}");
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && n < 400 {
                    let single = n.is_multiple_of(4);
                    let body = if single {
                        log(n, &format!("w{w}-{n}")).to_string()
                    } else {
                        json!({"logs": (0..25).map(|i| log(n, &format!("w{w}-{n}-{i}"))).collect::<Vec<_>>()}).to_string()
                    };
                    let path = if single { "/api/v1/ingest/single" } else { "/api/v1/ingest/batch" };
                    // The connection may die mid-request once the server is killed.
                    let r = std::panic::catch_unwind(|| {
                        request(&addr, "POST", path, &[("Authorization", &auth), ("Content-Type", "application/json")], body.as_bytes())
                    });
                    match r {
                        Ok(r) if r.status == 202 => {
                            let j = r.json();
                            let mut a = acked.lock().unwrap();
                            if single {
                                a.push(j["id"].as_str().unwrap().to_owned());
                            } else {
                                a.extend(j["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()));
                            }
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                    n += 1;
                }
            })
        })
        .collect();
    // Let some writes land, then kill without warning while they continue.
    while acked.lock().unwrap().len() < 500 {
        std::thread::sleep(Duration::from_millis(10));
    }
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.join();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 500);

    let s = Server::start_in(&dir, &[]);
    let mut found = HashSet::new();
    let mut cursor = String::new();
    loop {
        let r = s.get(&format!("/api/v1/logs?limit=1000&cursor={cursor}"), &t.key);
        assert_eq!(r.status, 200, "{}", r.text());
        let j = r.json();
        for l in j["logs"].as_array().unwrap() {
            assert!(
                found.insert(l["id"].as_str().unwrap().to_owned()),
                "a log appeared twice"
            );
        }
        match j["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let missing: Vec<&String> = acked.iter().filter(|id| !found.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged logs lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(3)]
    );
    for id in acked.iter().step_by(97) {
        assert_eq!(s.get(&format!("/api/v1/logs/{id}"), &t.key).status, 200);
    }
    // Usage counts exactly what is stored (acknowledged, or stored as the server died).
    assert_eq!(
        usage(&s, &t.key).0,
        found.len() as u64,
        "daily usage differs from the stored logs after kill -9"
    );
}

/// `(logs, bytes)` of usage over the last two days (a test may run across midnight).
fn usage(s: &Server, key: &str) -> (u64, u64) {
    let r = s.get("/api/v1/metrics/usage-stats?days=2", key);
    assert_eq!(r.status, 200, "{}", r.text());
    let days = r.json()["days"].as_array().unwrap().clone();
    days.iter().fold((0, 0), |(l, b), d| {
        (
            l + d["logs"].as_u64().unwrap(),
            b + d["bytes"].as_u64().unwrap(),
        )
    })
}

#[test]
fn daily_usage_is_exact_after_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut s = Server::start_in(&dir, &[]);
    let t = s.tenant("a@b.co");
    for b in 0..21u64 {
        let logs: Vec<_> = (0..500).map(|i| log(b * 500 + i, "counted")).collect();
        let r = s.post("/api/v1/ingest/batch", &t.key, &json!({ "logs": logs }));
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let before = usage(&s, &t.key);
    assert_eq!(before.0, 10_500);
    assert!(before.1 > 10_500 * 50, "bytes are counted: {before:?}");
    // At once: no time for any snapshot to be written.
    s.kill9();
    let s = Server::start_in(&dir, &[]);
    assert_eq!(usage(&s, &t.key), before, "usage after kill -9");
    // And quota enforcement goes on from there: 10,500 of a 10,600 quota are used.
    let p = format!("/api/v1/projects/{}", t.project);
    let r = s.patch(&p, &t.token, &json!({"daily_quota": 10_600}));
    assert_eq!(r.status, 200, "{}", r.text());
    let logs: Vec<_> = (0..150).map(|i| log(i, "over")).collect();
    let r = s.post("/api/v1/ingest/batch", &t.key, &json!({ "logs": logs }));
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["accepted"], 100, "{}", r.text());
}
