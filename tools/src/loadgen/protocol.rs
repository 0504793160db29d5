//! `loadgen --protocol`: the same generated logs sent through each front door, so the
//! doors can be compared with native ingest. Each protocol owns three things: where a batch
//! goes, how the batch is encoded (the way the shippers that speak it send one), and how
//! many of its logs the answer acknowledges.
//!
//! Every door gets the same logs from [`LogGen`](ledger_loggen::LogGen), with the same fields
//! carried in the protocol's own way (the mappings of `docs/shippers.md` read them back):
//!
//! - `otlp`: an `ExportLogsServiceRequest` in protobuf, one `ResourceLogs` per service and
//!   environment (an OpenTelemetry SDK has one resource per process), its `service.version`
//!   the release of the group's first log; records carry time, severity, the message as the
//!   body, the ids as bytes, `exception.*` for errors and the attributes as dotted keys.
//! - `es`: `_bulk` NDJSON, `{"create":{}}` then an ECS document (`@timestamp`, `message`,
//!   `log.level`, `service.*`, `trace.id`, `span.id`, `error.*`, the attributes as sent).
//! - `loki`: a snappy-compressed protobuf `PushRequest`, as Promtail and Alloy send it: one
//!   stream per service, environment and level (labels `service_name`, `env`, `level`); the
//!   line is the message (and an error's stack trace after it), the ids and attributes
//!   structured metadata.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{json, Map, Value};

/// The ingest protocol `loadgen` speaks.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Ledger's own JSON: `POST /api/v1/ingest/batch` (or `/single`); acknowledged by 202.
    Native,
    /// OTLP/HTTP: protobuf `ExportLogsServiceRequest` to `POST /otlp/v1/logs`; acknowledged
    /// by 200, less the records its `partial_success` rejects.
    Otlp,
    /// Elasticsearch `_bulk` NDJSON to `POST /loadgen/_bulk`; acknowledged per item (201).
    Es,
    /// Loki push, snappy-compressed protobuf to `POST /loki/api/v1/push`; acknowledged by 204.
    Loki,
}

/// One generated log: its time in Unix milliseconds and its native JSON.
pub struct Log {
    pub ms: u64,
    pub json: Value,
}

impl Protocol {
    /// The route's path; `single` is native ingest of one log per request (the doors take
    /// any number, so for them a single log is a batch of one).
    pub fn path(self, single: bool) -> &'static str {
        match self {
            Protocol::Native if single => "/api/v1/ingest/single",
            Protocol::Native => "/api/v1/ingest/batch",
            Protocol::Otlp => "/otlp/v1/logs",
            // The index in the path becomes each log's `source`.
            Protocol::Es => "/loadgen/_bulk",
            Protocol::Loki => "/loki/api/v1/push",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::Native => "application/json",
            Protocol::Otlp | Protocol::Loki => "application/x-protobuf",
            Protocol::Es => "application/x-ndjson",
        }
    }

    /// The status of an answer that took the request (every log, or some of them).
    pub fn success(self) -> u16 {
        match self {
            Protocol::Native => 202,
            Protocol::Otlp | Protocol::Es => 200,
            Protocol::Loki => 204,
        }
    }

    /// A request body carrying `batch`; `single` sends native ingest's one-log body.
    pub fn encode(self, batch: &[Log], single: bool) -> Bytes {
        Bytes::from(match self {
            Protocol::Native if single => batch[0].json.to_string().into_bytes(),
            Protocol::Native => {
                let logs: Vec<&Value> = batch.iter().map(|l| &l.json).collect();
                json!({ "logs": logs }).to_string().into_bytes()
            }
            Protocol::Otlp => otlp(batch).encode_to_vec(),
            Protocol::Es => bulk(batch),
            Protocol::Loki => {
                let pb = loki(batch).encode_to_vec();
                // Compressing a buffer just made cannot fail but for a length over 4 GiB.
                snap::raw::Encoder::new()
                    .compress_vec(&pb)
                    .expect("snappy compresses a body under 4 GiB")
            }
        })
    }

    /// How many of the `sent` logs a `success()` answer acknowledges.
    pub fn acknowledged(self, body: &[u8], sent: u64) -> u64 {
        match self {
            Protocol::Native | Protocol::Loki => sent,
            Protocol::Otlp => match ExportLogsServiceResponse::decode(body) {
                Ok(r) => {
                    let rejected = r.partial_success.map_or(0, |p| p.rejected_log_records);
                    sent.saturating_sub(u64::try_from(rejected).unwrap_or(0))
                }
                Err(_) => 0,
            },
            Protocol::Es => bulk_created(body, sent),
        }
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn string(v: &Value) -> any_value::Value {
    match v {
        Value::String(s) => any_value::Value::StringValue(s.clone()),
        Value::Number(n) if n.is_i64() => any_value::Value::IntValue(n.as_i64().unwrap_or(0)),
        other => any_value::Value::StringValue(other.to_string()),
    }
}

/// The attributes object as dotted keys: `{"http": {"method": "GET"}}` → `http.method`.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

fn text<'a>(l: &'a Value, field: &str) -> &'a str {
    l[field].as_str().unwrap_or("")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// Groups `batch` by `key`, keeping first appearances in order.
