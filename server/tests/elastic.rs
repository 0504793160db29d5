//! The Elasticsearch front door against the real binary: `_bulk` documents read back
//! through the query routes with their mapped fields, every shipper credential form, the
//! error shapes, and the official Python client's `helpers.bulk`.

mod common;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Resp, Server, Tenant};
use serde_json::{json, Value};

fn ndjson(lines: &[Value]) -> Vec<u8> {
    let mut out = String::new();
    for l in lines {
        out.push_str(&l.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

fn bulk(s: &Server, path: &str, auth: (&str, &str), body: &[u8]) -> Resp {
    s.req(
        "POST",
        path,
        &[auth, ("Content-Type", "application/x-ndjson")],
        body,
    )
}

fn bearer(t: &Tenant) -> String {
    format!("Bearer {}", t.key)
}

/// Asserts Elasticsearch's error shape, status and type, and the product header.
fn expect_es_error(r: &Resp, status: u16, kind: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("x-elastic-product"), Some("Elasticsearch"));
    let j = r.json();
    assert_eq!(j["status"], status, "{j}");
    assert_eq!(j["error"]["type"], kind, "{j}");
    assert!(j["error"]["reason"].is_string(), "{j}");
    assert_eq!(j["error"]["root_cause"][0]["type"], kind, "{j}");
}

/// Polls a search until it finds `want` logs (the index refreshes every second).
fn search(s: &Server, key: &str, q: &str, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.get(&format!("/api/v1/logs/search?q={q}"), key);
        assert_eq!(r.status, 200, "{}", r.text());
        let logs = r.json()["logs"].as_array().cloned().unwrap_or_default();
        if logs.len() >= want || Instant::now() > deadline {
            return logs;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bulk_documents_read_back_with_their_mapped_fields() {
    let s = Server::start(&[]);
    let t = s.tenant("es-map@example.com");
    let day = common::day();
    let body = ndjson(&[
        json!({"create": {"_index": "logs-app"}}),
        json!({
            "@timestamp": format!("{day}T10:00:00.250Z"),
            "message": "payment failed for order 42",
            "log": {"level": "error", "logger": "billing"},
            "error": {"type": "CardDeclined", "message": "card declined", "stack_trace": "at pay()"},
            "service": {"name": "billing", "environment": "prod", "version": "2.1.0"},
            "trace": {"id": "4bf92f3577b34da6a3ce929d0e0e4736"},
            "span": {"id": "00f067aa0ba902b7"},
            "host": {"name": "web-1"},
        }),
        json!({"index": {}}),
        json!({"@timestamp": format!("{day}T10:00:01Z"), "log.level": "warn", "msg": "slow query", "service": "db", "environment": "staging", "http": {"status": 503}, "url.path": "/x"}),
        json!({"delete": {"_index": "logs-app", "_id": "x"}}),
        json!({"update": {"_index": "logs-app", "_id": "x"}}),
        json!({"doc": {"message": "edited"}}),
    ]);
    let r = bulk(&s, "/fallback/_bulk", ("Authorization", &bearer(&t)), &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-elastic-product"), Some("Elasticsearch"));
    let j = r.json();
    assert_eq!(j["errors"], true, "{j}");
    assert!(j["took"].is_u64(), "{j}");
    let items = j["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{j}");
    assert_eq!(items[0]["create"]["status"], 201, "{j}");
    assert_eq!(items[0]["create"]["result"], "created");
    assert_eq!(items[0]["create"]["_index"], "logs-app");
    assert_eq!(items[1]["index"]["status"], 201, "{j}");
    assert_eq!(items[1]["index"]["_index"], "fallback");
    assert_eq!(items[2]["delete"]["status"], 400, "{j}");
    assert_eq!(items[3]["update"]["status"], 400, "{j}");
    for (i, op) in [(2, "delete"), (3, "update")] {
        assert_eq!(
            items[i][op]["error"]["type"], "mapper_parsing_exception",
            "{j}"
        );
    }

    let id = items[0]["create"]["_id"].as_str().unwrap();
    let r = s.get(&format!("/api/v1/logs/{id}"), &t.key);
    assert_eq!(r.status, 200, "{}", r.text());
    let log = r.json();
    for (field, want) in [
        ("timestamp", json!(format!("{day}T10:00:00.250000Z"))),
        ("level", json!("error")),
        ("importance", json!("high")),
        ("log_type", json!("exception")),
        ("message", json!("payment failed for order 42")),
        ("error_type", json!("CardDeclined")),
        ("error_message", json!("card declined")),
        ("stack_trace", json!("at pay()")),
        ("service", json!("billing")),
        ("environment", json!("prod")),
        ("release", json!("2.1.0")),
        ("trace_id", json!("4bf92f3577b34da6a3ce929d0e0e4736")),
        ("span_id", json!("00f067aa0ba902b7")),
        ("source", json!("logs-app")),
        (
            "attributes",
            json!({"log": {"logger": "billing"}, "host": {"name": "web-1"}}),
        ),
    ] {
        assert_eq!(log[field], want, "{field} of {log}");
    }
    assert!(log["error_fingerprint"].is_string(), "{log}");

    let r = s.get("/api/v1/logs?service=db", &t.key);
    let logs = r.json()["logs"].as_array().cloned().unwrap();
    assert_eq!(logs.len(), 1, "{}", r.text());
    let warn = &logs[0];
    assert_eq!(warn["id"], items[1]["index"]["_id"]);
    assert_eq!(warn["level"], "warning");
    assert_eq!(warn["importance"], "standard");
    assert_eq!(warn["log_type"], "logger");
    assert_eq!(warn["message"], "slow query");
    assert_eq!(warn["environment"], "staging");
    // Nested as sent: a flat dotted name stays flat.
    assert_eq!(
        warn["attributes"],
        json!({"http": {"status": 503}, "url.path": "/x"})
    );

    let found = search(&s, &t.key, "error_type:CardDeclined%20declined", 1);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], id);
    let found = search(&s, &t.key, "attributes.http.status:503", 1);
    assert_eq!(found.len(), 1);
}

#[test]
fn put_and_versioned_content_types_and_gzip_are_taken() {
    let s = Server::start(&[]);
    let t = s.tenant("es-put@example.com");
    let body = ndjson(&[json!({"create": {}}), json!({"message": "via put"})]);
    let r = s.req(
        "PUT",
        "/idx%2Done/_bulk",
        &[
            ("Authorization", &bearer(&t)),
            (
                "Content-Type",
                "application/vnd.elasticsearch+x-ndjson; compatible-with=9",
            ),
            (
                "Accept",
                "application/vnd.elasticsearch+json; compatible-with=9",
            ),
        ],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.elasticsearch+json;compatible-with=9")
    );
    assert_eq!(r.json()["items"][0]["create"]["_index"], "idx-one");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&ndjson(&[
        json!({"index": {"_index": "z"}}),
        json!({"message": "zipped"}),
    ]))
    .unwrap();
    let r = s.req(
        "POST",
        "/_bulk",
        &[
            ("Authorization", &bearer(&t)),
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &gz.finish().unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["errors"], false, "{}", r.text());
    let logs = s.get("/api/v1/logs?order=asc", &t.key).json()["logs"].clone();
    let messages: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect();
    assert!(
        messages.contains(&"via put") && messages.contains(&"zipped"),
        "{logs}"
    );
}

#[test]
fn every_credential_form_is_taken_and_bad_ones_are_refused_in_elasticsearchs_shape() {
    let s = Server::start(&[]);
    let t = s.tenant("es-auth@example.com");
    let b64 = |x: String| base64::engine::general_purpose::STANDARD.encode(x);
    let body = ndjson(&[json!({"index": {"_index": "a"}}), json!({"message": "hi"})]);
    let forms = [
        ("Authorization", format!("Bearer {}", t.key)),
        ("X-API-Key", t.key.clone()),
        ("Authorization", format!("ApiKey {}", t.key)),
        (
            "Authorization",
            format!("ApiKey {}", b64(format!("key-id:{}", t.key))),
        ),
        (
            "Authorization",
            format!("Basic {}", b64(format!("elastic:{}", t.key))),
        ),
    ];
    for (name, value) in &forms {
        let r = bulk(&s, "/_bulk", (name, value), &body);
        assert_eq!(r.status, 200, "{name}: {value}: {}", r.text());
        assert_eq!(r.json()["errors"], false, "{}", r.text());
        let r = s.req("GET", "/", &[(name, value)], b"");
        assert_eq!(r.status, 200, "{name}: {}", r.text());
    }
    let wrong = format!("Bearer ledger_{}", "x".repeat(32));
    let r = bulk(&s, "/_bulk", ("Authorization", &wrong), &body);
    expect_es_error(&r, 401, "security_exception");
    assert!(r.header("www-authenticate").is_some());
    let r = s.req("GET", "/", &[("Authorization", &wrong)], b"");
    expect_es_error(&r, 401, "security_exception");

    let r = s.post(
        &format!("/api/v1/projects/{}/keys", t.project),
        &t.token,
        &json!({"name": "reader", "scopes": ["query"]}),
    );
    let reader = r.json()["key"].as_str().unwrap().to_owned();
    let r = bulk(
        &s,
        "/_bulk",
        ("Authorization", &format!("Bearer {reader}")),
        &body,
    );
    expect_es_error(&r, 403, "security_exception");
    assert_eq!(
        s.get("/api/v1/logs", &t.key).json()["logs"]
            .as_array()
            .unwrap()
            .len(),
        forms.len()
    );
}

#[test]
fn node_info_answers_clients_and_not_browsers() {
    let s = Server::start(&[]);
    let t = s.tenant("es-root@example.com");
    let r = s.get("/", &t.key);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-elastic-product"), Some("Elasticsearch"));
    let info = r.json();
    assert_eq!(info["version"]["number"], "8.17.0");
    assert_eq!(info["version"]["build_flavor"], "default");
    assert_eq!(info["tagline"], "You Know, for Search");
    for k in ["name", "cluster_name", "cluster_uuid"] {
        assert!(info[k].is_string(), "{info}");
    }
    let r = s.send("HEAD", "/", &t.key, &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("x-elastic-product"), Some("Elasticsearch"));
    // A client without a key learns it needs one; a browser gets the web console.
    let r = s.req("GET", "/", &[("Accept", "application/json")], b"");
    expect_es_error(&r, 401, "security_exception");
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let r = s.req("GET", "/", &[("Accept", browser)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r.text().contains("/ui/assets/app.js"), "the console's page");
    assert_eq!(r.header("x-elastic-product"), None);
    let r = s.send("GET", "/", &t.key, &[("Accept", browser)], b"");
    assert_eq!(
        r.status, 200,
        "a client that sends a key gets the node info"
    );
}

#[test]
fn license_and_wrong_methods_answer_as_elasticsearch_does() {
    let s = Server::start(&[]);
    let t = s.tenant("es-license@example.com");
    let r = s.get("/_license", &t.key);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-elastic-product"), Some("Elasticsearch"));
    let lic = &r.json()["license"];
    assert_eq!(lic["status"], "active");
    assert_eq!(lic["type"], "basic");
    assert_eq!(lic["issuer"], "elasticsearch");
    let r = s.send("HEAD", "/_license", &t.key, &[], b"");
    assert_eq!(r.status, 200);
    let r = s.req("GET", "/_license", &[], b"");
    expect_es_error(&r, 401, "security_exception");
    // A method the route does not take: Elasticsearch's own 405, whose `error` is a string.
    for (method, path, allow) in [
        ("DELETE", "/_bulk", "POST, PUT"),
        ("GET", "/logs-app/_bulk", "POST, PUT"),
        ("POST", "/_license", "GET, HEAD"),
    ] {
        let r = s.send(method, path, &t.key, &[], b"");
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("x-elastic-product"), Some("Elasticsearch"));
        assert_eq!(r.header("allow"), Some(allow));
        let body = r.json();
        assert_eq!(body["status"], 405);
        assert_eq!(
            body["error"],
            format!(
                "Incorrect HTTP method for uri [{path}] and method [{method}], allowed: [{allow}]"
            )
        );
    }
    // Ledger's own routes keep Ledger's error shape.
    let r = s.send("DELETE", "/api/v1/logs", &t.key, &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("x-elastic-product"), None);
    assert_eq!(r.json()["error"]["code"], "method_not_allowed");
}

#[test]
fn bad_bodies_are_refused_in_elasticsearchs_shape() {
    let s = Server::start(&["--max-body-bytes", "4096"]);
    let t = s.tenant("es-bad@example.com");
    let auth = bearer(&t);
    let r = bulk(
        &s,
        "/_bulk",
        ("Authorization", &auth),
        b"{\"index\":{}\n{}\n",
    );
    expect_es_error(&r, 400, "illegal_argument_exception");
    let r = bulk(
        &s,
        "/_bulk",
        ("Authorization", &auth),
        b"{\"upsert\":{\"_index\":\"a\"}}\n{}\n",
    );
    expect_es_error(&r, 400, "illegal_argument_exception");
    assert!(r.json()["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("upsert"));
    // A bad document is its item's failure, not the request's.
    let r = bulk(
        &s,
        "/_bulk",
        ("Authorization", &auth),
        b"{\"index\":{\"_index\":\"a\"}}\n{\"@timestamp\":\"last tuesday\"}\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let item = &r.json()["items"][0]["index"];
    assert_eq!(item["status"], 400, "{item}");
    assert_eq!(item["error"]["type"], "mapper_parsing_exception");
    assert!(item["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("@timestamp"));

    let big = ndjson(&[
        json!({"index": {"_index": "a"}}),
        json!({"message": "x".repeat(5000)}),
    ]);
    let r = bulk(&s, "/_bulk", ("Authorization", &auth), &big);
    expect_es_error(&r, 413, "content_too_long_exception");
    let r = s.req(
        "POST",
        "/_bulk",
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        b"{\"index\":{\"_index\":\"a\"}}\n{}\n",
    );
    expect_es_error(&r, 415, "media_type_header_exception");
    assert!(s.get("/api/v1/logs", &t.key).json()["logs"]
        .as_array()
        .unwrap()
        .is_empty());
}

/// The official Python client (`pip install elasticsearch`) sends a bulk through
/// `helpers.bulk`, authenticating with an API key and with basic auth. Under CI the
/// package must be there; elsewhere the test says it skipped.
#[test]
fn the_python_clients_bulk_helper_stores_its_documents() {
    if !common::python_module("elasticsearch", "elasticsearch") {
        return;
    }
    let s = Server::start(&[]);
    let t = s.tenant("es-python@example.com");
    let script = r#"
import os, sys
from elasticsearch import Elasticsearch, helpers
url, key = os.environ["ES_URL"], os.environ["ES_KEY"]
for client in (Elasticsearch(url, api_key=key), Elasticsearch(url, basic_auth=("elastic", key))):
    info = client.info()
    assert info["version"]["number"].startswith("8."), info
    lic = client.license.get()
    assert lic["license"]["status"] == "active" and lic["license"]["type"] == "basic", lic
    docs = ({"_index": "py-logs", "_source": {"message": f"python {i}", "log.level": "error",
             "service": {"name": "py"}, "labels": {"i": i}}} for i in range(250))
    ok, errors = helpers.bulk(client, docs, chunk_size=100)
    assert ok == 250 and not errors, (ok, errors)
print("done")
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .env("ES_URL", format!("http://{}", s.addr))
        .env("ES_KEY", &t.key)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r = s.get("/api/v1/logs?service=py&limit=1000", &t.key);
    let logs = r.json()["logs"].as_array().cloned().unwrap();
    assert_eq!(logs.len(), 500);
    assert!(logs.iter().all(|l| l["level"] == "error"
        && l["source"] == "py-logs"
        && l["message"].as_str().unwrap().starts_with("python ")));
}
