//! The Loki front door against the real binary: JSON and snappy-protobuf pushes read back
//! through the query routes with their mapped fields, partial refusals, every shipper
//! credential form, the error answers, and the `python-logging-loki` handler.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Resp, Server};
use prost::Message;
use serde_json::{json, Value};

/// Loki's `push.proto`, declared afresh here (not the server's own structs) so that a
/// mistake in the server's declaration cannot hide behind the same mistake in the test.
mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PushRequest {
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<StreamAdapter>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StreamAdapter {
        #[prost(string, tag = "1")]
        pub labels: String,
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<EntryAdapter>,
        #[prost(uint64, tag = "3")]
        pub hash: u64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EntryAdapter {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        #[prost(string, tag = "2")]
        pub line: String,
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPairAdapter>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPairAdapter {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

const PUSH: &str = "/loki/api/v1/push";

/// Yesterday at 10:00:00 UTC plus `ms`, in Unix nanoseconds.
fn yesterday_ns(ms: i64) -> i64 {
    let t = ledger_engine::timefmt::parse_rfc3339(&format!("{}T10:00:00Z", common::day()));
    t.unwrap() * 1_000 + ms * 1_000_000
}

fn push_json(s: &Server, auth: (&str, &str), body: &Value) -> Resp {
    s.req(
        "POST",
        PUSH,
        &[auth, ("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn push_proto(s: &Server, key: &str, req: &proto::PushRequest) -> Resp {
    push_proto_with(s, key, req, &[])
}

fn push_proto_with(
    s: &Server,
    key: &str,
    req: &proto::PushRequest,
    headers: &[(&str, &str)],
) -> Resp {
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let mut all = vec![("Content-Type", "application/x-protobuf")];
    all.extend_from_slice(headers);
    s.send("POST", PUSH, key, &all, &body)
}

fn logs(s: &Server, key: &str, query: &str) -> Vec<Value> {
    let r = s.get(&format!("/api/v1/logs?{query}"), key);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["logs"].as_array().cloned().unwrap()
}

#[test]
fn a_json_push_reads_back_with_its_mapped_fields() {
    let s = Server::start(&[]);
    let t = s.tenant("loki-json@example.com");
    let ns = yesterday_ns(250);
    let body = json!({"streams": [{
        "stream": {"service_name": "checkout", "level": "error", "env": "prod", "region": "eu-west"},
        "values": [
            [ns.to_string(), "card declined for order 42",
             {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7", "user_id": "u7"}],
            [(ns + 1_000_000).to_string(), "retrying"],
        ],
    }]});
    let r = push_json(&s, ("Authorization", &format!("Bearer {}", t.key)), &body);
    assert_eq!(r.status, 204, "{}", r.text());
    let found = logs(&s, &t.key, "service=checkout&order=asc");
    assert_eq!(found.len(), 2, "{found:?}");
    let id = found[0]["id"].as_str().unwrap();
    let log = s.get(&format!("/api/v1/logs/{id}"), &t.key).json();
    for (field, want) in [
        (
            "timestamp",
            json!(format!("{}T10:00:00.250000Z", common::day())),
        ),
        ("message", json!("card declined for order 42")),
        ("level", json!("error")),
        ("importance", json!("high")),
        ("log_type", json!("logger")),
        ("service", json!("checkout")),
        ("environment", json!("prod")),
        ("trace_id", json!("4bf92f3577b34da6a3ce929d0e0e4736")),
        ("span_id", json!("00f067aa0ba902b7")),
        (
            "attributes",
            json!({"user_id": "u7", "labels": {"region": "eu-west"}}),
        ),
    ] {
        assert_eq!(log[field], want, "{field} of {log}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.get(
            "/api/v1/logs/search?q=declined%20attributes.labels.region:eu-west",
            &t.key,
        );
        let hits = r.json()["logs"].as_array().cloned().unwrap_or_default();
        if hits.len() == 1 {
            assert_eq!(hits[0]["id"], id);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "search never found the log: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // `Content-Encoding: deflate` as Go's Loki clients send it (raw DEFLATE, which Loki reads).
    let deflated = {
        use std::io::Write as _;
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
        let mut other = body.clone();
        other["streams"][0]["stream"]["service_name"] = json!("deflated");
        e.write_all(other.to_string().as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let r = s.send(
        "POST",
        PUSH,
        &t.key,
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "deflate"),
        ],
        &deflated,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(logs(&s, &t.key, "service=deflated").len(), 2);
}

#[test]
fn a_snappy_protobuf_push_reads_back() {
    let s = Server::start(&[]);
    let t = s.tenant("loki-proto@example.com");
    let ns = yesterday_ns(0);
    let req = proto::PushRequest {
        streams: vec![proto::StreamAdapter {
            labels: r#"{job="varlogs", detected_level="warn", filename="/var/log/app \"1\".log"}"#
                .into(),
            entries: (0..3)
                .map(|i| proto::EntryAdapter {
                    timestamp: Some(proto::Timestamp {
                        seconds: ns / 1_000_000_000,
                        nanos: i * 1_000_000,
                    }),
                    line: format!("disk at {}%", 90 + i),
                    structured_metadata: vec![proto::LabelPairAdapter {
                        name: "pod".into(),
                        value: "api-0".into(),
                    }],
                })
                .collect(),
            hash: 0,
        }],
    };
    let r = push_proto(&s, &t.key, &req);
    assert_eq!(r.status, 204, "{}", r.text());
    let found = logs(&s, &t.key, "service=varlogs&order=asc");
    assert_eq!(found.len(), 3);
    // Vector's Loki sink names the snappy block in Content-Encoding too, as Loki accepts.
    let mut again = req.clone();
    again.streams[0].labels = r#"{job="vector"}"#.into();
    let r = push_proto_with(&s, &t.key, &again, &[("Content-Encoding", "snappy")]);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(logs(&s, &t.key, "service=vector").len(), 3);
    assert_eq!(found[2]["message"], "disk at 92%");
    assert_eq!(found[2]["level"], "warning");
    assert_eq!(found[2]["importance"], "standard");
    assert_eq!(
        found[2]["attributes"],
        json!({"pod": "api-0", "labels": {"filename": "/var/log/app \"1\".log"}})
    );
}

#[test]
fn invalid_entries_are_named_and_the_valid_ones_stored() {
    let s = Server::start(&[]);
    let t = s.tenant("loki-partial@example.com");
    let auth = format!("Bearer {}", t.key);
    let ns = yesterday_ns(0);
    let body = json!({"streams": [
        {"stream": {"job": "a"}, "values": [[ns.to_string(), "good one"], ["not-a-time", "bad time"]]},
        {"stream": {"job": "b"}, "values": [["1000", "far too old"], [ns.to_string(), "good two"]]},
    ]});
    let r = push_json(&s, ("Authorization", &auth), &body);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = r.text();
    assert!(text.contains("2 of 4 entries"), "{text}");
    assert!(text.contains("streams[0].values[1]: timestamp"), "{text}");
    assert!(text.contains("streams[1].values[0]: timestamp"), "{text}");
    let stored = logs(&s, &t.key, "order=asc");
    let messages: Vec<&str> = stored
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect();
    assert_eq!(messages, ["good one", "good two"]);
    // Nothing valid at all: 400 too, and nothing stored.
    let r = push_json(
        &s,
        ("Authorization", &auth),
        &json!({"streams": [{"stream": {}, "values": [["x", "y"]]}]}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("streams[0].values[0]"));
    // An empty push is a no-op.
    let r = push_json(&s, ("Authorization", &auth), &json!({"streams": []}));
    assert_eq!(r.status, 204, "{}", r.text());
}

#[test]
fn credentials_and_refusals() {
    let s = Server::start(&["--max-body-bytes", "4096"]);
    let t = s.tenant("loki-auth@example.com");
    let b64 = |x: String| base64::engine::general_purpose::STANDARD.encode(x);
    let body = json!({"streams": [{"stream": {"job": "x"}, "values": [[yesterday_ns(0).to_string(), "hi"]]}]});
    let forms = [
        ("Authorization", format!("Bearer {}", t.key)),
        ("X-API-Key", t.key.clone()),
        ("Authorization", format!("ApiKey {}", t.key)),
        (
            "Authorization",
            format!("ApiKey {}", b64(format!("id:{}", t.key))),
        ),
        (
            "Authorization",
            format!("Basic {}", b64(format!("loki:{}", t.key))),
        ),
    ];
    for (name, value) in &forms {
        let r = push_json(&s, (name, value), &body);
        assert_eq!(r.status, 204, "{name}: {value}: {}", r.text());
    }
    let wrong = format!("Bearer ledger_{}", "y".repeat(32));
    let r = push_json(&s, ("Authorization", &wrong), &body);
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let r = s.post(
        &format!("/api/v1/projects/{}/keys", t.project),
        &t.token,
        &json!({"name": "reader", "scopes": ["query"]}),
    );
    let reader = r.json()["key"].as_str().unwrap().to_owned();
    let r = push_json(&s, ("Authorization", &format!("Bearer {reader}")), &body);
    assert_eq!(r.status, 403, "{}", r.text());

    let auth = ("Authorization", format!("Bearer {}", t.key));
    let h = |ct: &'static str| [(auth.0, auth.1.as_str()), ("Content-Type", ct)];
    let r = s.req("POST", PUSH, &h("application/json"), b"{\"streams\": [");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let r = s.req(
        "POST",
        PUSH,
        &h("application/x-protobuf"),
        b"\xff\xff\xff\xff",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("snappy"), "{}", r.text());
    let not_proto = snap::raw::Encoder::new()
        .compress_vec(b"\x0a\xff\xff")
        .unwrap();
    let r = s.req("POST", PUSH, &h("application/x-protobuf"), &not_proto);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s.req("POST", PUSH, &h("text/plain"), b"hello");
    assert_eq!(r.status, 415, "{}", r.text());
    let big = json!({"streams": [{"stream": {}, "values": [["1", "x".repeat(5000)]]}]});
    let r = s.req(
        "POST",
        PUSH,
        &h("application/json"),
        big.to_string().as_bytes(),
    );
    assert_eq!(r.status, 413, "{}", r.text());
    // A small snappy block that decompresses past the limit is 413 too.
    let bomb = snap::raw::Encoder::new()
        .compress_vec(&[b'a'; 64 << 10])
        .unwrap();
    assert!(bomb.len() < 4096);
    let r = s.req("POST", PUSH, &h("application/x-protobuf"), &bomb);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(logs(&s, &t.key, "").len(), forms.len());
}

/// `python-logging-loki` (`pip install python-logging-loki`), a logging handler that pushes
/// JSON with basic auth. Under CI the package must be there; elsewhere the test says it
/// skipped.
#[test]
fn the_python_logging_handler_pushes_through() {
    if !common::python_module("logging_loki", "python-logging-loki") {
        return;
    }
    let s = Server::start(&[]);
    let t = s.tenant("loki-python@example.com");
    let script = r#"
import logging, os, logging_loki
class Strict(logging_loki.LokiHandler):
    def handleError(self, record):
        raise
handler = Strict(url=os.environ["LOKI_URL"], tags={"service": "pyapp", "env": "test"},
                 auth=("loki", os.environ["LOKI_KEY"]), version="1")
log = logging.getLogger("pyapp")
log.addHandler(handler)
log.setLevel(logging.DEBUG)
log.error("python says %s", "boom", extra={"tags": {"request": "r1"}})
log.info("python says hello")
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .env("LOKI_URL", format!("http://{}{PUSH}", s.addr))
        .env("LOKI_KEY", &t.key)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python handler failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let found = logs(&s, &t.key, "service=pyapp&order=asc");
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0]["message"], "python says boom");
    assert_eq!(found[0]["level"], "error");
    assert_eq!(found[0]["environment"], "test");
    assert_eq!(found[0]["attributes"]["labels"]["request"], "r1");
    assert_eq!(found[0]["attributes"]["labels"]["logger"], "pyapp");
    assert_eq!(found[1]["level"], "info");
}

/// `winston-loki` (npm; `npm ci --prefix server/tests/shippers`, which `.ci/run` runs), a
/// Node.js logger's transport that pushes Loki's protobuf compressed with snappy, the way
/// Promtail and Grafana Alloy do: three logs in one push, read back with their labels mapped.
/// Under CI node and the package must be there; elsewhere the test says it skipped.
#[test]
fn winston_loki_pushes_snappy_protobuf_through() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shippers");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let installed = dir.join("node_modules/winston-loki").exists();
    if !node || !installed {
        let why = if node {
            "winston-loki is missing (npm ci --prefix server/tests/shippers)"
        } else {
            "node is missing"
        };
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the winston-loki test: {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let s = Server::start(&[]);
    let t = s.tenant("loki-winston@example.com");
    let time = format!("{}T10:00:00.000Z", common::day());
    let out = Command::new("node")
        .current_dir(&dir)
        .arg("winston_loki.cjs")
        .env("LOKI_HOST", format!("http://{}", s.addr))
        .env("LOKI_KEY", &t.key)
        .env("LOKI_TIME", &time)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("as application/x-protobuf"),
        "winston-loki failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log_text()
    );
    let found = logs(&s, &t.key, "service=nodeapp&order=asc");
    assert_eq!(found.len(), 3, "{found:?}");
    // winston-loki writes the message, a space, then what is left of winston's record as
    // JSON (its level here), and the level as the `level` label.
    let line = |m: &str, level: &str| format!("node says {m} {{\"level\":\"{level}\"}}");
    assert_eq!(found[0]["message"], line("boom", "error"));
    assert_eq!(
        found[0]["timestamp"],
        format!("{}T10:00:00.000000Z", common::day())
    );
    assert_eq!(found[0]["level"], "error");
    assert_eq!(found[0]["importance"], "high");
    assert_eq!(found[0]["environment"], "test");
    assert_eq!(found[0]["attributes"]["labels"], json!({"request": "r1"}));
    assert_eq!(found[1]["message"], line("hello", "info"));
    assert_eq!(found[1]["level"], "info");
    assert_eq!(found[2]["message"], line("<b>&", "debug"));
    assert_eq!(found[2]["level"], "debug");
    // The same log, looked up by id and found by search, as through any door.
    let id = found[0]["id"].as_str().unwrap();
    let one = s.get(&format!("/api/v1/logs/{id}"), &t.key);
    assert_eq!(one.status, 200, "{}", one.text());
    assert_eq!(one.json()["message"], line("boom", "error"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let hits = loop {
        let r = s.get("/api/v1/logs/search?q=boom", &t.key);
        assert_eq!(r.status, 200, "{}", r.text());
        let hits = r.json()["logs"].as_array().cloned().unwrap_or_default();
        if !hits.is_empty() || Instant::now() > deadline {
            break hits;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["id"], found[0]["id"]);
}
