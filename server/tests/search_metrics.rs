//! `/logs/search`, `/metrics/*` and `/logs/patterns` through the real binary.

mod common;

use common::*;
use serde_json::{json, Value};

fn ingest(s: &Server, key: &str, logs: Vec<Value>) {
    let r = s.post("/api/v1/ingest/batch", key, &json!({ "logs": logs }));
    assert_eq!(r.status, 202, "{}", r.text());
}

fn now_rfc3339(offset_ms: i64) -> String {
    ledger_engine::timefmt::format_micros(ledger_engine::now_micros() + offset_ms * 1000)
}

fn search_until(s: &Server, key: &str, q: &str, want: usize) -> Value {
    // Logs are findable within the refresh interval (1 s); allow slack for a slow machine.
    for _ in 0..200 {
        let r = s.get(&format!("/api/v1/logs/search?q={q}"), key);
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        if v["logs"].as_array().unwrap().len() >= want {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{q}: fewer than {want} results after 20 s");
}

#[test]
fn search_finds_words_phrases_fields_attributes_and_regexes() {
    let s = Server::start(&[]);
    let t = s.tenant("search@example.com");
    let mut logs = Vec::new();
    for i in 0..30 {
        let mut l = log(i, &format!("request {i} timed out after {} ms", 100 + i));
        l["service"] = json!(if i % 2 == 0 { "billing" } else { "web" });
        l["attributes"] = json!({"http": {"status": if i < 10 { 500 } else { 200 }}, "user_id": format!("usr_{i}")});
        logs.push(l);
    }
    logs.push(log(99, "connection refused by database"));
    ingest(&s, &t.key, logs);

    let v = search_until(&s, &t.key, "timed%20out", 30);
    assert_eq!(v["partial"], false);
    let first = &v["logs"][0];
    assert_eq!(
        first["message"], "request 29 timed out after 129 ms",
        "newest first"
    );
    let v = search_until(&s, &t.key, "%22connection%20refused%22", 1);
    assert_eq!(v["logs"].as_array().unwrap().len(), 1);
    let v = search_until(&s, &t.key, "service:billing%20timed", 15);
    assert_eq!(v["logs"].as_array().unwrap().len(), 15);
    let v = search_until(&s, &t.key, "attributes.http.status:500", 10);
    assert_eq!(v["logs"].as_array().unwrap().len(), 10);
    let v = search_until(&s, &t.key, "attributes.user_id:%22usr_7%22", 1);
    assert_eq!(v["logs"][0]["attributes"]["user_id"], "usr_7");
    let v = search_until(&s, &t.key, "message:/after%2012%5Cd%20ms/", 10);
    assert_eq!(v["logs"].as_array().unwrap().len(), 10);
    let v = search_until(&s, &t.key, "timed%20-service:web%20OR%20refused", 16);
    assert_eq!(v["logs"].as_array().unwrap().len(), 16);
    // Filters of /logs apply too, and the cursor pages.
    let r = s.get("/api/v1/logs/search?q=timed&service=web&limit=4", &t.key);
    let v = r.json();
    assert_eq!(v["logs"].as_array().unwrap().len(), 4);
    let cursor = v["next_cursor"].as_str().unwrap().to_owned();
    let r = s.get(
        &format!("/api/v1/logs/search?q=timed&service=web&limit=20&cursor={cursor}"),
        &t.key,
    );
    assert_eq!(r.json()["logs"].as_array().unwrap().len(), 11);

    // Syntax errors name the position.
    let r = s.get("/api/v1/logs/search?q=(timed", &t.key);
    r.expect_error(400, "invalid_query");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("position 6"),
        "{}",
        r.text()
    );
    s.get("/api/v1/logs/search", &t.key)
        .expect_error(400, "invalid_query");
    s.get("/api/v1/logs/search?q=nosuchfield:x", &t.key)
        .expect_error(400, "invalid_query");

    // Another tenant finds nothing of it.
    let u = s.tenant("other@example.com");
    let r = s.get("/api/v1/logs/search?q=timed", &u.key);
    assert_eq!(r.json()["logs"], json!([]));
}

#[test]
fn metrics_and_patterns_count_the_stored_logs() {
    let s = Server::start(&[]);
    let t = s.tenant("metrics@example.com");
    let mut logs = Vec::new();
    for i in 0..12 {
        let mut l = log(i, &format!("user {} not found", 40 + i));
        l["timestamp"] = json!(now_rfc3339(-(i as i64) * 1000));
        if i % 3 == 0 {
            l["level"] = json!("error");
            l["error_type"] = json!("NotFound");
            l["error_message"] = json!(format!("user {} not found", 40 + i));
        }
        logs.push(l);
    }
    ingest(&s, &t.key, logs);

    let r = s.get("/api/v1/metrics/error-rate?hours=1&bucket=1h", &t.key);
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json()["buckets"].as_array().unwrap().clone();
    let total: u64 = b.iter().map(|x| x["total"].as_u64().unwrap()).sum();
    let errors: u64 = b.iter().map(|x| x["errors"].as_u64().unwrap()).sum();
    assert_eq!((total, errors), (12, 4));
    assert!(b
        .iter()
        .all(|x| x["start"].as_str().unwrap().ends_with('Z')));

    let r = s.get("/api/v1/metrics/log-volume?hours=1&bucket=5m", &t.key);
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json()["buckets"].as_array().unwrap().clone();
    let info: u64 = b
        .iter()
        .map(|x| x["by_level"]["info"].as_u64().unwrap())
        .sum();
    assert_eq!(info, 8);

    let r = s.get("/api/v1/metrics/top-errors?hours=24&limit=5", &t.key);
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.json()["errors"].as_array().unwrap().clone();
    assert_eq!(e.len(), 1, "numbers are masked, so one group: {e:?}");
    assert_eq!(e[0]["count"], 4);
    assert_eq!(e[0]["error_type"], "NotFound");
    let sample = e[0]["sample_log_id"].as_str().unwrap();
    assert_eq!(s.get(&format!("/api/v1/logs/{sample}"), &t.key).status, 200);

    let r = s.get("/api/v1/logs/patterns?hours=24", &t.key);
    assert_eq!(r.status, 200, "{}", r.text());
    let p = r.json()["patterns"].as_array().unwrap().clone();
    assert_eq!(p[0]["count"], 12, "{p:?}");
    assert!(p[0]["pattern"].as_str().unwrap().contains("<*>"), "{p:?}");

    s.get("/api/v1/metrics/error-rate?bucket=7m", &t.key)
        .expect_error(400, "invalid_query");
    s.get("/api/v1/metrics/top-errors?limit=0", &t.key)
        .expect_error(400, "invalid_query");
    s.get("/api/v1/metrics/log-volume?hours=abc", &t.key)
        .expect_error(400, "invalid_query");
    // Session token + project_id works as for /logs.
    let r = s.get(
        &format!("/api/v1/metrics/top-errors?project_id={}", t.project),
        &t.token,
    );
    assert_eq!(r.status, 200);
}
