//! Ledger's own tracing: `X-Request-Id` and `traceparent` on every answer, the client's
//! trace id in the server's log lines, and (with `--otel-endpoint`) its spans exported over
//! OTLP/HTTP to a receiver this test runs, decoded with the OpenTelemetry protobuf types.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{log, Server};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn traceparent() -> String {
    format!("00-{TRACE}-{PARENT}-01")
}

/// A minimal OTLP/HTTP receiver: every `POST /v1/traces` body decoded, answered 200.
fn receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let out = spans.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let out = out.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).unwrap();
                        if h == "\r\n" || h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap();
                            }
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    assert!(line.starts_with("POST /v1/traces "), "{line}");
                    let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
                    for rs in req.resource_spans {
                        for ss in rs.scope_spans {
                            out.lock().unwrap().extend(ss.spans);
                        }
                    }
                    let _ = w.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
                    );
                }
            });
        }
    });
    (addr, spans)
}

#[test]
fn every_answer_carries_a_request_id_and_the_clients_trace() {
    let s = Server::start_with_env(&[], &[("LEDGER_LOG", "info")]);
    let t = s.tenant("trace@example.com");
    let tp = traceparent();
    let r = s.req(
        "GET",
        "/api/v1/logs",
        &[
            ("authorization", &format!("Bearer {}", t.key)),
            ("traceparent", &tp),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    assert!(!r.header("x-request-id").unwrap().is_empty());
    let answer = r.header("traceparent").unwrap();
    let parts: Vec<&str> = answer.split('-').collect();
    assert_eq!(parts.len(), 4, "{answer}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", TRACE, "01"));
    assert_ne!(parts[2], PARENT, "the server's own span");
    // Without one the server starts a trace; errors carry both headers too.
    let r = s.get("/api/v1/nope", "");
    assert_eq!(r.status, 404);
    assert!(r.header("x-request-id").is_some());
    let other = r.header("traceparent").unwrap();
    assert!(!other.contains(TRACE));
    // The trace id is in the server's log line for that request.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.log_text().contains(TRACE) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let line = s
        .log_text()
        .lines()
        .find(|l| l.contains(TRACE))
        .map(String::from)
        .expect("a log line with the trace id");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["trace_id"], TRACE);
    assert_eq!(v["route"], "/api/v1/logs");
}

#[test]
fn spans_are_exported_over_otlp_http_with_the_clients_trace() {
    let (addr, spans) = receiver();
    let mut s = Server::start(&["--otel-endpoint", &format!("http://{addr}")]);
    let t = s.tenant("otel@example.com");
    let tp = traceparent();
    let body =
        serde_json::to_vec(&json!({"logs": [log(0, "traced timeout"), log(1, "two")]})).unwrap();
    let r = s.req(
        "POST",
        "/api/v1/ingest/batch",
        &[
            ("authorization", &format!("Bearer {}", t.key)),
            ("content-type", "application/json"),
            ("traceparent", &tp),
        ],
        &body,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let server_span = r
        .header("traceparent")
        .unwrap()
        .split('-')
        .nth(2)
        .unwrap()
        .to_owned();
    std::thread::sleep(Duration::from_millis(1200));
    let r = s.req(
        "GET",
        "/api/v1/logs/search?q=timeout",
        &[
            ("authorization", &format!("Bearer {}", t.key)),
            ("traceparent", &tp),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    // A graceful stop seals the memtable and flushes the exporter.
    assert!(s.stop().success());
    let spans = spans.lock().unwrap().clone();
    let named = |n: &str| {
        spans
            .iter()
            .filter(move |s| s.name == n)
            .collect::<Vec<_>>()
    };
    let ingest = named("POST /api/v1/ingest/batch");
    let ingest = ingest
        .iter()
        .find(|s| hex::encode(&s.trace_id) == TRACE)
        .unwrap_or_else(|| panic!("no ingest span in the client's trace: {:?}", names(&spans)));
    assert_eq!(hex::encode(&ingest.parent_span_id), PARENT);
    assert_eq!(
        hex::encode(&ingest.span_id),
        server_span,
        "the answer's traceparent is this span"
    );
    let append = named("append");
    assert!(
        append
            .iter()
            .any(|a| a.trace_id == ingest.trace_id && a.parent_span_id == ingest.span_id),
        "append is a child of the request: {:?}",
        names(&spans)
    );
    let search = named("search");
    assert!(
        search.iter().any(|x| hex::encode(&x.trace_id) == TRACE),
        "{:?}",
        names(&spans)
    );
    assert!(!named("fsync group").is_empty(), "{:?}", names(&spans));
    assert!(!named("seal").is_empty(), "{:?}", names(&spans));
}

fn names(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}
