//! Queries: every filter of GET /logs, order, limit, offset, cursor, lookups by id, session
//! access with project_id, and tenant isolation on every read path.

mod common;

use common::{day, log, Server, Tenant};
use serde_json::{json, Value};

fn ingest(s: &Server, t: &Tenant, logs: Vec<Value>) -> Vec<String> {
    let r = s.post("/api/v1/ingest/batch", &t.key, &json!({ "logs": logs }));
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["rejected"], 0, "{}", r.text());
    r.json()["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn messages(r: &common::Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn sample() -> Vec<Value> {
    let levels = ["debug", "info", "warning", "error", "critical"];
    (0..20u64)
        .map(|i| {
            let mut l = log(i * 1000, &format!("m{i:02}"));
            l["level"] = json!(levels[i as usize % 5]);
            l["log_type"] = json!(if i % 2 == 0 { "logger" } else { "console" });
            l["importance"] = json!(if i < 10 { "low" } else { "high" });
            l["service"] = json!(if i % 3 == 0 { "billing" } else { "web" });
            l["environment"] = json!(if i % 4 == 0 { "prod" } else { "dev" });
            l["release"] = json!(format!("1.{}", i % 2));
            l["attributes"] = json!({"http": {"status": if i % 5 == 3 { 500 } else { 200 }}, "user": format!("u{}", i % 3), "ok": i % 2 == 0});
            if i % 5 == 3 {
                l["error_type"] = json!("KeyError");
                l["error_message"] = json!(format!("user {i} not found"));
            }
            l
        })
        .collect()
}

#[test]
fn filters_select_exactly_the_matching_logs() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    ingest(&s, &t, sample());
    let q = |query: &str| messages(&s.get(&format!("/api/v1/logs?{query}"), &t.key));
    assert_eq!(q("").len(), 20);
    assert_eq!(q("")[0], "m19", "newest first by default");
    assert_eq!(q("order=asc")[0], "m00");
    assert_eq!(q("level=error"), ["m18", "m13", "m08", "m03"]);
    assert_eq!(
        q("level=error,critical&order=asc"),
        ["m03", "m04", "m08", "m09", "m13", "m14", "m18", "m19"]
    );
    assert_eq!(
        q("log_type=console&importance=low"),
        ["m09", "m07", "m05", "m03", "m01"]
    );
    assert_eq!(q("service=billing&environment=prod"), ["m12", "m00"]);
    assert_eq!(q("release=1.1&level=info"), ["m11", "m01"]);
    assert_eq!(q("attr.http.status=500"), ["m18", "m13", "m08", "m03"]);
    assert_eq!(q("attr.user=u1&attr.ok=true"), ["m16", "m10", "m04"]);
    assert_eq!(
        q(&format!(
            "start_time={d}T12:00:05Z&end_time={d}T12:00:08Z",
            d = day()
        )),
        ["m07", "m06", "m05"],
        "half-open range"
    );
    let fp = s.get("/api/v1/logs?level=error&limit=1", &t.key).json()["logs"][0]
        ["error_fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        q(&format!("error_fingerprint={fp}")),
        ["m18", "m13", "m08", "m03"],
        "same error type and masked message"
    );
    assert!(q("service=nope").is_empty());
}

#[test]
fn limit_offset_and_cursor_page_through_everything() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    ingest(&s, &t, sample());
    let r = s.get("/api/v1/logs?limit=3&offset=2", &t.key);
    assert_eq!(messages(&r), ["m17", "m16", "m15"]);
    for order in ["desc", "asc"] {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let r = s.get(
                &format!("/api/v1/logs?limit=6&order={order}&cursor={cursor}"),
                &t.key,
            );
            all.extend(messages(&r));
            // New logs arriving between pages do not disturb a cursor.
            ingest(&s, &t, vec![log(999_999, "late")]);
            match r.json()["next_cursor"].as_str() {
                Some(c) => cursor = c.to_owned(),
                None => break,
            }
        }
        let mut want: Vec<String> = (0..20).map(|i| format!("m{i:02}")).collect();
        if order == "desc" {
            want.reverse();
            assert_eq!(all[..20], want[..]);
        } else {
            assert_eq!(all[..20], want[..]);
        }
    }
    assert!(s.get("/api/v1/logs?limit=1000", &t.key).json()["next_cursor"].is_null());
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "offset=10001",
        "order=sideways",
        "cursor=zzz",
        "level=loud",
        "start_time=yesterday",
        "start_time=2026-01-02T00:00:00Z&end_time=2026-01-01T00:00:00Z",
        "log_type=syslog",
        "importance=urgent",
        "bogus=1",
    ] {
        s.get(&format!("/api/v1/logs?{bad}"), &t.key)
            .expect_error(400, "invalid_query");
    }
    let desc_cursor = s.get("/api/v1/logs?limit=1", &t.key).json()["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    s.get(
        &format!("/api/v1/logs?order=asc&cursor={desc_cursor}"),
        &t.key,
    )
    .expect_error(400, "invalid_query");
    assert_eq!(s.get("/api/v1/logs?offset=10000", &t.key).status, 200);
    // An empty half-open range is a question with no answer, not a mistake.
    let empty = s.get(
        "/api/v1/logs?start_time=2026-01-01T00:00:00Z&end_time=2026-01-01T00:00:00Z",
        &t.key,
    );
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["logs"].as_array().map(Vec::len), Some(0));
}

