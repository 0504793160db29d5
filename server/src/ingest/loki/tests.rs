//! Tests of the loki front door's decoding and mapping.
use ledger_engine::timefmt::parse_rfc3339;
use ledger_engine::{Field, Importance, LogType};
use serde_json::json;

use super::*;

/// 2026-11-22T12:26:36.123456Z.
const T_US: i64 = 1_795_350_396_123_456;
const LIMIT: usize = 1 << 20;

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A case: what it shows, labels, structured metadata, and the Ledger fields they give.
type Row = (
    &'static str,
    Vec<(String, String)>,
    Value,
    Vec<(&'static str, Value)>,
);

/// The mapping table, one row per case: labels and structured metadata, and the Ledger
/// fields they give (`null`: absent). Every mapped entry must pass the Log schema.
#[test]
fn each_row_of_the_mapping_table() {
    let rows: Vec<Row> = vec![
        (
            "the line is the message",
            labels(&[]),
            json!({}),
            vec![
                ("message", json!("GET /x 200")),
                ("log_type", json!("logger")),
                ("attributes", Value::Null),
            ],
        ),
        (
            "service from service_name",
            labels(&[("service_name", "api"), ("service", "b"), ("job", "c")]),
            json!({}),
            vec![
                ("service", json!("api")),
                (
                    "attributes",
                    json!({"labels": {"service": "b", "job": "c"}}),
                ),
            ],
        ),
        (
            "service from service",
            labels(&[("job", "c"), ("service", "b")]),
            json!({}),
            vec![
                ("service", json!("b")),
                ("attributes", json!({"labels": {"job": "c"}})),
            ],
        ),
        (
            "service from job",
            labels(&[("job", "varlogs")]),
            json!({}),
            vec![("service", json!("varlogs"))],
        ),
        (
            "level from level",
            labels(&[("level", "ERROR")]),
            json!({}),
            vec![
                ("level", json!("error")),
                ("importance", json!("high")),
                ("attributes", Value::Null),
            ],
        ),
        (
            "level from detected_level",
            labels(&[("detected_level", "warn")]),
            json!({}),
            vec![
                ("level", json!("warning")),
                ("importance", json!("standard")),
            ],
        ),
        (
            "level from severity",
            labels(&[("severity", "critical")]),
            json!({}),
            vec![("level", json!("critical")), ("importance", json!("high"))],
        ),
        (
            "shippers' level names",
            labels(&[("detected_level", "trace")]),
            json!({}),
            vec![("level", json!("debug")), ("attributes", Value::Null)],
        ),
        (
            "syslog level names",
            labels(&[("level", "err")]),
            json!({}),
            vec![("level", json!("error")), ("importance", json!("high"))],
        ),
        (
            "no level is info",
            labels(&[]),
            json!({}),
            vec![("level", json!("info")), ("importance", json!("standard"))],
        ),
        (
            "unknown level is info, kept",
            labels(&[("detected_level", "unknown")]),
            json!({}),
            vec![
                ("level", json!("info")),
                (
                    "attributes",
                    json!({"labels": {"detected_level": "unknown"}}),
                ),
            ],
        ),
        (
            "level before detected_level, whatever the labels' order",
            labels(&[("detected_level", "unknown"), ("level", "error")]),
            json!({}),
            vec![
                ("level", json!("error")),
                (
                    "attributes",
                    json!({"labels": {"detected_level": "unknown"}}),
                ),
            ],
        ),
        (
            "detected_level before severity",
            labels(&[("severity", "debug"), ("detected_level", "warn")]),
            json!({}),
            vec![
                ("level", json!("warning")),
                ("attributes", json!({"labels": {"severity": "debug"}})),
            ],
        ),
        (
            "environment from env",
            labels(&[("env", "prod")]),
            json!({}),
            vec![("environment", json!("prod"))],
        ),
        (
            "environment from environment",
            labels(&[("environment", "staging")]),
            json!({}),
            vec![("environment", json!("staging"))],
        ),
        (
            "other labels under attributes.labels",
            labels(&[("host", "web-1"), ("filename", "/var/log/x")]),
            json!({}),
            vec![(
                "attributes",
                json!({"labels": {"host": "web-1", "filename": "/var/log/x"}}),
            )],
        ),
        (
            "structured metadata under attributes",
            labels(&[("host", "h")]),
            json!({"user_id": "u1", "pod": "p"}),
            vec![(
                "attributes",
                json!({"user_id": "u1", "pod": "p", "labels": {"host": "h"}}),
            )],
        ),
        (
            "trace_id and span_id metadata",
            labels(&[]),
            json!({"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}),
            vec![
                ("trace_id", json!("4bf92f3577b34da6a3ce929d0e0e4736")),
                ("span_id", json!("00f067aa0ba902b7")),
                ("attributes", Value::Null),
            ],
        ),
        (
            "a trace_id that is not hex stays metadata",
            labels(&[]),
            json!({"trace_id": "abc-1"}),
            vec![
                ("trace_id", Value::Null),
                ("attributes", json!({"trace_id": "abc-1"})),
            ],
        ),
    ];
    for (row, labels, meta, want) in rows {
        let Value::Object(meta) = meta else {
            unreachable!()
        };
        let entry = Entry {
            micros: T_US,
            line: "GET /x 200".into(),
            metadata: meta.into_iter().collect(),
        };
        let m = map_entry(labels, entry);
        for (field, value) in want {
            assert_eq!(
                m.get(field).unwrap_or(&Value::Null),
                &value,
                "{row}: {field} of {m:?}"
            );
        }
        assert_eq!(
            parse_rfc3339(m["timestamp"].as_str().unwrap()),
            Some(T_US),
            "{row}"
        );
        let log = Mapped::from_schema(m.clone(), 1).log;
        assert!(log.is_ok(), "{row}: {m:?} fails the schema: {log:?}");
    }
}

#[test]
fn json_push_round_trip() {
    let body = json!({"streams": [
        {"stream": {"job": "api", "level": "error", "region": "eu"},
         "values": [["1795350396123456789", "boom", {"trace_id": "0af7651916cd43dd8448eb211c80319c", "user": "u1"}],
                    ["1795350396123456999", "second"]]},
        {"stream": {"service_name": "db"}, "values": [["bad", "x"], ["1795350396123456000"], [1795350396123456000_i64, "numeric ts"]]},
    ]});
    let push = decode(body.to_string().as_bytes(), Format::Json, 0).unwrap();
    assert_eq!(
        push.names
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "streams[0].values[0]",
            "streams[0].values[1]",
            "streams[1].values[0]",
            "streams[1].values[1]",
            "streams[1].values[2]"
        ]
    );
    let log = push.items[0].log.as_ref().unwrap();
    assert_eq!(log.timestamp, T_US);
    assert_eq!(log.level, Level::Error);
    assert_eq!(log.importance, Importance::High);
    assert_eq!(log.log_type, LogType::Logger);
    assert_eq!(log.get(Field::Message), Some("boom"));
    assert_eq!(log.get(Field::Service), Some("api"));
    assert_eq!(
        log.get(Field::TraceId),
        Some("0af7651916cd43dd8448eb211c80319c")
    );
    assert_eq!(
        log.get(Field::Attributes),
        Some(r#"{"user":"u1","labels":{"region":"eu"}}"#)
    );
    assert!(push.items[1].log.is_ok());
    let bad_ts = push.items[2].log.as_ref().unwrap_err();
    assert!(bad_ts.message.starts_with("timestamp:"), "{bad_ts:?}");
    assert!(push.items[3]
        .log
        .as_ref()
        .unwrap_err()
        .message
        .starts_with("entry:"));
    assert!(push.items[4].log.is_ok());
}

fn proto_body(req: &PushRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

#[test]
fn protobuf_snappy_push_round_trip() {
    let req = PushRequest {
        streams: vec![
            StreamAdapter {
                labels: r#"{job="promtail", level="warn", filename="/var/log/app.log"}"#.into(),
                entries: vec![EntryAdapter {
                    timestamp: Some(Timestamp {
                        seconds: T_US / 1_000_000,
                        nanos: 123_456_789,
                    }),
                    line: b"disk almost full".to_vec(),
                    structured_metadata: vec![LabelPairAdapter {
                        name: "span_id".into(),
                        value: "00f067aa0ba902b7".into(),
                    }],
                }],
                hash: 0,
            },
            StreamAdapter {
                labels: "{job=".into(),
                entries: vec![EntryAdapter::default()],
                hash: 0,
            },
        ],
    };
    let raw = decompress(&proto_body(&req), LIMIT).unwrap();
    let push = decode(&raw, Format::Protobuf, 42).unwrap();
    assert_eq!(
        push.names
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["streams[0].entries[0]", "streams[1].entries[0]"]
    );
    let log = push.items[0].log.as_ref().unwrap();
    assert_eq!(log.timestamp, T_US);
    assert_eq!(log.level, Level::Warning);
    assert_eq!(log.get(Field::Service), Some("promtail"));
    assert_eq!(log.get(Field::Message), Some("disk almost full"));
    assert_eq!(log.get(Field::SpanId), Some("00f067aa0ba902b7"));
    assert_eq!(
        log.get(Field::Attributes),
        Some(r#"{"labels":{"filename":"/var/log/app.log"}}"#)
    );
    let bad = push.items[1].log.as_ref().unwrap_err();
    assert!(bad.message.starts_with("labels:"), "{bad:?}");
}

#[test]
fn bad_snappy_or_protobuf_or_json_refuses_the_push() {
    let not_snappy = decompress(b"\xff\xff\xff\xff\xff\xff", LIMIT);
    assert!(
        matches!(not_snappy, Err(PushError::Invalid(_))),
        "{not_snappy:?}"
    );
    let e = decode(b"\x0a\xff\xff", Format::Protobuf, 0).err().unwrap();
    assert!(e.to_string().contains("PushRequest"), "{e}");
    // A small block claiming a huge length is refused before anything is allocated.
    let huge = snap::raw::Encoder::new()
        .compress_vec(&vec![0u8; 4096])
        .unwrap();
    assert!(huge.len() < 1024);
    let e = decompress(&huge, 1024).err().unwrap();
    assert!(matches!(e, PushError::TooLarge(_)), "{e}");
    for body in [&b"{"[..], b"[]", b"{\"streams\": 5}"] {
        let e = decode(body, Format::Json, 0).err().unwrap();
        assert!(matches!(e, PushError::Invalid(_)), "{e}");
    }
}

#[test]
fn content_types() {
    assert_eq!(Format::from_content_type(None), Some(Format::Protobuf));
    assert_eq!(
        Format::from_content_type(Some("application/json; charset=utf-8")),
        Some(Format::Json)
    );
    assert_eq!(
        Format::from_content_type(Some("Application/X-Protobuf")),
        Some(Format::Protobuf)
    );
    assert_eq!(Format::from_content_type(Some("text/plain")), None);
}

#[test]
fn label_sets_parse_with_escapes() {
    let ok: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("{}", vec![]),
        ("  { }  ", vec![]),
        (r#"{job="x"}"#, vec![("job", "x")]),
        (
            r#"{job="x", level="warn",}"#,
            vec![("job", "x"), ("level", "warn")],
        ),
        (r#"{ a = "1" ,b="2" }"#, vec![("a", "1"), ("b", "2")]),
        (
            r#"{msg="say \"hi\"\n\\ \t"}"#,
            vec![("msg", "say \"hi\"\n\\ \t")],
        ),
        (
            r#"{u="caf\u00e9 \U0001F600 \x41\101"}"#,
            vec![("u", "café 😀 AA")],
        ),
        (r#"{_x9="a,b}c="}"#, vec![("_x9", "a,b}c=")]),
        ("{k=\"ünïcödé\"}", vec![("k", "ünïcödé")]),
    ];
    for (text, want) in ok {
        let got = parse_labels(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(got, labels(&want), "{text}");
    }
    for bad in [
        "",
        "job=\"x\"",
        "{",
        "{job}",
        "{job=x}",
        "{job=\"x}",
        "{9a=\"x\"}",
        "{a=\"1\" b=\"2\"}",
        "{a=\"1\"} tail",
        "{a=\"1\",a=\"2\"}",
        r#"{a="\q"}"#,
        r#"{a="\x4"}"#,
        r#"{a="\uD800"}"#,
        r#"{a="\"}"#,
        "{a=\"x\ny\"}",
        "{=\"x\"}",
    ] {
        assert!(parse_labels(bad).is_err(), "{bad:?} was accepted");
    }
}
