//! Tests of the elastic front door's decoding and mapping.
use ledger_engine::{Field, Importance, LogType};

use proptest::prelude::*;

use super::source::Source;
use super::*;

/// 2026-11-22T12:26:36.123Z.
const T: i64 = 1_795_350_396_123_000;
const ARRIVAL: i64 = 1_795_000_000_000_000;

fn source(doc: Value) -> Source {
    serde_json::from_value(doc).expect("an object")
}

fn map(doc: Value) -> Map<String, Value> {
    map_source(source(doc), "logs-app", ARRIVAL).unwrap()
}

/// The `_bulk` answer, read back as JSON (it is written as text).
fn answer(actions: &[Action], outcomes: &[Outcome], took_ms: u64) -> Value {
    let text = super::answer(actions, outcomes, took_ms);
    serde_json::from_slice(&text).unwrap_or_else(|e| {
        panic!(
            "the answer is not JSON ({e}): {}",
            String::from_utf8_lossy(&text)
        )
    })
}

fn micros(m: &Map<String, Value>) -> i64 {
    parse_rfc3339(m["timestamp"].as_str().unwrap()).unwrap()
}

/// A case: what it shows, a document, and the Ledger fields it gives (`null`: absent).
type Row = (&'static str, Value, Vec<(&'static str, Value)>);

