//! Ingest: single and batch, JSON and NDJSON, gzip and zstd, every validation rule, partial
//! success, and the body limits.

mod common;

use common::{day, gzip, log, zstd, Server};
use serde_json::{json, Value};

fn with(extra: Value) -> Value {
    let mut l = log(1, "m");
    for (k, v) in extra.as_object().unwrap() {
        l[k] = v.clone();
    }
    l
}

#[test]
fn single_ingest_is_readable_at_once() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    let body = json!({
        "timestamp": format!("{}T14:26:36.123+02:00", day()), "level": "WARN", "log_type": "exception",
        "importance": "high", "message": "user 42 not found", "error_type": "KeyError",
        "error_message": "user 42", "stack_trace": "Traceback...", "service": "billing",
        "source": "api", "environment": "prod", "release": "1.2.3", "platform": "linux",
        "language": "python", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
        "attributes": {"user": {"id": 42, "tags": ["a", "b"]}, "ok": true}
    });
    let r = s.post("/api/v1/ingest/single", &t.key, &body);
    assert_eq!(r.status, 202, "{}", r.text());
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(r.header(h).is_some(), "{h} missing");
    }
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert!(r.json()["ingested_at"].as_str().unwrap().ends_with('Z'));
    let got = s.get(&format!("/api/v1/logs/{id}"), &t.key);
    assert_eq!(got.status, 200, "{}", got.text());
    let g = got.json();
    assert_eq!(g["id"], id.as_str());
    assert_eq!(g["project_id"], t.project.as_str());
    assert_eq!(g["level"], "warning");
    assert_eq!(
        g["timestamp"].as_str().unwrap()[..23],
        *format!("{}T12:26:36.123", day())
    );
    assert_eq!(g["attributes"], body["attributes"]);
    assert_eq!(g["service"], "billing");
    assert!(g["error_fingerprint"].is_string());
}

#[test]
fn each_validation_rule_is_enforced() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    let deep = (0..17).fold(json!(1), |v, _| json!({ "a": v }));
    let ok_deep = (0..15).fold(json!(1), |v, _| json!({ "a": v }));
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"level": "info", "log_type": "logger", "importance": "low"}),
            "missing_field",
        ),
        (
            json!({"timestamp": format!("{}T12:00:00Z", day()), "log_type": "logger", "importance": "low"}),
            "missing_field",
        ),
        (
            json!({"timestamp": format!("{}T12:00:00Z", day()), "level": "info", "importance": "low"}),
            "missing_field",
        ),
        (
            json!({"timestamp": format!("{}T12:00:00Z", day()), "level": "info", "log_type": "logger"}),
            "missing_field",
        ),
        (with(json!({"timestamp": "22/11/2026"})), "invalid_field"),
        (with(json!({"timestamp": 1700000000})), "invalid_field"),
        (with(json!({"level": "verbose"})), "invalid_field"),
        (with(json!({"log_type": "syslog"})), "invalid_field"),
        (with(json!({"importance": "urgent"})), "invalid_field"),
        (
            with(json!({"message": "x".repeat(10_001)})),
            "invalid_field",
        ),
        (
            with(json!({"stack_trace": "x".repeat(100_001)})),
            "invalid_field",
        ),
        (with(json!({"service": "s".repeat(257)})), "invalid_field"),
        (
            with(json!({"environment": "e".repeat(257)})),
            "invalid_field",
        ),
        (with(json!({"release": ["1"]})), "invalid_field"),
        (with(json!({"trace_id": "not-hex"})), "invalid_field"),
        (with(json!({"span_id": "zz"})), "invalid_field"),
        (with(json!({"attributes": "flat"})), "invalid_field"),
        (with(json!({"attributes": deep})), "invalid_field"),
        (
            with(json!({"attributes": {"big": "x".repeat(100 * 1024)}})),
            "invalid_field",
        ),
        (with(json!({"levle": "info"})), "invalid_field"),
        (with(json!({"id": "mine"})), "invalid_field"),
        (json!([1, 2]), "invalid_field"),
    ];
    for (body, code) in &cases {
        let r = s.post("/api/v1/ingest/single", &t.key, body);
        let excerpt: String = body.to_string().chars().take(120).collect();
        assert_eq!(r.status, 400, "{excerpt}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], *code, "{excerpt}: {}", r.text());
    }
    let fine = [
        with(json!({"level": "FATAL", "log_type": "Custom", "importance": "LOW"})),
        with(json!({"message": "é".repeat(10_000), "service": "s".repeat(256)})),
        with(json!({"attributes": ok_deep, "trace_id": "ABCdef0123"})),
        with(json!({"timestamp": format!("{}t12:00:00.123456789z", day())})),
    ];
    for body in &fine {
        let r = s.post("/api/v1/ingest/single", &t.key, body);
        assert_eq!(r.status, 202, "{}", r.text());
    }
    s.req(
        "POST",
        "/api/v1/ingest/single",
        &[
            ("Authorization", &format!("Bearer {}", t.key)),
            ("Content-Type", "application/json"),
        ],
        b"{\"timestamp\":",
    )
    .expect_error(400, "invalid_json");
    // Stored lower-case after the aliases.
    let newest = s.get("/api/v1/logs?level=critical", &t.key).json();
    assert_eq!(newest["logs"][0]["level"], "critical");
    assert_eq!(newest["logs"][0]["log_type"], "custom");
}