#[test]
fn session_tokens_query_owned_projects_by_project_id() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    let ids = ingest(&s, &t, sample());
    let r = s.get(
        &format!("/api/v1/logs?project_id={}&limit=2", t.project),
        &t.token,
    );
    assert_eq!(messages(&r), ["m19", "m18"]);
    let r = s.get(
        &format!("/api/v1/logs/{}?project_id={}", ids[0], t.project),
        &t.token,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["message"], "m00");
    s.get("/api/v1/logs", &t.token)
        .expect_error(400, "missing_field");
    // A key answers only for its own project.
    s.get("/api/v1/logs?project_id=00000000000000ff", &t.key)
        .expect_error(404, "not_found");
    // An ingest-only key cannot query.
    let r = s.post(
        &format!("/api/v1/projects/{}/keys", t.project),
        &t.token,
        &json!({"name": "w", "scopes": ["ingest"]}),
    );
    let writer = r.json()["key"].as_str().unwrap().to_owned();
    s.get("/api/v1/logs", &writer)
        .expect_error(403, "forbidden");
    s.get(&format!("/api/v1/logs/{}", ids[0]), &writer)
        .expect_error(403, "forbidden");
}

#[test]
fn unknown_log_ids_are_not_found() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    ingest(&s, &t, vec![log(1, "x")]);
    s.get("/api/v1/logs/nope", &t.key)
        .expect_error(404, "not_found");
    s.get(&format!("/api/v1/logs/{}", "0".repeat(32)), &t.key)
        .expect_error(404, "not_found");
}

#[test]
fn tenants_never_see_each_other() {
    let s = Server::start(&[]);
    let a = s.tenant("a@b.co");
    let b = s.tenant("b@b.co");
    let a_ids = ingest(&s, &a, sample());
    ingest(&s, &b, vec![log(5, "b's only log")]);

    assert_eq!(messages(&s.get("/api/v1/logs", &b.key)), ["b's only log"]);
    assert_eq!(
        messages(&s.get("/api/v1/logs?limit=1000&order=asc", &a.key)).len(),
        20
    );
    for id in &a_ids {
        s.get(&format!("/api/v1/logs/{id}"), &b.key)
            .expect_error(404, "not_found");
        s.get(
            &format!("/api/v1/logs/{id}?project_id={}", b.project),
            &b.token,
        )
        .expect_error(404, "not_found");
    }
    // B's session naming A's project: not found, on every project-scoped read path.
    for path in [
        "/api/v1/logs",
        "/api/v1/logs/search?q=x",
        "/api/v1/queue/depth",
        "/api/v1/metrics/usage-stats",
        "/api/v1/metrics/error-rate",
        "/api/v1/metrics/log-volume",
        "/api/v1/metrics/top-errors",
        "/api/v1/logs/patterns",
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        s.get(&format!("{path}{sep}project_id={}", a.project), &b.token)
            .expect_error(404, "not_found");
        s.get(&format!("{path}{sep}project_id={}", a.project), &b.key)
            .expect_error(404, "not_found");
        s.get(path, "").expect_error(401, "unauthenticated");
    }
    s.get(
        &format!("/api/v1/logs/{}?project_id={}", a_ids[0], a.project),
        &b.token,
    )
    .expect_error(404, "not_found");
    // Usage counts only the tenant's own logs.
    let u = s.get("/api/v1/metrics/usage-stats", &b.key).json();
    assert_eq!(u["today"]["logs"], 1);
}

#[test]
fn queue_depth_usage_stats_and_placeholders() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    let logs = sample();
    let bytes: usize = logs.iter().map(|l| l.to_string().len()).sum();
    ingest(&s, &t, logs);
    let r = s.get("/api/v1/queue/depth", &t.key);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["limit"], 100_000);
    assert!(r.json()["depth"].as_u64().unwrap() <= 20);
    let r = s.get(
        &format!("/api/v1/queue/depth?project_id={}", t.project),
        &t.token,
    );
    assert_eq!(r.status, 200);

    let r = s.get("/api/v1/metrics/usage-stats?days=3", &t.key);
    assert_eq!(r.status, 200, "{}", r.text());
    let u = r.json();
    let days = u["days"].as_array().unwrap();
    assert_eq!(days.len(), 3);
    assert_eq!(days[2]["logs"], 20);
    assert_eq!(days[2]["bytes"], bytes as u64);
    assert_eq!(days[0]["logs"], 0);
    assert!(days[2]["date"].as_str().unwrap().len() == 10);
    assert_eq!(
        u["today"],
        json!({"logs": 20, "daily_quota": 1_000_000, "remaining": 999_980})
    );
    s.get("/api/v1/metrics/usage-stats?days=0", &t.key)
        .expect_error(400, "invalid_query");
}
