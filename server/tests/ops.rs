//! Operations and protocol behaviour: health, metrics, unknown routes and methods, request
//! ids, the error body shape, and a clean SIGTERM shutdown.

mod common;

use std::process::Command;

use common::{log, Server};

#[test]
fn health_and_deep_health() {
    let s = Server::start(&[]);
    let r = s.get("/health", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let r = s.get("/health/deep", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["status"], "ok");
    for check in ["storage", "wal", "sealing", "index", "meta"] {
        assert_eq!(j["checks"][check]["status"], "ok", "{j}");
    }
}

#[test]
fn prometheus_metrics_cover_requests_ingest_and_storage() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    assert_eq!(
        s.post("/api/v1/ingest/single", &t.key, &log(1, "x")).status,
        202
    );
    s.get("/nope", "");
    let r = s.get("/metrics", "");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let m = r.text();
    for needle in [
        "ledger_http_requests_total{route=\"/api/v1/ingest/single\",method=\"POST\",status=\"202\"} 1",
        "ledger_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
        "ledger_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/api/v1/ingest/single\",method=\"POST\",status=\"202\"} 1",
        "ledger_ingested_logs_total 1",
        "ledger_ingested_bytes_total ",
        "ledger_queue_depth ",
        "ledger_index_lag ",
        "ledger_wal_fsync_seconds_bucket{le=\"+Inf\"}",
        "ledger_wal_fsync_seconds_count ",
        "ledger_segments ",
        "ledger_segment_bytes ",
    ] {
        assert!(m.contains(needle), "missing {needle:?} in\n{m}");
    }
    // Every family has its HELP and TYPE, and the counters are typed as counters (named with
    // `_total` in the classic format).
    assert!(
        m.contains("# TYPE ledger_http_requests_total counter"),
        "{m}"
    );
    assert!(
        m.contains("# TYPE ledger_wal_fsync_seconds histogram"),
        "{m}"
    );
    // Prometheus asks for OpenMetrics first; it gets the same exposition under that type.
    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let r = s.send("GET", "/metrics", "", &[("Accept", accept)], b"");
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert!(r.text().ends_with("# EOF\n"));
}

#[test]
fn unknown_routes_and_wrong_methods() {
    let s = Server::start(&[]);
    s.get("/api/v1/nothing", "").expect_error(404, "not_found");
    // `/` is Elasticsearch's node info for clients (401 without a key); a browser's `GET /`
    // without a credential is the web console's page.
    let browser = [("Accept", "text/html,application/xhtml+xml")];
    let page = s.req("GET", "/", &browser, b"");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<title>Ledger</title>"));
    assert_eq!(s.get("/", "").status, 401);
    let r = s.req("DELETE", "/api/v1/logs", &[], b"");
    r.expect_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET"));
    let r = s.req("GET", "/api/v1/ingest/batch", &[], b"");
    r.expect_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("POST"));
    let r = s.req("PUT", "/api/v1/projects/0000000000000001", &[], b"");
    assert_eq!(r.header("allow"), Some("GET, PATCH, DELETE"));
    // Every error body has the documented shape.
    let j = r.json();
    assert!(j["error"]["details"].is_array());
    // HEAD is answered as GET without the body wherever GET is served...
    let r = s.req("HEAD", "/health", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty(), "{}", r.text());
    let get = s.req("GET", "/health", &[], b"");
    assert_eq!(r.header("content-type"), get.header("content-type"));
    let r = s.req("HEAD", "/api/v1/logs", &[], b"");
    assert_eq!(r.status, 401);
    assert!(r.body.is_empty());
    // ...and nowhere else: a HEAD of a POST-only route is still a wrong method.
    let r = s.req("HEAD", "/api/v1/ingest/batch", &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
}

#[test]
fn request_ids_are_echoed_or_generated() {
    let s = Server::start(&[]);
    let r = s.req("GET", "/health", &[("X-Request-Id", "abc-123")], b"");
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
    let a = s.get("/health", "");
    let b = s.get("/nope", "");
    let (a, b) = (
        a.header("x-request-id").unwrap(),
        b.header("x-request-id").unwrap(),
    );
    assert!(!a.is_empty() && a != b);
}

#[test]
fn sigterm_shuts_down_cleanly_and_keeps_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let s = Server::start_in(&dir, &[]);
    let t = s.tenant("a@b.co");
    let id = s
        .post("/api/v1/ingest/single", &t.key, &log(1, "kept"))
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = s.terminate();
    assert!(status.success(), "{status:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("server.secret")), 0o600);
    assert_eq!(mode(&dir.join("meta.redb")), 0o600);
    let s = Server::start_in(&dir, &[]);
    let r = s.get(&format!("/api/v1/logs/{id}"), &t.key);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["message"], "kept");
    // Sessions survive a restart too (the secret is kept), and so does the key's last use,
    // written at shutdown.
    assert_eq!(s.get("/api/v1/auth/me", &t.token).status, 200);
    let keys = s
        .get(&format!("/api/v1/projects/{}/keys", t.project), &t.token)
        .json();
    assert!(keys["keys"][0]["last_used_at"].is_string(), "{keys}");
}