#[test]
fn batches_accept_partially_and_report_each_error() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    let body = json!({"logs": [log(1, "a"), with(json!({"level": "loud"})), log(2, "b"), {"level": "info"}]});
    let r = s.post("/api/v1/ingest/batch", &t.key, &body);
    assert_eq!(r.status, 202, "{}", r.text());
    let j = r.json();
    assert_eq!(j["accepted"], 2);
    assert_eq!(j["rejected"], 2);
    assert_eq!(j["ids"].as_array().unwrap().len(), 2);
    assert_eq!(j["errors"][0]["index"], 1);
    assert_eq!(j["errors"][0]["code"], "invalid_field");
    assert!(j["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("level"));
    assert_eq!(j["errors"][1]["index"], 3);
    assert_eq!(j["errors"][1]["code"], "missing_field");
    for id in j["ids"].as_array().unwrap() {
        assert_eq!(
            s.get(&format!("/api/v1/logs/{}", id.as_str().unwrap()), &t.key)
                .status,
            200
        );
    }

    let r = s.post(
        "/api/v1/ingest/batch",
        &t.key,
        &json!({"logs": [{"level": "x"}, 5]}),
    );
    r.expect_error(400, "invalid_field");
    let j = r.json();
    assert_eq!(j["errors"].as_array().unwrap().len(), 2);
    assert_eq!(j["errors"][1]["index"], 1);

    let many: Vec<Value> = (0..1001).map(|i| log(i, "m")).collect();
    s.post("/api/v1/ingest/batch", &t.key, &json!({ "logs": many }))
        .expect_error(400, "batch_too_large");
    let max: Vec<Value> = (0..1000).map(|i| log(i, "m")).collect();
    assert_eq!(
        s.post("/api/v1/ingest/batch", &t.key, &json!({ "logs": max }))
            .json()["accepted"],
        1000
    );
    s.post("/api/v1/ingest/batch", &t.key, &json!({"logs": []}))
        .expect_error(400, "invalid_field");
    s.post("/api/v1/ingest/batch", &t.key, &json!({}))
        .expect_error(400, "missing_field");
    s.post(
        "/api/v1/ingest/batch",
        &t.key,
        &json!({"logs": [log(1, "a")], "extra": 1}),
    )
    .expect_error(400, "invalid_field");
    s.post("/api/v1/ingest/batch", &t.key, &json!([log(1, "a")]))
        .expect_error(400, "invalid_field");
}

#[test]
fn ndjson_gzip_and_zstd_bodies() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    let auth = format!("Bearer {}", t.key);
    let lines: Vec<String> = (0..5)
        .map(|i| log(i, &format!("line {i}")).to_string())
        .collect();
    let mut nd = lines.join("\n");
    nd.push_str("\n{broken\n\n");
    let ct_nd = ("Content-Type", "application/x-ndjson");
    let r = s.req(
        "POST",
        "/api/v1/ingest/batch",
        &[("Authorization", &auth), ct_nd],
        nd.as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["accepted"], 5);
    assert_eq!(r.json()["errors"][0]["index"], 5);
    assert_eq!(r.json()["errors"][0]["code"], "invalid_json");

    let batch = json!({"logs": [log(1, "gz")]}).to_string();
    let ct = ("Content-Type", "application/json");
    let r = s.req(
        "POST",
        "/api/v1/ingest/batch",
        &[("Authorization", &auth), ct, ("Content-Encoding", "gzip")],
        &gzip(batch.as_bytes()),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let r = s.req(
        "POST",
        "/api/v1/ingest/batch",
        &[
            ("Authorization", &auth),
            ct_nd,
            ("Content-Encoding", "zstd"),
        ],
        &zstd(lines.join("\n").as_bytes()),
    );
    assert_eq!(r.json()["accepted"], 5, "{}", r.text());
    let single = log(9, "single zstd").to_string();
    let r = s.req(
        "POST",
        "/api/v1/ingest/single",
        &[("Authorization", &auth), ct, ("Content-Encoding", "zstd")],
        &zstd(single.as_bytes()),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let r = s.req(
        "POST",
        "/api/v1/ingest/single",
        &[("Authorization", &auth), ct, ("Content-Encoding", "gzip")],
        &gzip(single.as_bytes()),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        s.get("/api/v1/logs?limit=1000", &t.key).json()["logs"]
            .as_array()
            .unwrap()
            .len(),
        13
    );

    s.req(
        "POST",
        "/api/v1/ingest/batch",
        &[("Authorization", &auth), ct, ("Content-Encoding", "br")],
        batch.as_bytes(),
    )
    .expect_error(415, "unsupported_media_type");
    s.req(
        "POST",
        "/api/v1/ingest/batch",
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        batch.as_bytes(),
    )
    .expect_error(415, "unsupported_media_type");
    s.req(
        "POST",
        "/api/v1/ingest/single",
        &[("Authorization", &auth), ct_nd],
        single.as_bytes(),
    )
    .expect_error(415, "unsupported_media_type");
    s.req(
        "POST",
        "/api/v1/ingest/batch",
        &[("Authorization", &auth), ct, ("Content-Encoding", "gzip")],
        b"not gzip",
    )
    .expect_error(400, "invalid_json");
}

#[test]
fn body_limits_apply_before_and_after_decompression() {
    let s = Server::start(&["--max-body-bytes", "65536"]);
    let t = s.tenant("a@b.co");
    let auth = format!("Bearer {}", t.key);
    let ct = ("Content-Type", "application/json");
    let big = format!("{{\"logs\":[{}]}}{}", log(1, "x"), " ".repeat(70_000));
    s.req(
        "POST",
        "/api/v1/ingest/batch",
        &[("Authorization", &auth), ct],
        big.as_bytes(),
    )
    .expect_error(413, "payload_too_large");
    let bomb = gzip(big.as_bytes());
    assert!(bomb.len() < 65536);
    s.req(
        "POST",
        "/api/v1/ingest/batch",
        &[("Authorization", &auth), ct, ("Content-Encoding", "gzip")],
        &bomb,
    )
    .expect_error(413, "payload_too_large");
    s.req(
        "POST",
        "/api/v1/ingest/batch",
        &[("Authorization", &auth), ct, ("Content-Encoding", "zstd")],
        &zstd(big.as_bytes()),
    )
    .expect_error(413, "payload_too_large");
    // A real bomb: 32 MiB of spaces in about 32 KiB of gzip.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..32 {
        std::io::Write::write_all(&mut e, &zeros).unwrap();
    }
    let bomb = e.finish().unwrap();
    assert!(bomb.len() < 65536, "{}", bomb.len());
    s.req(
        "POST",
        "/api/v1/ingest/batch",
        &[("Authorization", &auth), ct, ("Content-Encoding", "gzip")],
        &bomb,
    )
    .expect_error(413, "payload_too_large");
    // Nothing was stored by any of them.
    assert_eq!(
        s.get("/api/v1/logs", &t.key).json()["logs"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(s.get("/health", "").status, 200);
}

#[test]
fn ingest_needs_an_ingest_key() {
    let s = Server::start(&[]);
    let t = s.tenant("a@b.co");
    s.post("/api/v1/ingest/single", "", &log(1, "x"))
        .expect_error(401, "unauthenticated");
    s.post("/api/v1/ingest/single", &t.token, &log(1, "x"))
        .expect_error(403, "forbidden");
    let r = s.req(
        "POST",
        "/api/v1/ingest/single",
        &[
            ("X-API-Key", t.key.as_str()),
            ("Content-Type", "application/json"),
        ],
        log(1, "x").to_string().as_bytes(),
    );
    assert_eq!(r.status, 202);
}
