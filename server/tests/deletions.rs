//! Deleting logs by query through the API: asynchronous with state and count, gone from
//! every route and figure, later logs untouched, audited, resumed after `kill -9`.

mod common;

use std::time::{Duration, Instant};

use common::{log, Server, Tenant};
use serde_json::{json, Value};

fn ingest(s: &Server, t: &Tenant, logs: &[Value]) -> Vec<String> {
    let mut ids = Vec::new();
    for chunk in logs.chunks(1000) {
        let r = s.post("/api/v1/ingest/batch", &t.key, &json!({ "logs": chunk }));
        assert_eq!(r.status, 202, "{}", r.text());
        for id in r.json()["ids"].as_array().unwrap() {
            ids.push(id.as_str().unwrap().to_owned());
        }
    }
    ids
}

/// Waits for a deletion to leave `running`; returns its final record.
fn finished(s: &Server, t: &Tenant, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = s.get(
            &format!("/api/v1/projects/{}/deletions/{id}", t.project),
            &t.token,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let d = r.json();
        if d["state"] != "running" {
            return d;
        }
        assert!(Instant::now() < deadline, "deletion still running: {d}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn volume(s: &Server, t: &Tenant) -> u64 {
    let r = s.get("/api/v1/metrics/log-volume?hours=72&bucket=1h", &t.key);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["by_level"].as_object().unwrap().values())
        .map(|v| v.as_u64().unwrap())
        .sum()
}

fn usage_logs(s: &Server, t: &Tenant) -> u64 {
    let r = s.get("/api/v1/metrics/usage-stats?days=2", &t.key);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["logs"].as_u64().unwrap())
        .sum()
}

fn found(s: &Server, t: &Tenant, q: &str) -> usize {
    let r = s.get(&format!("/api/v1/logs/search?q={q}&limit=1000"), &t.key);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["logs"].as_array().unwrap().len()
}