/// The mapping table, one row per case: a document, and the Ledger fields it gives
/// (`null`: absent). Every mapped document must also pass the Log schema's rules.
#[test]
fn each_row_of_the_mapping_table() {
    let rows: Vec<Row> = vec![
        (
            "timestamp from @timestamp",
            json!({"@timestamp": "2026-11-22T12:26:36.123Z", "timestamp": "x"}),
            vec![("attributes", json!({"timestamp": "x"}))],
        ),
        (
            "timestamp from timestamp",
            json!({"timestamp": "2026-11-22T13:26:36.123+01:00"}),
            vec![("attributes", Value::Null)],
        ),
        (
            "timestamp from time",
            json!({"time": "2026-11-22T12:26:36.123Z"}),
            vec![],
        ),
        (
            "timestamp as epoch millis",
            json!({"@timestamp": 1_795_350_396_123_u64}),
            vec![],
        ),
        (
            "timestamp as epoch millis text",
            json!({"@timestamp": "1795350396123"}),
            vec![],
        ),
        (
            "timestamp without an offset is UTC",
            json!({"@timestamp": "2026-11-22T12:26:36.123"}),
            vec![],
        ),
        (
            "message from message",
            json!({"message": "hello", "msg": "other"}),
            vec![
                ("message", json!("hello")),
                ("attributes", json!({"msg": "other"})),
            ],
        ),
        (
            "message from msg",
            json!({"msg": "hello"}),
            vec![("message", json!("hello"))],
        ),
        (
            "message from log (a string)",
            json!({"log": "hello\n"}),
            vec![("message", json!("hello\n"))],
        ),
        (
            "log as an object is no message",
            json!({"log": {"logger": "db"}}),
            vec![
                ("message", Value::Null),
                ("attributes", json!({"log": {"logger": "db"}})),
            ],
        ),
        (
            "level from log.level, flat",
            json!({"log.level": "WARN"}),
            vec![
                ("level", json!("warning")),
                ("importance", json!("standard")),
            ],
        ),
        (
            "level from log.level, nested",
            json!({"log": {"level": "error", "logger": "db"}}),
            vec![
                ("level", json!("error")),
                ("importance", json!("high")),
                ("attributes", json!({"log": {"logger": "db"}})),
            ],
        ),
        (
            "level from level",
            json!({"level": "fatal"}),
            vec![("level", json!("critical")), ("importance", json!("high"))],
        ),
        (
            "level from severity",
            json!({"severity": "debug"}),
            vec![("level", json!("debug"))],
        ),
        (
            "shippers' level names",
            json!({"level": "TRACE", "severity": "x"}),
            vec![
                ("level", json!("debug")),
                ("attributes", json!({"severity": "x"})),
            ],
        ),
        (
            "syslog level names",
            json!({"log.level": "emerg"}),
            vec![("level", json!("critical")), ("importance", json!("high"))],
        ),
        (
            "unknown level is info, kept",
            json!({"level": "loud"}),
            vec![
                ("level", json!("info")),
                ("attributes", json!({"level": "loud"})),
            ],
        ),
        (
            "no level is info",
            json!({}),
            vec![
                ("level", json!("info")),
                ("importance", json!("standard")),
                ("log_type", json!("logger")),
            ],
        ),
        (
            "error fields, flat",
            json!({"error.type": "IOError", "error.message": "disk", "error.stack_trace": "at x"}),
            vec![
                ("error_type", json!("IOError")),
                ("error_message", json!("disk")),
                ("stack_trace", json!("at x")),
                ("log_type", json!("exception")),
                ("attributes", Value::Null),
            ],
        ),
        (
            "error fields, nested",
            json!({"error": {"type": "IOError", "code": 5}}),
            vec![
                ("error_type", json!("IOError")),
                ("log_type", json!("exception")),
                ("attributes", json!({"error": {"code": 5}})),
            ],
        ),
        (
            "service from service.name",
            json!({"service": {"name": "api", "environment": "prod", "version": "1.2"}}),
            vec![
                ("service", json!("api")),
                ("environment", json!("prod")),
                ("release", json!("1.2")),
                ("attributes", Value::Null),
            ],
        ),
        (
            "service from flat names",
            json!({"service.name": "api", "service.environment": "prod", "service.version": "1.2"}),
            vec![
                ("service", json!("api")),
                ("environment", json!("prod")),
                ("release", json!("1.2")),
            ],
        ),
        (
            "service as a string, environment",
            json!({"service": "api", "environment": "staging"}),
            vec![("service", json!("api")), ("environment", json!("staging"))],
        ),
        (
            "trace and span, nested and flat",
            json!({"trace": {"id": "4bf92f3577b34da6a3ce929d0e0e4736"}, "span.id": "00f067aa0ba902b7"}),
            vec![
                ("trace_id", json!("4bf92f3577b34da6a3ce929d0e0e4736")),
                ("span_id", json!("00f067aa0ba902b7")),
                ("attributes", Value::Null),
            ],
        ),
        (
            "a trace id that is not hex stays an attribute",
            json!({"trace.id": "1-5759e988-bd86"}),
            vec![
                ("trace_id", Value::Null),
                ("attributes", json!({"trace.id": "1-5759e988-bd86"})),
            ],
        ),
        (
            "source is the index",
            json!({}),
            vec![("source", json!("logs-app"))],
        ),
        (
            "attributes: every other field, nested as sent",
            json!({"host": {"name": "web-1"}, "http.status": 500, "tags": ["a"]}),
            vec![(
                "attributes",
                json!({"host": {"name": "web-1"}, "http.status": 500, "tags": ["a"]}),
            )],
        ),
    ];
    for (row, doc, want) in rows {
        let m = map(doc);
        for (field, value) in want {
            assert_eq!(
                m.get(field).unwrap_or(&Value::Null),
                &value,
                "{row}: {field} of {m:?}"
            );
        }
        if row.starts_with("timestamp") {
            assert_eq!(micros(&m), T, "{row}");
        }
        let log = Mapped::from_schema(m.clone(), 1).log;
        assert!(log.is_ok(), "{row}: {m:?} fails the schema: {log:?}");
    }
}

#[test]
fn no_time_means_the_time_of_arrival() {
    assert_eq!(micros(&map(json!({"message": "x"}))), ARRIVAL);
    // A `time` that is no time value is some other field.
    let m = map(json!({"time": {"taken_ms": 5}}));
    assert_eq!(micros(&m), ARRIVAL);
    assert_eq!(m["attributes"], json!({"time": {"taken_ms": 5}}));
}

#[test]
fn a_bad_time_refuses_the_document_naming_the_field() {
    for doc in [json!({"@timestamp": "yesterday"}), json!({"time": 1e300})] {
        let e = map_source(source(doc), "i", ARRIVAL).unwrap_err();
        assert!(
            e.starts_with("@timestamp:") || e.starts_with("time:"),
            "{e}"
        );
    }
}

fn body(lines: &[Value]) -> Vec<u8> {
    let mut b = String::new();
    for l in lines {
        b.push_str(&l.to_string());
        b.push('\n');
    }
    b.into_bytes()
}

