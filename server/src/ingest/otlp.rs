//! The OpenTelemetry front door (OTLP/HTTP logs): decoding `ExportLogsServiceRequest` bodies
//! (protobuf or OTLP JSON, through the maintained `opentelemetry-proto` types) and mapping
//! each `LogRecord` onto the Log schema. The table is in `docs/shippers.md`; each row has a
//! case in the tests below.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Av, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use serde_json::{Map, Value};

use super::pipeline::Mapped;
use ledger_engine::timefmt::format_micros;
use ledger_engine::Level;

/// How an OTLP body is encoded; answers go back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names, or `None` for one OTLP/HTTP does not define.
    pub fn from_content_type(ct: Option<&str>) -> Option<Encoding> {
        let essence = ct
            .unwrap_or("application/x-protobuf")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Decodes a request body; the error says what is wrong with it.
pub fn decode(body: &[u8], enc: Encoding) -> Result<ExportLogsServiceRequest, String> {
    match enc {
        Encoding::Protobuf => ExportLogsServiceRequest::decode(body)
            .map_err(|e| format!("the body is not an OTLP ExportLogsServiceRequest: {e}")),
        Encoding::Json => serde_json::from_slice(body)
            .map_err(|e| format!("the body is not OTLP JSON (ExportLogsServiceRequest): {e}")),
    }
}

/// The success answer: empty when every record was stored, else `partial_success` with the
/// count and the reasons of the rejected ones.
pub fn response(rejected: i64, error_message: String, enc: Encoding) -> Vec<u8> {
    let r = ExportLogsServiceResponse {
        partial_success: (rejected > 0).then_some(ExportLogsPartialSuccess {
            rejected_log_records: rejected,
            error_message,
        }),
    };
    match (enc, r.partial_success.clone()) {
        (Encoding::Protobuf, _) => r.encode_to_vec(),
        // By hand: the proto3 JSON mapping writes int64 as a string, which the generated
        // serde code does not.
        (Encoding::Json, Some(p)) => serde_json::json!({"partialSuccess": {
            "rejectedLogRecords": p.rejected_log_records.to_string(),
            "errorMessage": p.error_message,
        }})
        .to_string()
        .into_bytes(),
        (Encoding::Json, None) => b"{}".to_vec(),
    }
}

/// `google.rpc.Status`, the error body of OTLP/HTTP (without `details`).
#[derive(Clone, PartialEq, Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// An error answer's body in the request's encoding. `code` is the gRPC status code.
pub fn status(code: i32, message: &str, enc: Encoding) -> Vec<u8> {
    match enc {
        Encoding::Protobuf => Status {
            code,
            message: message.to_owned(),
        }
        .encode_to_vec(),
        Encoding::Json => serde_json::json!({ "code": code, "message": message })
            .to_string()
            .into_bytes(),
    }
}

/// Maps every record of a request, in order. `arrival_us` stamps records with no time.
pub fn map(req: ExportLogsServiceRequest, arrival_us: i64) -> Vec<Mapped> {
    let mut out = Vec::new();
    for rl in req.resource_logs {
        let resource = Resource::of(rl.resource.map(|r| r.attributes).unwrap_or_default());
        for sl in rl.scope_logs {
            let scope = sl.scope.map(|s| s.name).filter(|n| !n.is_empty());
            for rec in sl.log_records {
                let bytes = rec.encoded_len() as u64;
                out.push(Mapped::from_schema(
                    map_record(rec, &resource, scope.as_deref(), arrival_us),
                    bytes,
                ));
            }
        }
    }
    out
}

/// What a resource contributes to each of its records.
struct Resource {
    fields: Vec<(&'static str, String)>,
    rest: Map<String, Value>,
}

impl Resource {
    fn of(attrs: Vec<KeyValue>) -> Resource {
        let mut fields = Vec::new();
        let mut rest = Vec::new();
        let mut env_name = None;
        let mut env_old = None;
        for kv in attrs {
            let text = kv.value.as_ref().map(any_text);
            match (kv.key.as_str(), text) {
                ("service.name", Some(t)) => fields.push(("service", t)),
                ("service.version", Some(t)) => fields.push(("release", t)),
                ("telemetry.sdk.language", Some(t)) => fields.push(("language", t)),
                ("deployment.environment.name", Some(t)) => env_name = Some(t),
                ("deployment.environment", Some(t)) => env_old = Some(t),
                _ => rest.push(kv),
            }
        }
        if let Some(env) = env_name.or(env_old) {
            fields.push(("environment", env));
        }
        Resource {
            fields,
            rest: expand(rest),
        }
    }
}

fn map_record(
    rec: LogRecord,
    resource: &Resource,
    scope: Option<&str>,
    arrival_us: i64,
) -> Map<String, Value> {
    let mut m = Map::new();
    let ns = if rec.time_unix_nano != 0 {
        rec.time_unix_nano
    } else {
        rec.observed_time_unix_nano
    };
    let micros = if ns == 0 {
        arrival_us
    } else {
        i64::try_from(ns / 1_000).unwrap_or(i64::MAX)
    };
    m.insert("timestamp".into(), format_micros(micros).into());
    let level = level_of(rec.severity_number, &rec.severity_text);
    m.insert("level".into(), level.as_str().into());
    let importance = if level >= Level::Error {
        "high"
    } else {
        "standard"
    };
    m.insert("importance".into(), importance.into());
    if let Some(body) = &rec.body {
        m.insert("message".into(), any_text(body).into());
    }
    let mut exception = false;
    let mut rest = Vec::new();
    for kv in rec.attributes {
        exception |= kv.key.starts_with("exception.");
        let field = match kv.key.as_str() {
            "exception.type" => Some("error_type"),
            "exception.message" => Some("error_message"),
            "exception.stacktrace" => Some("stack_trace"),
            _ => None,
        };
        match (field, &kv.value) {
            (Some(f), Some(v)) => {
                m.insert(f.into(), any_text(v).into());
            }
            _ => rest.push(kv),
        }
    }
    let log_type = if exception { "exception" } else { "logger" };
    m.insert("log_type".into(), log_type.into());
    for (f, v) in &resource.fields {
        m.insert((*f).into(), v.clone().into());
    }
    if let Some(s) = scope {
        m.insert("source".into(), s.into());
    }
    for (f, id) in [("trace_id", &rec.trace_id), ("span_id", &rec.span_id)] {
        if !id.is_empty() && id.iter().any(|&b| b != 0) {
            m.insert(f.into(), hex::encode(id).into());
        }
    }
    let mut attributes = expand(rest);
    if !resource.rest.is_empty() {
        attributes.insert("resource".into(), Value::Object(resource.rest.clone()));
    }
    if !attributes.is_empty() {
        m.insert("attributes".into(), Value::Object(attributes));
    }
    m
}

/// `severity_number` by its ranges, else `severity_text` as the Log schema reads levels
/// (plus the names SDKs use: `trace`, `information`, `notice`, `emergency`, ...), else info.
fn level_of(number: i32, text: &str) -> Level {
    match number {
        1..=8 => Level::Debug,
        9..=12 => Level::Info,
        13..=16 => Level::Warning,
        17..=20 => Level::Error,
        21..=24 => Level::Critical,
        _ => super::pipeline::level_name(text).unwrap_or(Level::Info),
    }
}

/// A string value as is; any other value as compact JSON.
fn any_text(v: &AnyValue) -> String {
    match &v.value {
        Some(Av::StringValue(s)) => s.clone(),
        _ => any_json(v).to_string(),
    }
}

/// An `AnyValue` as JSON: maps as objects, arrays as arrays, bytes as base64.
fn any_json(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(Av::StringValue(s)) => Value::String(s.clone()),
        Some(Av::BoolValue(b)) => Value::Bool(*b),
        Some(Av::IntValue(i)) => Value::from(*i),
        Some(Av::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(d.to_string())),
        Some(Av::BytesValue(b)) => {
            use base64::Engine as _;
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(Av::ArrayValue(a)) => Value::Array(a.values.iter().map(any_json).collect()),
        // A string-table reference (profiles only): there is no table in a logs request.
        Some(Av::StringValueStrindex(i)) => Value::from(*i),
        Some(Av::KvlistValue(kv)) => Value::Object(
            kv.values
                .iter()
                .map(|kv| {
                    let v = kv.value.as_ref().map_or(Value::Null, any_json);
                    (kv.key.clone(), v)
                })
                .collect(),
        ),
    }
}

/// Attributes as a JSON object, dotted keys expanded into nested objects
/// (`http.status_code` → `{"http": {"status_code": …}}`). Keys without a dot are placed
/// first, so the outcome does not depend on the order the keys were sent in; a dotted key
/// that then clashes (its path runs into a value that is not an object, or it is set twice)
/// is kept flat, as sent: `http = 7` and `http.status_code = 500` give
/// `{"http": 7, "http.status_code": 500}` in either order.
fn expand(mut attrs: Vec<KeyValue>) -> Map<String, Value> {
    attrs.sort_by_key(|kv| kv.key.contains('.'));
    let mut out = Map::new();
    let mut flat = Vec::new();
    for kv in attrs {
        let v = kv.value.as_ref().map_or(Value::Null, any_json);
        if !place(&mut out, &kv.key, v.clone()) {
            flat.push((kv.key, v));
        }
    }
    for (k, v) in flat {
        out.insert(k, v);
    }
    out
}

/// Puts `v` at the dotted path `key`; false (nothing changed) on a clash.
fn place(obj: &mut Map<String, Value>, key: &str, v: Value) -> bool {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        // `a..b`, `.a`, `a.`: not a path; keep it flat.
        if obj.contains_key(key) {
            return false;
        }
        obj.insert(key.to_owned(), v);
        return true;
    }
    let (last, path) = parts.split_last().expect("split yields at least one part");
    // Check the whole path first, so a clash changes nothing.
    let mut probe: &Map<String, Value> = obj;
    for p in path {
        match probe.get(*p) {
            None => break,
            Some(Value::Object(m)) => probe = m,
            Some(_) => return false,
        }
    }
    let mut cur = obj;
    for p in path {
        let next = cur
            .entry((*p).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(m) = next else {
            return false;
        };
        cur = m;
    }
    if cur.contains_key(*last) {
        return false;
    }
    cur.insert((*last).to_owned(), v);
    true
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource as PbResource;
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_795_000_000_000_000;

    fn s(v: &str) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(Av::StringValue(v.into())),
        })
    }
    fn i(v: i64) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(Av::IntValue(v)),
        })
    }
    fn kv(k: &str, value: Option<AnyValue>) -> KeyValue {
        KeyValue {
            key: k.into(),
            value,
            ..Default::default()
        }
    }

    fn request(
        resource: Vec<KeyValue>,
        scope: &str,
        records: Vec<LogRecord>,
    ) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(PbResource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: scope.into(),
                        ..Default::default()
                    }),
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// The stored log a record maps to, as the API renders it.
    fn one(resource: Vec<KeyValue>, rec: LogRecord) -> Value {
        let m = map(request(resource, "", vec![rec]), NOW).pop().unwrap();
        let log = m.log.expect("the record maps to a valid log");
        ledger_engine::json::record_json(
            &ledger_engine::LogRecord {
                seq: 1,
                ingested_at: NOW,
                log,
            },
            "0000000000000001",
        )
    }

    #[test]
    fn timestamp_from_time_else_observed_else_arrival() {
        let t = 1_795_000_001_234_567_000u64;
        let rec = |time, observed| LogRecord {
            time_unix_nano: time,
            observed_time_unix_nano: observed,
            ..Default::default()
        };
        let want = format_micros((t / 1_000) as i64);
        assert_eq!(one(vec![], rec(t, 5))["timestamp"], *want);
        assert_eq!(one(vec![], rec(0, t))["timestamp"], *want);
        assert_eq!(one(vec![], rec(0, 0))["timestamp"], format_micros(NOW));
    }

    #[test]
    fn level_from_severity_number_ranges_else_text_else_info() {
        let rec = |n, t: &str| LogRecord {
            severity_number: n,
            severity_text: t.into(),
            ..Default::default()
        };
        for (n, want) in [
            (1, "debug"),
            (8, "debug"),
            (9, "info"),
            (12, "info"),
            (13, "warning"),
            (16, "warning"),
            (17, "error"),
            (20, "error"),
            (21, "critical"),
            (24, "critical"),
        ] {
            assert_eq!(one(vec![], rec(n, "fatal"))["level"], want, "number {n}");
        }
        assert_eq!(one(vec![], rec(0, "WARN"))["level"], "warning");
        assert_eq!(one(vec![], rec(0, "Fatal"))["level"], "critical");
        assert_eq!(one(vec![], rec(0, "Information"))["level"], "info");
        assert_eq!(one(vec![], rec(0, ""))["level"], "info");
    }

    #[test]
    fn message_from_body_string_as_is_else_compact_json() {
        let rec = |body| LogRecord {
            body,
            ..Default::default()
        };
        assert_eq!(
            one(vec![], rec(s("user 42 signed in")))["message"],
            "user 42 signed in"
        );
        let arr = Some(AnyValue {
            value: Some(Av::ArrayValue(ArrayValue {
                values: vec![i(1).unwrap(), s("x").unwrap()],
            })),
        });
        assert_eq!(one(vec![], rec(arr))["message"], r#"[1,"x"]"#);
        assert!(one(vec![], rec(None)).get("message").is_none());
    }

    #[test]
    fn exception_attributes_make_an_exception_log() {
        let rec = LogRecord {
            severity_number: 17,
            attributes: vec![
                kv("exception.type", s("TimeoutError")),
                kv("exception.message", s("timed out after 3000 ms")),
                kv("exception.stacktrace", s("at db.query")),
            ],
            ..Default::default()
        };
        let l = one(vec![], rec);
        assert_eq!(l["log_type"], "exception");
        assert_eq!(l["error_type"], "TimeoutError");
        assert_eq!(l["error_message"], "timed out after 3000 ms");
        assert_eq!(l["stack_trace"], "at db.query");
        assert!(l.get("attributes").is_none(), "{l}");
    }

    #[test]
    fn log_type_is_logger_and_importance_follows_the_level() {
        let rec = |n| LogRecord {
            severity_number: n,
            ..Default::default()
        };
        let l = one(vec![], rec(9));
        assert_eq!(
            (l["log_type"].as_str(), l["importance"].as_str()),
            (Some("logger"), Some("standard"))
        );
        assert_eq!(one(vec![], rec(17))["importance"], "high");
        assert_eq!(one(vec![], rec(21))["importance"], "high");
        assert_eq!(one(vec![], rec(13))["importance"], "standard");
    }

    #[test]
    fn resource_attributes_fill_service_environment_release_language() {
        let res = vec![
            kv("service.name", s("checkout")),
            kv("deployment.environment", s("old-name")),
            kv("deployment.environment.name", s("prod")),
            kv("service.version", s("1.4.2")),
            kv("telemetry.sdk.language", s("python")),
            kv("host.name", s("vm-1")),
        ];
        let l = one(res, LogRecord::default());
        assert_eq!(l["service"], "checkout");
        assert_eq!(l["environment"], "prod", "the new name wins");
        assert_eq!(l["release"], "1.4.2");
        assert_eq!(l["language"], "python");
        assert_eq!(
            l["attributes"],
            json!({"resource": {"host": {"name": "vm-1"}}})
        );
        let old = one(
            vec![kv("deployment.environment", s("staging"))],
            LogRecord::default(),
        );
        assert_eq!(old["environment"], "staging");
    }

    #[test]
    fn source_is_the_scope_name() {
        let m = map(
            request(vec![], "app.payments", vec![LogRecord::default()]),
            NOW,
        );
        let log = m.into_iter().next().unwrap().log.unwrap();
        assert_eq!(log.get(ledger_engine::Field::Source), Some("app.payments"));
    }

    #[test]
    fn trace_and_span_ids_are_lower_hex_and_zero_ids_are_absent() {
        let rec = LogRecord {
            trace_id: vec![0xAB; 16],
            span_id: vec![0x0C; 8],
            ..Default::default()
        };
        let l = one(vec![], rec);
        assert_eq!(l["trace_id"], "ab".repeat(16));
        assert_eq!(l["span_id"], "0c".repeat(8));
        let zero = one(
            vec![],
            LogRecord {
                trace_id: vec![0; 16],
                span_id: vec![0; 8],
                ..Default::default()
            },
        );
        assert!(
            zero.get("trace_id").is_none() && zero.get("span_id").is_none(),
            "{zero}"
        );
    }

    #[test]
    fn other_attributes_expand_dotted_keys_and_keep_the_flat_key_on_a_clash() {
        let rec = LogRecord {
            attributes: vec![
                kv("http.status_code", i(504)),
                kv("http.method", s("GET")),
                kv("user", s("u1")),
                kv("user.id", i(7)),
                kv("order_id", s("ord_981")),
            ],
            ..Default::default()
        };
        let l = one(vec![], rec);
        assert_eq!(
            l["attributes"],
            json!({"http": {"status_code": 504, "method": "GET"}, "user": "u1", "user.id": 7, "order_id": "ord_981"})
        );
        // The dotted key first and the plain one after it: the same outcome, nothing lost.
        let rec = LogRecord {
            attributes: vec![kv("user.id", i(7)), kv("user", s("u1"))],
            ..Default::default()
        };
        assert_eq!(
            one(vec![], rec)["attributes"],
            json!({"user": "u1", "user.id": 7})
        );
    }

    #[test]
    fn json_bodies_decode_with_hex_ids_and_string_int64s() {
        let body = json!({"resourceLogs": [{"resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "web"}}]},
          "scopeLogs": [{"scope": {"name": "lib"}, "logRecords": [{
            "timeUnixNano": "1795000001000000000", "severityNumber": 13, "severityText": "WARN",
            "body": {"stringValue": "disk 91% full"},
            "attributes": [{"key": "disk.used", "value": {"intValue": "91"}}],
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174"}]}]}]});
        let req = decode(body.to_string().as_bytes(), Encoding::Json).unwrap();
        let m = map(req, NOW);
        assert_eq!(m.len(), 1);
        let log = m.into_iter().next().unwrap().log.unwrap();
        assert_eq!(log.level, Level::Warning);
        assert_eq!(
            log.get(ledger_engine::Field::TraceId),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!(
            log.get(ledger_engine::Field::Attributes),
            Some(r#"{"disk":{"used":91}}"#)
        );
        assert!(decode(b"{\"resourceLogs\": 5}", Encoding::Json).is_err());
        assert!(decode(b"\xff\x00garbage", Encoding::Protobuf).is_err());
    }

    #[test]
    fn a_record_that_breaks_the_schema_is_refused_alone_naming_the_field() {
        let long = LogRecord {
            body: s(&"x".repeat(20_000)),
            ..Default::default()
        };
        let m = map(request(vec![], "", vec![LogRecord::default(), long]), NOW);
        assert!(m[0].log.is_ok());
        let err = m[1].log.as_ref().unwrap_err();
        assert!(err.message.starts_with("message:"), "{}", err.message);
    }

    #[test]
    fn answers_round_trip_in_both_encodings() {
        let pb = response(2, "two bad".into(), Encoding::Protobuf);
        let back = ExportLogsServiceResponse::decode(&pb[..]).unwrap();
        assert_eq!(back.partial_success.unwrap().rejected_log_records, 2);
        let js: Value = serde_json::from_slice(&response(1, "one".into(), Encoding::Json)).unwrap();
        assert_eq!(js["partialSuccess"]["rejectedLogRecords"], "1");
        assert!(response(0, String::new(), Encoding::Protobuf).is_empty());
        let st = Status::decode(&status(3, "bad", Encoding::Protobuf)[..]).unwrap();
        assert_eq!((st.code, st.message.as_str()), (3, "bad"));
    }
}