#[test]
fn a_deletion_by_query_removes_its_logs_from_every_route_and_figure() {
    let s = Server::start(&[]);
    let t = s.tenant("gdpr@example.com");
    let other = s.tenant("other@example.com");
    let mut logs = Vec::new();
    for i in 0..300u64 {
        let msg = if i % 10 == 3 {
            format!("login ok password hunter2 for user {i}")
        } else {
            format!("request {i} served")
        };
        logs.push(log(i, &msg));
    }
    let ids = ingest(&s, &t, &logs);
    // The other tenant logs the same words: never touched.
    ingest(&s, &other, &logs[..50]);
    let secret_ids: Vec<&String> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 == 3)
        .map(|(_, id)| id)
        .collect();
    // Searchable within the index's refresh interval.
    let deadline = Instant::now() + Duration::from_secs(30);
    while found(&s, &t, "hunter2") < 30 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(found(&s, &t, "hunter2"), 30);
    let volume_before = volume(&s, &t);
    let usage_before = usage_logs(&s, &t);

    let r = s.post(
        &format!("/api/v1/projects/{}/deletions", t.project),
        &t.token,
        &json!({"q": "hunter2"}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let created = r.json();
    assert_eq!(created["state"], "running");
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    let id = created["id"].as_str().unwrap().to_owned();
    // Logs sent after the deletion was created are not touched, even when they match.
    let later = ingest(&s, &t, &[log(900, "password hunter2 again, later")]);

    let done = finished(&s, &t, &id);
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["deleted"], 30, "{done}");
    assert!(done["finished_at"].as_str().unwrap().ends_with('Z'));
    assert!(done.get("error").is_none());

    for sid in &secret_ids {
        s.get(&format!("/api/v1/logs/{sid}"), &t.key)
            .expect_error(404, "not_found");
    }
    assert_eq!(
        s.get(&format!("/api/v1/logs/{}", later[0]), &t.key).status,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while found(&s, &t, "hunter2") < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(found(&s, &t, "hunter2"), 1, "only the later log");
    assert_eq!(
        found(&s, &other, "hunter2"),
        5,
        "another tenant is untouched"
    );
    let r = s.get("/api/v1/logs?limit=1000", &t.key);
    let listed = r.json()["logs"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 300 - 30 + 1);
    assert!(listed
        .iter()
        .all(|l| !l["message"].as_str().unwrap().contains("hunter2") || l["id"] == later[0]));
    assert_eq!(volume(&s, &t), volume_before + 1 - 30);
    assert_eq!(usage_logs(&s, &t), usage_before + 1 - 30);

    // Listed newest first, audited.
    let r = s.post(
        &format!("/api/v1/projects/{}/deletions", t.project),
        &t.token,
        &json!({"level": ["debug"], "service": "nothing-here"}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let second = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(finished(&s, &t, &second)["deleted"], 0);
    let list = s
        .get(
            &format!("/api/v1/projects/{}/deletions", t.project),
            &t.token,
        )
        .json();
    let listed: Vec<&str> = list["deletions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [second.as_str(), id.as_str()]);
    let audit = s.get("/api/v1/audit", &t.token).json();
    let deletes = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "logs.delete")
        .count();
    assert_eq!(deletes, 2);
}

#[test]
fn bad_deletion_requests_are_refused_and_change_nothing() {
    let s = Server::start(&[]);
    let t = s.tenant("a@example.com");
    let b = s.tenant("b@example.com");
    let path = format!("/api/v1/projects/{}/deletions", t.project);
    s.post(&path, &t.token, &json!({}))
        .expect_error(400, "missing_field");
    s.post(&path, &t.token, &json!({"limit": "5"}))
        .expect_error(400, "invalid_field");
    // A syntax error in `q` is the search language's error, as on /logs/search.
    let r = s.post(&path, &t.token, &json!({"q": "a AND ("}));
    r.expect_error(400, "invalid_query");
    assert!(r.text().contains("position"), "{}", r.text());
    s.post(&path, &t.token, &json!({"level": "loud"}))
        .expect_error(400, "invalid_field");
    s.post(&path, &t.token, &json!({"start_time": "yesterday"}))
        .expect_error(400, "invalid_field");
    s.post(&path, &t.token, &json!({"service": 5}))
        .expect_error(400, "invalid_field");
    s.post(&path, &t.key, &json!({"q": "x"}))
        .expect_error(403, "forbidden");
    s.post(&path, &b.token, &json!({"q": "x"}))
        .expect_error(404, "not_found");
    s.get(&format!("{path}/0000000000000001"), &t.token)
        .expect_error(404, "not_found");
    s.get(&format!("{path}/nope"), &t.token)
        .expect_error(404, "not_found");
    let list = s.get(&path, &t.token).json();
    assert_eq!(list, json!({"deletions": []}));
}

#[test]
fn a_deletion_interrupted_by_kill_9_resumes_and_finishes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut s = Server::start_in(&dir, &[]);
    let t = s.tenant("resume@example.com");
    let logs: Vec<Value> = (0..20_000u64)
        .map(|i| {
            let mut l = log(i % 60_000, &format!("event {i}"));
            l["service"] = json!(if i % 4 == 0 { "billing" } else { "api" });
            l
        })
        .collect();
    ingest(&s, &t, &logs);
    let r = s.post(
        &format!("/api/v1/projects/{}/deletions", t.project),
        &t.token,
        &json!({"service": "billing"}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    s.kill9();
    let s = Server::start_in(&dir, &[]);
    let done = finished(&s, &t, &id);
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["deleted"], 5_000, "{done}");
    let r = s.get("/api/v1/logs?service=billing&limit=10", &t.key);
    assert_eq!(r.json()["logs"].as_array().unwrap().len(), 0);
    let r = s.get("/api/v1/logs?service=api&limit=1000", &t.key);
    assert_eq!(r.json()["logs"].as_array().unwrap().len(), 1000);
    assert_eq!(volume(&s, &t), 15_000);
    assert_eq!(usage_logs(&s, &t), 15_000);
}