#[test]
fn actions_pair_with_their_sources_and_delete_has_none() {
    let b = body(&[
        json!({"index": {"_index": "a"}}),
        json!({"message": "one", "level": "error"}),
        json!({"delete": {"_index": "a", "_id": "x1"}}),
        json!({"create": {}}),
        json!({"message": "two"}),
        json!({"update": {"_id": 7}}),
        json!({"doc": {"message": "changed"}}),
    ]);
    let bulk = decode(&b, Some("path-index"), ARRIVAL).unwrap();
    let ops: Vec<_> = bulk
        .actions
        .iter()
        .map(|a| (a.op, a.index.as_str(), a.item))
        .collect();
    assert_eq!(
        ops,
        [
            (Op::Index, "a", Some(0)),
            (Op::Delete, "a", None),
            (Op::Create, "path-index", Some(1)),
            (Op::Update, "path-index", None),
        ]
    );
    assert_eq!(bulk.items.len(), 2);
    let first = bulk.items[0].log.as_ref().unwrap();
    assert_eq!(first.level, Level::Error);
    assert_eq!(first.importance, Importance::High);
    assert_eq!(first.log_type, LogType::Logger);
    assert_eq!(first.get(Field::Source), Some("a"));
    assert_eq!(first.get(Field::Message), Some("one"));
    assert_eq!(
        bulk.items[0].bytes,
        b.split(|&c| c == b'\n').nth(1).unwrap().len() as u64
    );
}

