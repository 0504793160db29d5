//! Limits: per-minute and per-hour rate limits with their headers, daily quotas (per item,
//! then 429, kept across restarts), and queue-depth backpressure (503, nothing stored).

mod common;

use common::{log, Server};
use serde_json::json;

#[test]
fn minute_rate_limit_answers_429_with_headers() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    let p = format!("/api/v1/projects/{}", t.project);
    assert_eq!(
        s.patch(&p, &t.token, &json!({"rate_limit_per_minute": 3}))
            .status,
        200
    );
    let mut remaining = Vec::new();
    for i in 0..3 {
        let r = if i == 1 {
            s.get("/api/v1/logs", &t.key)
        } else {
            s.post("/api/v1/ingest/single", &t.key, &log(i, "x"))
        };
        assert!(r.status == 202 || r.status == 200, "{}", r.text());
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        remaining.push(r.header("x-ratelimit-remaining").unwrap().to_owned());
        assert!(
            r.header("x-ratelimit-reset")
                .unwrap()
                .parse::<u64>()
                .unwrap()
                <= 60
        );
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let r = s.post("/api/v1/ingest/single", &t.key, &log(9, "x"));
    r.expect_error(429, "rate_limited");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    s.get("/api/v1/logs", &t.key)
        .expect_error(429, "rate_limited");
    // Raising the limit applies to the next request.
    assert_eq!(
        s.patch(&p, &t.token, &json!({"rate_limit_per_minute": 100}))
            .status,
        200
    );
    assert_eq!(
        s.get("/api/v1/logs", &t.key).json()["logs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn hour_rate_limit_applies_too() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    let p = format!("/api/v1/projects/{}", t.project);
    assert_eq!(
        s.patch(&p, &t.token, &json!({"rate_limit_per_hour": 2}))
            .status,
        200
    );
    assert_eq!(
        s.get("/api/v1/logs", &t.key).header("x-ratelimit-limit"),
        Some("2")
    );
    assert_eq!(s.get("/api/v1/logs", &t.key).status, 200);
    let r = s.get("/api/v1/logs", &t.key);
    r.expect_error(429, "rate_limited");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() > 60);
}

#[test]
fn daily_quota_rejects_per_item_then_whole_requests_and_survives_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let s = Server::start_in(&dir, &[]);
    let t = s.tenant("a@b.co");
    let p = format!("/api/v1/projects/{}", t.project);
    assert_eq!(
        s.patch(&p, &t.token, &json!({"daily_quota": 5})).status,
        200
    );
    let batch = |n: u64| json!({"logs": (0..n).map(|i| log(i, "q")).collect::<Vec<_>>()});
    let r = s.post("/api/v1/ingest/batch", &t.key, &batch(3));
    assert_eq!(r.json()["accepted"], 3);
    let r = s.post("/api/v1/ingest/batch", &t.key, &batch(4));
    assert_eq!(r.status, 202, "{}", r.text());
    let j = r.json();
    assert_eq!(j["accepted"], 2);
    assert_eq!(j["rejected"], 2);
    assert_eq!(
        j["errors"][0],
        json!({"index": 2, "code": "quota_exceeded", "message": j["errors"][0]["message"]})
    );
    assert_eq!(j["errors"][1]["index"], 3);
    let r = s.post("/api/v1/ingest/batch", &t.key, &batch(2));
    r.expect_error(429, "quota_exceeded");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() <= 86_400);
    s.post("/api/v1/ingest/single", &t.key, &log(1, "x"))
        .expect_error(429, "quota_exceeded");
    let u = s.get("/api/v1/metrics/usage-stats", &t.key).json();
    assert_eq!(
        u["today"],
        json!({"logs": 5, "daily_quota": 5, "remaining": 0})
    );

    assert!(s.terminate().success());
    let s = Server::start_in(&dir, &[]);
    s.post("/api/v1/ingest/single", &t.key, &log(1, "x"))
        .expect_error(429, "quota_exceeded");
    assert_eq!(
        s.get("/api/v1/logs?limit=100", &t.key).json()["logs"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        s.patch(&p, &t.token, &json!({"daily_quota": 6})).status,
        200
    );
    assert_eq!(
        s.post("/api/v1/ingest/single", &t.key, &log(1, "x")).status,
        202
    );
}

#[test]
fn queue_depth_limit_gives_backpressure_and_stores_nothing() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    let p = format!("/api/v1/projects/{}", t.project);
    assert_eq!(
        s.patch(&p, &t.token, &json!({"max_queue_depth": 2})).status,
        200
    );
    assert_eq!(
        s.post("/api/v1/ingest/single", &t.key, &log(1, "a")).status,
        202
    );
    let three = json!({"logs": [log(2, "b"), log(3, "c"), log(4, "d")]});
    let r = s.post("/api/v1/ingest/batch", &t.key, &three);
    r.expect_error(503, "backpressure");
    assert!(r.header("retry-after").is_some());
    assert!(r.header("x-ratelimit-limit").is_some());
    assert_eq!(
        s.get("/api/v1/queue/depth", &t.key).json(),
        json!({"depth": 1, "limit": 2})
    );
    assert_eq!(
        s.get("/api/v1/logs", &t.key).json()["logs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The refused logs did not use quota.
    assert_eq!(
        s.get("/api/v1/metrics/usage-stats", &t.key).json()["today"]["logs"],
        1
    );
    assert_eq!(
        s.patch(&p, &t.token, &json!({"max_queue_depth": 100}))
            .status,
        200
    );
    assert_eq!(s.post("/api/v1/ingest/batch", &t.key, &three).status, 202);
}

/// Sends the head of a large batch and only the first bytes of its body, and reads what the
/// server answers (it must answer without waiting for the rest).
fn partial_upload(s: &Server, key: &str) -> common::Resp {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "POST /api/v1/ingest/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{{\"logs\": ["
    );
    c.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    assert!(
        !raw.is_empty(),
        "no answer within 20 s: the server waited for the body"
    );
    common::parse_response(&raw)
}

#[test]
fn under_pressure_ingest_is_refused_before_its_body_is_read() {
    let s = Server::start(&["--ingest-max-wait-ms", "0"]);
    let t = s.tenant("a@b.co");
    let p = format!("/api/v1/projects/{}", t.project);
    assert_eq!(
        s.patch(&p, &t.token, &json!({"max_queue_depth": 1})).status,
        200
    );
    assert_eq!(
        s.post("/api/v1/ingest/single", &t.key, &log(1, "a")).status,
        202
    );
    // The queue is full: the refusal comes from the head alone, 5 MB of body never sent.
    let r = partial_upload(&s, &t.key);
    r.expect_error(503, "backpressure");
    assert_eq!(r.header("retry-after"), Some("1"));
}

#[test]
fn under_pressure_ingest_is_held_until_capacity_returns() {
    // Sealing every second empties the project's queue; the held request then goes on.
    let s = Server::start(&["--seal-age-secs", "1", "--ingest-max-wait-ms", "15000"]);
    let t = s.tenant("a@b.co");
    let p = format!("/api/v1/projects/{}", t.project);
    assert_eq!(
        s.patch(&p, &t.token, &json!({"max_queue_depth": 1})).status,
        200
    );
    assert_eq!(
        s.post("/api/v1/ingest/single", &t.key, &log(1, "a")).status,
        202
    );
    let r = s.post("/api/v1/ingest/single", &t.key, &log(2, "b"));
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        s.get("/api/v1/logs", &t.key).json()["logs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
