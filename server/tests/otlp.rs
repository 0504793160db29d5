//! The OpenTelemetry front door, driven by the real OpenTelemetry Rust SDK and its OTLP/HTTP
//! log exporter (protobuf, and JSON with gzip), as an application configured with
//! `OTEL_EXPORTER_OTLP_ENDPOINT=http://host:8000/otlp` sends; then the answers a client sees
//! for bad credentials, bad bodies and partly invalid batches.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use common::{Resp, Server, Tenant};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Compression, Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::Resource;
use prost::Message;
use serde_json::{json, Value};

/// Sends one error log and one info log through the SDK, as an application would.
fn send_with_sdk(s: &Server, auth: &str, protocol: Protocol, gzip: bool, tag: &str) {
    // The SDK's HTTP client (reqwest, built with rustls and no provider of its own since
    // object storage shares it) needs the process's crypto provider, as the server sets it.
    ledger_tier::install_crypto();
    let mut builder = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(format!("http://{}/otlp/v1/logs", s.addr))
        .with_timeout(Duration::from_secs(10))
        .with_headers(HashMap::from([(
            "authorization".to_owned(),
            auth.to_owned(),
        )]));
    if gzip {
        builder = builder.with_compression(Compression::Gzip);
    }
    let exporter = builder.build().expect("exporter");
    let resource = Resource::builder()
        .with_service_name("checkout")
        .with_attributes([
            KeyValue::new("deployment.environment.name", "prod"),
            KeyValue::new("service.version", "1.4.2"),
            KeyValue::new("host.name", "vm-7"),
        ])
        .build();
    let provider = SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_simple_exporter(exporter)
        .build();
    let logger = provider.logger("app.payments");
    let mut r = logger.create_log_record();
    r.set_timestamp(SystemTime::now());
    r.set_severity_number(Severity::Error);
    r.set_severity_text("ERROR");
    r.set_body(AnyValue::from(format!("payment {tag} failed")));
    r.add_attribute("exception.type", "TimeoutError");
    r.add_attribute("exception.message", "database timed out after 3000 ms");
    r.add_attribute("http.status_code", 504);
    r.add_attribute("order_id", format!("ord_{tag}"));
    logger.emit(r);
    let mut r = logger.create_log_record();
    r.set_timestamp(SystemTime::now());
    r.set_severity_number(Severity::Info);
    r.set_body(AnyValue::from(format!("user {tag} signed in")));
    logger.emit(r);
    provider.force_flush().expect("flush");
    provider.shutdown().expect("shutdown");
}

/// The project's logs that carry `needle` in their message, newest first.
fn find(s: &Server, t: &Tenant, needle: &str) -> Vec<Value> {
    let r = s.get("/api/v1/logs?service=checkout&limit=1000", &t.key);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["message"].as_str().unwrap_or("").contains(needle))
        .cloned()
        .collect()
}