#[test]
fn delete_and_update_are_refused_per_item_and_the_rest_is_answered_in_order() {
    let b = body(&[
        json!({"delete": {"_index": "a", "_id": "x1"}}),
        json!({"index": {"_index": "a"}}),
        json!({"message": "kept"}),
        json!({"update": {"_index": "a", "_id": "x2"}}),
        json!({"doc": {}}),
        json!({"create": {"_index": "a"}}),
        json!({"level": 5, "message": ["not", "a", "string"], "service": {"name": 3}, "error": {"type": ["x"]}, "@timestamp": "nope"}),
    ]);
    let bulk = decode(&b, None, ARRIVAL).unwrap();
    let bad = bulk.items[1].log.as_ref().unwrap_err();
    assert!(bad.message.starts_with("@timestamp:"), "{bad:?}");
    let out = outcomes(
        2,
        vec![(0, "0123abcd".into())],
        vec![ItemError {
            index: 1,
            code: bad.code,
            message: bad.message.clone(),
        }],
    );
    let a = answer(&bulk.actions, &out, 3);
    assert_eq!(a["took"], 3);
    assert_eq!(a["errors"], true);
    let items = a["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["delete"]["status"], 400);
    assert_eq!(items[0]["delete"]["_id"], "x1");
    assert_eq!(
        items[0]["delete"]["error"]["type"],
        "mapper_parsing_exception"
    );
    assert_eq!(
        items[1]["index"],
        json!({"_index": "a", "_id": "0123abcd", "_version": 1, "result": "created",
            "_shards": {"total": 1, "successful": 1, "failed": 0},
            "_seq_no": 0, "_primary_term": 1, "status": 201})
    );
    assert_eq!(items[2]["update"]["status"], 400);
    assert_eq!(items[3]["create"]["status"], 400);
    assert_eq!(
        items[3]["create"]["error"]["type"],
        "mapper_parsing_exception"
    );
    assert!(items[3]["create"]["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("@timestamp"));
}

#[test]
fn an_answer_without_failures_says_errors_false_and_quota_is_429() {
    let b = body(&[
        json!({"create": {"_index": "a"}}),
        json!({}),
        json!({"create": {"_index": "a"}}),
        json!({}),
    ]);
    let bulk = decode(&b, None, ARRIVAL).unwrap();
    let ok = outcomes(2, vec![(0, "a1".into()), (1, "a2".into())], vec![]);
    assert_eq!(answer(&bulk.actions, &ok, 0)["errors"], false);
    let quota = ItemError {
        index: 1,
        code: "quota_exceeded",
        message: "quota".into(),
    };
    let a = answer(
        &bulk.actions,
        &outcomes(2, vec![(0, "a1".into())], vec![quota]),
        0,
    );
    assert_eq!(a["items"][1]["create"]["status"], 429);
    assert_eq!(
        a["items"][1]["create"]["error"]["type"],
        "es_rejected_execution_exception"
    );
}

#[test]
fn a_bad_source_line_refuses_only_its_item() {
    let b = b"{\"index\":{\"_index\":\"a\"}}\n{not json\n{\"index\":{\"_index\":\"a\"}}\n[1]\n{\"index\":{\"_index\":\"a\"}}\r\n{\"message\":\"ok\"}\r\n";
    let bulk = decode(b, None, ARRIVAL).unwrap();
    assert_eq!(bulk.items[0].log.as_ref().unwrap_err().code, "invalid_json");
    assert_eq!(
        bulk.items[1].log.as_ref().unwrap_err().code,
        "invalid_field"
    );
    assert!(bulk.items[2].log.is_ok());
}

#[test]
fn a_malformed_action_line_refuses_the_whole_request() {
    let cases: [&[u8]; 8] = [
        b"{\"index\":{}\n{}\n",
        b"[\"index\"]\n{}\n",
        b"{\"upsert\":{}}\n{}\n",
        b"{\"index\":{},\"create\":{}}\n{}\n",
        b"{\"index\":\"a\"}\n{}\n",
        b"{\"index\":{\"_index\":\"a\"}}\n",
        b"{\"index\":{\"_index\":5}}\n{}\n",
        b"\xff\n",
    ];
    for b in cases {
        let e = decode(b, Some("i"), ARRIVAL)
            .err()
            .unwrap_or_else(|| panic!("{b:?} was accepted"));
        assert_eq!(
            (e.status, e.kind),
            (400, "illegal_argument_exception"),
            "{b:?}"
        );
    }
    let e = decode(
        b"{\"index\":{}}\n{}\n{\"index\":{}}\n{}\n{\"nope\":{}}\n",
        Some("i"),
        ARRIVAL,
    )
    .err()
    .unwrap();
    assert!(e.reason.contains("line [5]"), "{e}");
    let e = decode(b"\n\n", None, ARRIVAL).err().unwrap();
    assert_eq!(e.kind, "action_request_validation_exception");
    let e = decode(b"{\"index\":{}}\n{}\n", None, ARRIVAL)
        .err()
        .unwrap();
    assert!(e.reason.contains("index is missing"), "{e}");
}

#[test]
fn error_and_node_info_bodies_have_elasticsearchs_shape() {
    let e = error_body(400, "illegal_argument_exception", "why");
    assert_eq!(
        e,
        json!({"error": {"root_cause": [{"type": "illegal_argument_exception", "reason": "why"}],
            "type": "illegal_argument_exception", "reason": "why"}, "status": 400})
    );
    let info = node_info();
    assert_eq!(info["version"]["number"], "8.17.0");
    assert_eq!(info["version"]["build_flavor"], "default");
    assert_eq!(info["version"]["lucene_version"], "9.12.0");
    assert_eq!(
        info["version"]["minimum_wire_compatibility_version"],
        "7.17.0"
    );
    assert_eq!(
        info["version"]["minimum_index_compatibility_version"],
        "7.0.0"
    );
    assert_eq!(info["tagline"], "You Know, for Search");
    for k in ["name", "cluster_name", "cluster_uuid"] {
        assert!(info[k].is_string(), "{k}");
    }
}

#[test]
fn the_answer_escapes_what_the_client_sent() {
    let index = "we\"ird\\index\u{1}é";
    let b = body(&[
        json!({"index": {"_index": index}}),
        json!({"message": "m"}),
        json!({"delete": {"_index": index, "_id": "a\"b\n"}}),
        json!({"create": {"_index": index}}),
        json!({"message": "m"}),
    ]);
    let bulk = decode(&b, None, ARRIVAL).unwrap();
    let out = outcomes(
        2,
        vec![(0, "00ff".into())],
        vec![ItemError {
            index: 1,
            code: "invalid_field",
            message: "message: \"quoted\"\n\ttab".into(),
        }],
    );
    let a = answer(&bulk.actions, &out, 7);
    assert_eq!(a["items"][0]["index"]["_index"], index);
    assert_eq!(a["items"][1]["delete"]["_id"], "a\"b\n");
    assert_eq!(
        a["items"][2]["create"]["error"]["reason"],
        "message: \"quoted\"\n\ttab"
    );
    assert_eq!(
        a,
        json!({"took": 7, "errors": true, "items": [
            {"index": {"_index": index, "_id": "00ff", "_version": 1, "result": "created",
                "_shards": {"total": 1, "successful": 1, "failed": 0},
                "_seq_no": 0, "_primary_term": 1, "status": 201}},
            {"delete": {"_index": index, "_id": "a\"b\n", "status": 400, "error": {
                "type": "mapper_parsing_exception",
                "reason": "logs are immutable: the delete action is not supported (only index and create)"}}},
            {"create": {"_index": index, "status": 400, "error": {
                "type": "mapper_parsing_exception", "reason": "message: \"quoted\"\n\ttab"}}},
        ]})
    );
}

#[test]
fn a_dotted_name_is_found_flat_or_nested() {
    let found = |doc: Value, name: &str| source(doc).locate(name).map(|(_, v)| v.clone());
    assert_eq!(
        found(json!({"log.level": "warn"}), "log.level"),
        Some(json!("warn"))
    );
    assert_eq!(
        found(json!({"log": {"level": "warn"}}), "log.level"),
        Some(json!("warn"))
    );
    // The flat key wins; a null is absent.
    assert_eq!(
        found(
            json!({"log": {"level": "x"}, "log.level": "y"}),
            "log.level"
        ),
        Some(json!("y"))
    );
    assert_eq!(
        found(
            json!({"log.level": null, "log": {"level": "x"}}),
            "log.level"
        ),
        Some(json!("x"))
    );
    assert_eq!(found(json!({"log": "text"}), "log.level"), None);
    assert_eq!(found(json!({"log": {"level": null}}), "log.level"), None);
    // A key sent twice holds its last value, as a parsed `Map` would.
    let doc: Source = serde_json::from_str(r#"{"log":{"level":"a","level":"b"}}"#).unwrap();
    assert_eq!(doc.locate("log.level").map(|(_, v)| v), Some(&json!("b")));
    // Taking a nested field removes the objects it leaves empty; one sent empty stays.
    let mut doc = source(json!({"log": {"level": "warn"}, "keep": 1, "span": {}}));
    assert_eq!(doc.take_string(&["log.level"]).as_deref(), Some("warn"));
    assert_eq!(doc.locate("log.level"), None);
    assert_eq!(
        Value::Object(doc.into_attributes()),
        json!({"keep": 1, "span": {}})
    );
}

/// The mapping as it was written before the one-pass reader: each candidate name looked up
/// in a parsed `Map`, flat then nested, and taken out of it. The model the reader must
/// agree with on any document.
mod model {
    use super::*;

    fn locate<'d>(doc: &'d Map<String, Value>, name: &str) -> Option<(Vec<String>, &'d Value)> {
        if let Some(v) = doc.get(name).filter(|v| !v.is_null()) {
            return Some((vec![name.to_owned()], v));
        }
        let (head, tail) = name.split_once('.')?;
        let Some(Value::Object(child)) = doc.get(head) else {
            return None;
        };
        let v = child.get(tail).filter(|v| !v.is_null())?;
        Some((vec![head.to_owned(), tail.to_owned()], v))
    }

    fn remove(doc: &mut Map<String, Value>, path: &[String]) -> Option<Value> {
        match path {
            [key] => doc.shift_remove(key),
            [head, key] => {
                let child = doc.get_mut(head)?.as_object_mut()?;
                let v = child.shift_remove(key);
                if child.is_empty() {
                    doc.shift_remove(head);
                }
                v
            }
            _ => None,
        }
    }

    fn first<'n>(
        doc: &Map<String, Value>,
        names: &[&'n str],
        accept: impl Fn(&Value) -> bool,
    ) -> Option<(&'n str, Vec<String>, Value)> {
        names.iter().find_map(|name| {
            let (path, v) = locate(doc, name)?;
            accept(v).then(|| (*name, path, v.clone()))
        })
    }

    fn take_string(doc: &mut Map<String, Value>, names: &[&str]) -> Option<String> {
        let (_, path, _) = first(doc, names, Value::is_string)?;
        match remove(doc, &path)? {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn map_document(
        mut doc: Map<String, Value>,
        index: &str,
        arrival_us: i64,
    ) -> Result<Map<String, Value>, String> {
        let mut m = Map::new();
        let micros = match first(&doc, &["@timestamp", "timestamp", "time"], |v| {
            v.is_string() || v.is_number()
        }) {
            Some((name, path, _)) => {
                let v = remove(&mut doc, &path).unwrap_or(Value::Null);
                time_of(&v).ok_or_else(|| format!("{name}: bad time {v}"))?
            }
            None => arrival_us,
        };
        m.insert("timestamp".into(), format_micros(micros).into());
        if let Some(msg) = take_string(&mut doc, &["message", "msg", "log"]) {
            m.insert("message".into(), msg.into());
        }
        let level = match first(&doc, &["log.level", "level", "severity"], Value::is_string) {
            Some((_, path, v)) => match v.as_str().and_then(level_name) {
                Some(level) => {
                    remove(&mut doc, &path);
                    level
                }
                None => Level::Info,
            },
            None => Level::Info,
        };
        m.insert("level".into(), level.as_str().into());
        let importance = if level >= Level::Error {
            "high"
        } else {
            "standard"
        };
        m.insert("importance".into(), importance.into());
        let mut exception = false;
        for (from, to) in [
            ("error.type", "error_type"),
            ("error.message", "error_message"),
            ("error.stack_trace", "stack_trace"),
        ] {
            if let Some(s) = take_string(&mut doc, &[from]) {
                exception = true;
                m.insert(to.into(), s.into());
            }
        }
        let log_type = if exception { "exception" } else { "logger" };
        m.insert("log_type".into(), log_type.into());
        for (names, to) in [
            (&["service.name", "service"][..], "service"),
            (&["service.environment", "environment"][..], "environment"),
            (&["service.version"][..], "release"),
        ] {
            if let Some(s) = take_string(&mut doc, names) {
                m.insert(to.into(), s.into());
            }
        }
        for (from, to) in [("trace.id", "trace_id"), ("span.id", "span_id")] {
            if let Some((_, path, _)) = first(&doc, &[from], |v| v.as_str().is_some_and(is_hex_id))
            {
                if let Some(v) = remove(&mut doc, &path) {
                    m.insert(to.into(), v);
                }
            }
        }
        m.insert("source".into(), index.into());
        if !doc.is_empty() {
            m.insert("attributes".into(), Value::Object(doc));
        }
        Ok(m)
    }
}

/// A document as JSON text, from keys the table reads, prefixes holding objects of the
/// table's child names, and other keys; values of every kind, keys sometimes sent twice.
fn document_text() -> impl Strategy<Value = String> {
    let top = prop::sample::select(vec![
        "@timestamp",
        "timestamp",
        "time",
        "message",
        "msg",
        "log",
        "log.level",
        "level",
        "severity",
        "error",
        "error.type",
        "error.message",
        "error.stack_trace",
        "service",
        "service.name",
        "service.environment",
        "environment",
        "service.version",
        "trace",
        "trace.id",
        "span",
        "span.id",
        "host",
        "http.status",
        "tags",
    ]);
    let child = prop::sample::select(vec![
        "level",
        "type",
        "message",
        "stack_trace",
        "name",
        "environment",
        "version",
        "id",
        "logger",
        "code",
    ]);
    let scalar = prop::sample::select(vec![
        r#""2026-11-22T12:26:36.123Z""#,
        "1795350396123",
        r#""1795350396123""#,
        r#""yesterday""#,
        r#""warn""#,
        r#""ERROR""#,
        r#""loud""#,
        r#""4bf92f3577b34da6a3ce929d0e0e4736""#,
        r#""1-5759e988""#,
        r#""api""#,
        "null",
        "true",
        "5",
        "1.5",
        r#"[1,"a"]"#,
        "{}",
    ]);
    let object = prop::collection::vec((child, scalar.clone()), 0..4).prop_map(|fields| {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
        format!("{{{}}}", body.join(","))
    });
    let value = prop_oneof![scalar.prop_map(str::to_owned), object];
    prop::collection::vec((top, value), 0..10).prop_map(|fields| {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
        format!("{{{}}}", body.join(","))
    })
}

proptest! {
    /// The one-pass reader maps every document exactly as the lookup model does, field
    /// for field and in the same order, and refuses the same ones.
    #[test]
    fn the_one_pass_reader_agrees_with_the_lookup_model(text in document_text()) {
        let Value::Object(parsed) = serde_json::from_str::<Value>(&text).unwrap() else {
            unreachable!()
        };
        let want = model::map_document(parsed, "i", ARRIVAL);
        let got = map_source(serde_json::from_str(&text).unwrap(), "i", ARRIVAL);
        match (want, got) {
            (Ok(want), Ok(got)) => prop_assert_eq!(
                serde_json::to_string(&want).unwrap(),
                serde_json::to_string(&got).unwrap(),
                "{}", text
            ),
            (Err(_), Err(_)) => {}
            (want, got) => prop_assert!(false, "{}: model {:?}, reader {:?}", text, want, got),
        }
    }
}
