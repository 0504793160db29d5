//! The JSON form of a stored log, shared by the server's answers and `ledgerctl dump`.

use std::io::Write as _;

use serde_json::{Map, Value};

use crate::model::{Field, LogRecord, NewLog};
use crate::timefmt::format_micros;

/// A stored log as JSON: every field the client sent (absent optional fields omitted), plus
/// `id`, `project_id`, `ingested_at` and, for errors, `error_fingerprint`.
pub fn record_json(r: &LogRecord, project_id: &str) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(r.id().to_string()));
    m.insert("project_id".into(), Value::String(project_id.to_owned()));
    log_fields(&r.log, Some(r.ingested_at), &mut m);
    Value::Object(m)
}

/// A log as a client would send it: the Log schema's fields, absent optional ones omitted.
pub fn log_json(log: &NewLog) -> Map<String, Value> {
    let mut m = Map::new();
    log_fields(log, None, &mut m);
    m
}

fn log_fields(log: &NewLog, ingested_at: Option<i64>, m: &mut Map<String, Value>) {
    m.insert(
        "timestamp".into(),
        Value::String(format_micros(log.timestamp)),
    );
    if let Some(at) = ingested_at {
        m.insert("ingested_at".into(), Value::String(format_micros(at)));
    }
    m.insert("level".into(), Value::String(log.level.as_str().into()));
    m.insert(
        "log_type".into(),
        Value::String(log.log_type.as_str().into()),
    );
    m.insert(
        "importance".into(),
        Value::String(log.importance.as_str().into()),
    );
    for f in Field::ALL {
        let Some(v) = log.get(f) else { continue };
        let value = if f == Field::Attributes {
            serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()))
        } else {
            Value::String(v.to_owned())
        };
        m.insert(f.name().into(), value);
    }
}

/// [`record_json`] written straight as text into `out`: the same bytes as
/// `record_json(r, project_id).to_string()`, without building a `Value` tree or parsing the
/// attributes (stored as compact JSON text, they are copied as they are). Answers of many
/// logs and live tails write every log this way: the tree was most of what rendering a log
/// cost.
pub fn write_record_json(r: &LogRecord, project_id: &str, out: &mut Vec<u8>) {
    // Writing into a `Vec` cannot fail.
    let _ = write!(out, "{{\"id\":\"{}\",\"project_id\":", r.id());
    string(out, project_id);
    let log = &r.log;
    let _ = write!(
        out,
        ",\"timestamp\":\"{}\",\"ingested_at\":\"{}\",\"level\":\"{}\",\"log_type\":\"{}\",\"importance\":\"{}\"",
        format_micros(log.timestamp),
        format_micros(r.ingested_at),
        log.level.as_str(),
        log.log_type.as_str(),
        log.importance.as_str()
    );
    for f in Field::ALL {
        let Some(v) = log.get(f) else { continue };
        out.push(b',');
        string(out, f.name());
        out.push(b':');
        if f == Field::Attributes && is_json(v) {
            out.extend_from_slice(v.as_bytes());
        } else {
            string(out, v);
        }
    }
    out.push(b'}');
}

/// `s` as a JSON string. Most text needs no escape, which is checked 16 bytes at a time
/// (the compiler makes one vector compare of each block) and then copied as it is;
/// otherwise serde_json escapes it.
fn string(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Whether JSON would escape any byte of `b`: a control character, `"` or `\`.
fn needs_escape(b: &[u8]) -> bool {
    let special = |acc: bool, &c: &u8| acc | (c < 0x20) | (c == b'"') | (c == b'\\');
    let mut blocks = b.chunks_exact(16);
    let found = blocks
        .by_ref()
        .any(|block| block.iter().fold(false, special));
    found || blocks.remainder().iter().fold(false, special)
}

/// Whether `text` is one JSON value (checked without building it). The attributes a log
/// was stored with always are; anything else is answered as a string, as `record_json` does.
fn is_json(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::codec::tests::arb_record;

    /// A compact JSON object, as validation stores attributes.
    fn arb_attributes() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            // Short floats: serde_json (without `float_roundtrip`) parses some long ones a
            // last digit off, so the tree, which parses the stored text again, can differ
            // from the text itself; the writer answers the stored text.
            (-1_000_000i64..1_000_000).prop_map(|n| Value::from(n as f64 / 64.0)),
            ".{0,12}".prop_map(Value::String),
        ];
        let value = leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((".{0,8}", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        });
        prop::collection::vec((".{0,8}", value), 0..5)
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()).to_string())
    }

    /// Every byte JSON escapes is found wherever it stands, in a block or in the rest.
    #[test]
    fn an_escape_is_found_at_every_position() {
        for len in [1, 15, 16, 17, 40] {
            assert!(!needs_escape("é".repeat(len).as_bytes()));
            for at in 0..len {
                for special in [b'"', b'\\', b'\n', 0x00, 0x1f] {
                    let mut text = vec![b'a'; len];
                    text[at] = special;
                    assert!(needs_escape(&text), "{special} at {at} of {len}");
                }
            }
        }
    }

    proptest! {
        /// The text writer gives the very bytes of the `Value` tree, with attributes as
        /// stored and with any text at all in every field.
        #[test]
        fn the_text_writer_matches_the_value_tree(
            mut rec in arb_record(),
            attributes in proptest::option::of(arb_attributes()),
            hex in "[0-9a-f]{0,32}",
        ) {
            if attributes.is_some() {
                rec.log.fields[Field::Attributes as usize] = attributes;
            }
            let mut out = Vec::new();
            write_record_json(&rec, &hex, &mut out);
            prop_assert_eq!(
                String::from_utf8(out).unwrap(),
                record_json(&rec, &hex).to_string()
            );
        }
    }
}