/// A time `days` days from now, as RFC 3339.
fn days_from_now(days: f64) -> String {
    let us = ledger_engine::now_micros() + (days * 86_400_000_000.0) as i64;
    ledger_engine::timefmt::format_micros(us)
}

#[test]
fn logs_outside_the_retention_window_are_refused_naming_the_bound() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    for (when, says) in [
        (days_from_now(-40.0), "retention of 30 days"),
        (days_from_now(0.5), "ahead of the server's clock"),
    ] {
        let mut l = log(1, "out of range");
        l["timestamp"] = when.clone().into();
        let r = s.post("/api/v1/ingest/single", &t.key, &l);
        assert_eq!(r.status, 400, "{when}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "invalid_field");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(msg.starts_with("timestamp:") && msg.contains(says), "{msg}");
        // In a batch, only that item is refused.
        let mut ok = log(2, "in range");
        ok["timestamp"] = days_from_now(-29.0).into();
        let b = s.post(
            "/api/v1/ingest/batch",
            &t.key,
            &serde_json::json!({ "logs": [l, ok] }),
        );
        assert_eq!(b.status, 202, "{}", b.text());
        assert_eq!(b.json()["rejected"], 1);
        assert_eq!(b.json()["errors"][0]["index"], 0);
    }
}

#[test]
fn retention_hides_expired_logs_at_once_and_drops_them_from_disk() {
    let s = Server::start(&["--seal-age-secs", "1", "--retention-interval-secs", "1"]);
    let t = s.tenant("a@b.co");
    let mut old = log(1, "two days old");
    old["timestamp"] = days_from_now(-2.0).into();
    let r = s.post("/api/v1/ingest/single", &t.key, &old);
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(s.get(&format!("/api/v1/logs/{id}"), &t.key).status, 200);
    let p = format!("/api/v1/projects/{}", t.project);
    assert_eq!(
        s.patch(&p, &t.token, &serde_json::json!({"retention_days": 1}))
            .status,
        200
    );
    // No read path returns it from now on, before retention has removed any file.
    let listed = s.get("/api/v1/logs", &t.key).json();
    assert_eq!(listed["logs"].as_array().unwrap().len(), 0, "{listed}");
    assert_eq!(s.get(&format!("/api/v1/logs/{id}"), &t.key).status, 404);
    let found = s.get("/api/v1/logs/search?q=days", &t.key).json();
    assert_eq!(found["logs"].as_array().unwrap().len(), 0, "{found}");
    // And retention removes it from disk: the sealed segment goes.
    let mut gone = false;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let m = s.get("/metrics", "").text();
        if m.lines().any(|l| l == "ledger_segments 0") && !m.contains("ledger_queue_depth 1") {
            gone = true;
            break;
        }
    }
    assert!(gone, "an expired log's segment outlived its retention");
}

#[test]
fn help_lists_flags_and_env() {
    let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--data-dir",
        "--listen",
        "--fsync",
        "--pbkdf2-iterations",
        "LEDGER_DATA_DIR",
        "serve",
    ] {
        assert!(text.contains(flag), "{flag} missing from\n{text}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["serve", "--pbkdf2-iterations", "9999"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// Both expositions of `/metrics` read back with Prometheus's own client library parsers
/// (`pip install prometheus-client`): the classic text parser for the default answer and the
/// OpenMetrics parser (strict: types, `_total`, `# EOF`) for the answer Prometheus asks for.
#[test]
fn metrics_parse_with_prometheus_own_parsers() {
    if !common::python_module("prometheus_client.openmetrics.parser", "prometheus-client") {
        return;
    }
    let s = Server::start(&[]);
    let t = s.tenant("prom@example.com");
    assert_eq!(
        s.post("/api/v1/ingest/single", &t.key, &log(1, "x")).status,
        202
    );
    let text = s.get("/metrics", "").text();
    let accept = "application/openmetrics-text;version=1.0.0";
    let open = s
        .send("GET", "/metrics", "", &[("Accept", accept)], b"")
        .text();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("text"), &text).unwrap();
    std::fs::write(dir.path().join("open"), &open).unwrap();
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families as classic
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
d = sys.argv[1]
for parse, name in ((classic, "text"), (openmetrics, "open")):
    fams = {f.name: f for f in parse(open(f"{d}/{name}").read())}
    assert fams["ledger_http_requests"].type == "counter", (name, fams["ledger_http_requests"])
    assert fams["ledger_http_request_duration_seconds"].type == "histogram", name
    assert fams["ledger_wal_fsync_seconds"].type == "histogram", name
    assert fams["ledger_queue_depth"].type == "gauge", name
    ingested = [s.value for s in fams["ledger_ingested_logs"].samples if s.name == "ledger_ingested_logs_total"]
    assert ingested == [1.0], (name, ingested)
    posted = [s for s in fams["ledger_http_requests"].samples
              if s.labels.get("route") == "/api/v1/ingest/single" and s.labels.get("status") == "202"]
    assert len(posted) == 1 and posted[0].value == 1.0, (name, posted)
print("ok")
"#;
    let out = Command::new("python3")
        .args(["-c", script, dir.path().to_str().unwrap()])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "prometheus parsers refused /metrics:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