fn groups<K: PartialEq>(batch: &[Log], key: impl Fn(&Value) -> K) -> Vec<(K, Vec<&Log>)> {
    let mut out: Vec<(K, Vec<&Log>)> = Vec::new();
    for l in batch {
        let k = key(&l.json);
        match out.iter_mut().find(|(g, _)| *g == k) {
            Some((_, logs)) => logs.push(l),
            None => out.push((k, vec![l])),
        }
    }
    out
}

fn otlp(batch: &[Log]) -> ExportLogsServiceRequest {
    let by_resource = groups(batch, |l| {
        (
            text(l, "service").to_owned(),
            text(l, "environment").to_owned(),
        )
    });
    let resource_logs = by_resource
        .into_iter()
        .map(|((service, env), logs)| {
            let release = text(&logs[0].json, "release").to_owned();
            let resource = Resource {
                attributes: vec![
                    kv("service.name", any_value::Value::StringValue(service)),
                    kv(
                        "deployment.environment.name",
                        any_value::Value::StringValue(env),
                    ),
                    kv("service.version", any_value::Value::StringValue(release)),
                ],
                ..Default::default()
            };
            ResourceLogs {
                resource: Some(resource),
                scope_logs: vec![ScopeLogs {
                    log_records: logs.into_iter().map(otlp_record).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest { resource_logs }
}

fn otlp_record(log: &Log) -> LogRecord {
    let l = &log.json;
    let (number, name) = match text(l, "level") {
        "debug" => (5, "DEBUG"),
        "warning" => (13, "WARN"),
        "error" => (17, "ERROR"),
        "critical" => (21, "FATAL"),
        _ => (9, "INFO"),
    };
    let mut attributes = Vec::new();
    for (field, key) in [
        ("error_type", "exception.type"),
        ("error_message", "exception.message"),
        ("stack_trace", "exception.stacktrace"),
    ] {
        if let Some(v) = l.get(field) {
            attributes.push(kv(key, string(v)));
        }
    }
    let mut flat = Vec::new();
    flatten("", &l["attributes"], &mut flat);
    attributes.extend(flat.iter().map(|(k, v)| kv(k, string(v))));
    let nanos = log.ms * 1_000_000;
    LogRecord {
        time_unix_nano: nanos,
        observed_time_unix_nano: nanos,
        severity_number: number,
        severity_text: name.to_owned(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(text(l, "message").to_owned())),
        }),
        attributes,
        trace_id: unhex(text(l, "trace_id")),
        span_id: unhex(text(l, "span_id")),
        ..Default::default()
    }
}

/// `_bulk` NDJSON: `{"create":{}}` and an ECS document per log.
fn bulk(batch: &[Log]) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch.len() * 512);
    for log in batch {
        let l = &log.json;
        let mut doc = Map::new();
        doc.insert("@timestamp".into(), l["timestamp"].clone());
        doc.insert("message".into(), l["message"].clone());
        // As the ecs-logging libraries write them: `log.level` flat, the rest nested.
        doc.insert("log.level".into(), l["level"].clone());
        doc.insert(
            "service".into(),
            json!({"name": l["service"], "environment": l["environment"], "version": l["release"]}),
        );
        doc.insert("trace".into(), json!({"id": l["trace_id"]}));
        doc.insert("span".into(), json!({"id": l["span_id"]}));
        if l.get("error_type").is_some() {
            doc.insert(
                "error".into(),
                json!({"type": l["error_type"], "message": l["error_message"], "stack_trace": l["stack_trace"]}),
            );
        }
        if let Value::Object(attrs) = &l["attributes"] {
            for (k, v) in attrs {
                doc.insert(k.clone(), v.clone());
            }
        }
        out.extend_from_slice(b"{\"create\":{}}\n");
        // Serialising a `Value` into a `Vec` cannot fail.
        serde_json::to_writer(&mut out, &Value::Object(doc)).expect("JSON into a Vec");
        out.push(b'\n');
    }
    out
}

/// How many of the `sent` documents a `_bulk` answer says were created.
fn bulk_created(body: &[u8], sent: u64) -> u64 {
    // The server writes `took` then `errors` first: when none failed, skip parsing a
    // thousand items (the answer is read on the same two cores the server runs on).
    const CLEAN: &[u8] = b"\"errors\":false,";
    let head = &body[..body.len().min(48)];
    if head.windows(CLEAN.len()).any(|w| w == CLEAN) {
        return sent;
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return 0;
    };
    v["items"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter_map(|i| i.as_object()?.values().next()?.get("status")?.as_u64())
        .filter(|&s| s == 201)
        .count() as u64
}

/// Loki's `push.proto`, the encoding side (the server declares the same messages).
pub mod push {
    /// `logproto.PushRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PushRequest {
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<Stream>,
    }

    /// `logproto.StreamAdapter`: labels as Prometheus label-set text, and the entries.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Stream {
        #[prost(string, tag = "1")]
        pub labels: String,
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<Entry>,
    }

    /// `logproto.EntryAdapter`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Entry {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        #[prost(string, tag = "2")]
        pub line: String,
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPair>,
    }

    /// `logproto.LabelPairAdapter`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPair {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `google.protobuf.Timestamp`.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