fn check_sent(s: &Server, t: &Tenant, tag: &str) {
    let logs = find(s, t, tag);
    assert_eq!(logs.len(), 2, "both logs of {tag} stored: {logs:?}");
    let err = logs
        .iter()
        .find(|l| l["level"] == "error")
        .expect("the error log");
    assert_eq!(err["message"], format!("payment {tag} failed"));
    assert_eq!(err["log_type"], "exception");
    assert_eq!(err["importance"], "high");
    assert_eq!(err["error_type"], "TimeoutError");
    assert_eq!(err["error_message"], "database timed out after 3000 ms");
    assert_eq!(err["service"], "checkout");
    assert_eq!(err["environment"], "prod");
    assert_eq!(err["release"], "1.4.2");
    assert_eq!(err["language"], "rust");
    assert_eq!(err["source"], "app.payments");
    assert_eq!(err["attributes"]["http"]["status_code"], 504);
    assert_eq!(err["attributes"]["order_id"], format!("ord_{tag}"));
    assert_eq!(err["attributes"]["resource"]["host"]["name"], "vm-7");
    assert!(err["error_fingerprint"].is_string());
    let info = logs.iter().find(|l| l["level"] == "info").expect("info");
    assert_eq!(
        (info["log_type"].as_str(), info["importance"].as_str()),
        (Some("logger"), Some("standard"))
    );
    // By id, by search and in the metrics, as a native log would be.
    let id = err["id"].as_str().unwrap();
    assert_eq!(s.get(&format!("/api/v1/logs/{id}"), &t.key).json(), *err);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let q = format!(
            "/api/v1/logs/search?q=%22payment+{tag}+failed%22+AND+attributes.http.status_code:504"
        );
        let hits = s.get(&q, &t.key).json()["logs"].as_array().unwrap().len();
        if hits == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "search never found {tag}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let top = s.get("/api/v1/metrics/top-errors?hours=24", &t.key).json();
    assert!(
        top["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["error_type"] == "TimeoutError"),
        "{top}"
    );
}

#[test]
fn the_opentelemetry_sdk_exports_logs_over_protobuf_and_json() {
    let s = Server::start(&[]);
    let t = s.tenant("otel@example.com");
    send_with_sdk(
        &s,
        &format!("Bearer {}", t.key),
        Protocol::HttpBinary,
        false,
        "pb1",
    );
    check_sent(&s, &t, "pb1");
    send_with_sdk(
        &s,
        &format!("Bearer {}", t.key),
        Protocol::HttpJson,
        true,
        "js2",
    );
    check_sent(&s, &t, "js2");
}

/// A minimal valid request with `n` records, the `bad`th with a message over the limit.
fn request(n: usize, bad: Option<usize>) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue as Av};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let records = (0..n)
        .map(|i| LogRecord {
            time_unix_nano: now,
            severity_number: 9,
            body: Some(Av {
                value: Some(any_value::Value::StringValue(if Some(i) == bad {
                    "x".repeat(20_000)
                } else {
                    format!("record {i}")
                })),
            }),
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn post(s: &Server, auth: &str, ctype: &str, body: &[u8]) -> Resp {
    s.req(
        "POST",
        "/otlp/v1/logs",
        &[("Authorization", auth), ("Content-Type", ctype)],
        body,
    )
}

/// `google.rpc.Status` of a protobuf error answer.
fn status(r: &Resp) -> (i32, String) {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Status {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    let st = Status::decode(&r.body[..]).expect("a google.rpc.Status");
    (st.code, st.message)
}

#[test]
fn answers_follow_the_otlp_spec() {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
    let s = Server::start(&[]);
    let t = s.tenant("spec@example.com");
    let bearer = format!("Bearer {}", t.key);
    let pb = "application/x-protobuf";
    // All stored: an empty ExportLogsServiceResponse.
    let r = post(&s, &bearer, pb, &request(3, None));
    assert_eq!(r.status, 200);
    let ok = ExportLogsServiceResponse::decode(&r.body[..]).unwrap();
    assert!(ok.partial_success.is_none());
    // One bad record: the rest are stored, partial_success counts and explains it.
    let r = post(&s, &bearer, pb, &request(3, Some(1)));
    assert_eq!(r.status, 200);
    let p = ExportLogsServiceResponse::decode(&r.body[..])
        .unwrap()
        .partial_success
        .expect("partial success");
    assert_eq!(p.rejected_log_records, 1);
    assert!(
        p.error_message.contains("log record 1: message:"),
        "{}",
        p.error_message
    );
    // The same in JSON.
    let js: Value = serde_json::from_slice(
        &post(
            &s,
            &bearer,
            "application/json",
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
            {"severityNumber":9,"body":{"stringValue":"json ok"}},
            {"timeUnixNano":"1000000000","body":{"stringValue":"far too old"}}]}]}]}"#,
        )
        .body,
    )
    .unwrap();
    assert_eq!(js["partialSuccess"]["rejectedLogRecords"], "1", "{js}");
    // None valid, or not OTLP at all: 400 with a google.rpc.Status.
    let r = post(&s, &bearer, pb, &request(1, Some(0)));
    assert_eq!(r.status, 400);
    assert_eq!(status(&r).0, 3);
    let r = post(&s, &bearer, pb, b"\xff\xff\xff not protobuf");
    assert_eq!(r.status, 400);
    assert!(status(&r).1.contains("ExportLogsServiceRequest"));
    let r = post(&s, &bearer, "application/json", b"{\"resourceLogs\": 7}");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], 3);
    // Other content types are 415.
    assert_eq!(post(&s, &bearer, "text/plain", b"hi").status, 415);
    // ...once the key is good: a wrong key is 401 whatever the type, as on the other doors.
    assert_eq!(
        post(&s, "Bearer ledger_wrong", "text/plain", b"hi").status,
        401
    );
    // Credentials: every shipper form works, a wrong key is 401, a key without ingest 403.
    use base64::Engine as _;
    let b64 = |x: String| base64::engine::general_purpose::STANDARD.encode(x);
    for auth in [
        format!("ApiKey {}", t.key),
        format!("ApiKey {}", b64(format!("id:{}", t.key))),
        format!("Basic {}", b64(format!("otel:{}", t.key))),
    ] {
        assert_eq!(post(&s, &auth, pb, &request(1, None)).status, 200, "{auth}");
    }
    let r = s.req(
        "POST",
        "/otlp/v1/logs",
        &[("X-API-Key", &t.key), ("Content-Type", pb)],
        &request(1, None),
    );
    assert_eq!(r.status, 200);
    let r = post(
        &s,
        "Bearer ledger_00000000000000000000000000000000",
        pb,
        &request(1, None),
    );
    assert_eq!(r.status, 401);
    assert_eq!(status(&r).0, 16);
    let k = s.post(
        &format!("/api/v1/projects/{}/keys", t.project),
        &t.token,
        &json!({"name": "reader", "scopes": ["query"]}),
    );
    let reader = k.json()["key"].as_str().unwrap().to_owned();
    let r = post(&s, &format!("Bearer {reader}"), pb, &request(1, None));
    assert_eq!(r.status, 403);
    assert_eq!(status(&r).0, 7);
    // 3 + 2 + 1 + 4 accepted above.
    let listed = s.get("/api/v1/logs?limit=1000", &t.key).json();
    assert_eq!(listed["logs"].as_array().unwrap().len(), 10, "{listed}");
}

#[test]
fn an_oversized_body_is_413_in_otlp_shape() {
    let s = Server::start(&["--max-body-bytes", "100000"]);
    let t = s.tenant("big@example.com");
    let r = post(
        &s,
        &format!("Bearer {}", t.key),
        "application/x-protobuf",
        &request(20, None).repeat(200),
    );
    assert_eq!(r.status, 413);
    assert_eq!(status(&r).0, 3);
}