fn loki(batch: &[Log]) -> push::PushRequest {
    let by_stream = groups(batch, |l| {
        // Label names sorted, values quoted, as Prometheus's `Labels.String` writes them.
        format!(
            "{{env={:?}, level={:?}, service_name={:?}}}",
            text(l, "environment"),
            text(l, "level"),
            text(l, "service")
        )
    });
    let streams = by_stream
        .into_iter()
        .map(|(labels, logs)| push::Stream {
            labels,
            entries: logs.into_iter().map(loki_entry).collect(),
        })
        .collect();
    push::PushRequest { streams }
}

fn loki_entry(log: &Log) -> push::Entry {
    let l = &log.json;
    let line = match l.get("stack_trace").and_then(Value::as_str) {
        Some(trace) => format!("{}\n{trace}", text(l, "message")),
        None => text(l, "message").to_owned(),
    };
    let pair = |name: &str, value: String| push::LabelPair {
        name: name.to_owned(),
        value,
    };
    let mut meta = vec![
        pair("trace_id", text(l, "trace_id").to_owned()),
        pair("span_id", text(l, "span_id").to_owned()),
        pair("release", text(l, "release").to_owned()),
    ];
    let mut flat = Vec::new();
    flatten("", &l["attributes"], &mut flat);
    meta.extend(flat.into_iter().map(|(k, v)| {
        let v = match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        pair(&k.replace('.', "_"), v)
    }));
    push::Entry {
        timestamp: Some(push::Timestamp {
            seconds: (log.ms / 1000) as i64,
            nanos: ((log.ms % 1000) * 1_000_000) as i32,
        }),
        line,
        structured_metadata: meta,
    }
}

#[cfg(test)]
mod tests {
    use ledger_engine::Field;
    use ledger_server::ingest::pipeline::Mapped;
    use ledger_server::ingest::{elastic, loki as server_loki, otlp as server_otlp};

    use ledger_loggen::LogGen;

    use super::*;

    const NOW_MS: u64 = 1_795_000_000_000;

    fn batch(n: usize) -> Vec<Log> {
        let mut r = LogGen::new(3, 0);
        (0..n)
            .map(|i| {
                let ms = NOW_MS + i as u64;
                Log {
                    ms,
                    json: r.json_at(ms as i64 * 1000),
                }
            })
            .collect()
    }

    /// The logs a door's decoder makes of a body, in the order they were sent.
    fn decoded(p: Protocol, body: &[u8]) -> Vec<Mapped> {
        let now = NOW_MS as i64 * 1000;
        match p {
            Protocol::Native => unreachable!("native is the reference"),
            Protocol::Otlp => server_otlp::map(
                server_otlp::decode(body, server_otlp::Encoding::Protobuf).unwrap(),
                now,
            ),
            Protocol::Es => elastic::decode(body, Some("loadgen"), now).unwrap().items,
            Protocol::Loki => {
                let raw = server_loki::decompress(body, 64 << 20).unwrap();
                server_loki::decode(&raw, server_loki::Format::Protobuf, now)
                    .unwrap()
                    .items
            }
        }
    }

    #[test]
    fn every_door_decodes_every_log_with_its_level_service_and_time() {
        let logs = batch(300);
        for p in [Protocol::Otlp, Protocol::Es, Protocol::Loki] {
            let body = p.encode(&logs, false);
            let mapped = decoded(p, &body);
            assert_eq!(mapped.len(), logs.len(), "{p:?}");
            // OTLP and Loki group logs into resources or streams: match them by trace id.
            for m in mapped {
                let log = m.log.unwrap_or_else(|e| panic!("{p:?}: {}", e.message));
                let trace = log.get(Field::TraceId).expect("a trace id").to_owned();
                let sent = logs
                    .iter()
                    .find(|l| l.json["trace_id"] == *trace)
                    .expect("a log that was sent");
                let want = |f: &str| sent.json[f].as_str().map(str::to_owned);
                assert_eq!(
                    log.get(Field::Service).map(str::to_owned),
                    want("service"),
                    "{p:?}"
                );
                assert_eq!(
                    log.get(Field::Environment).map(str::to_owned),
                    want("environment"),
                    "{p:?}"
                );
                assert_eq!(log.level.as_str(), sent.json["level"], "{p:?}");
                assert_eq!(log.timestamp, sent.ms as i64 * 1000, "{p:?}");
                assert!(
                    log.get(Field::Message)
                        .unwrap_or("")
                        .starts_with(sent.json["message"].as_str().unwrap()),
                    "{p:?}"
                );
                if p != Protocol::Loki {
                    assert_eq!(
                        log.get(Field::ErrorType).map(str::to_owned),
                        want("error_type"),
                        "{p:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn answers_count_what_they_acknowledge() {
        let created = json!({"took": 3, "errors": false, "items": [
            {"create": {"status": 201}}, {"create": {"status": 201}}]});
        assert_eq!(bulk_created(created.to_string().as_bytes(), 2), 2);
        let mixed = json!({"took": 3, "errors": true, "items": [
            {"create": {"status": 201}}, {"create": {"status": 400}}, {"create": {"status": 201}}]});
        assert_eq!(bulk_created(mixed.to_string().as_bytes(), 3), 2);
        assert_eq!(bulk_created(b"not json", 3), 0);
        // An answer without errors is not parsed item by item.
        assert_eq!(
            bulk_created(br#"{"took":1,"errors":false,"items":[{"#, 5),
            5
        );
        let partial = server_otlp::response(3, "three bad".into(), server_otlp::Encoding::Protobuf);
        assert_eq!(Protocol::Otlp.acknowledged(&partial, 10), 7);
        assert_eq!(Protocol::Otlp.acknowledged(&[], 10), 10);
        assert_eq!(Protocol::Loki.acknowledged(&[], 10), 10);
    }
}
