//! A log's `attributes`: a JSON object within the depth and size limits, stored as compact
//! JSON text.
//!
//! Two ways to the same text. [`of_value`] checks an already parsed `Value` and serializes
//! it; a front door that maps its items onto a `Map` uses it. [`of_text`] works on the
//! attributes as they were sent, without building a `Value` tree (a map, and a `String` per
//! key and per string value, only to serialize them again): it drops the whitespace between
//! tokens and copies the rest. It answers only where the copy is exactly what serializing
//! the parsed value gives, and returns `None` otherwise so that the caller parses instead:
//! a backslash anywhere (escapes are rewritten by serializing), a number with a fraction or
//! an exponent, of more than 18 digits or `-0` (numbers are rewritten too), an object that
//! sends a key twice (the parsed map keeps one), an object of more than 64 keys (the check
//! for repeated keys stays cheap). A property test holds the two to the same answers.

use serde_json::Value;

use super::validate::{Rejection, MAX_ATTRIBUTES_BYTES, MAX_ATTRIBUTES_DEPTH};

/// The keys of one object that [`of_text`] compares a new key with.
const MAX_KEYS_COMPARED: usize = 64;

/// The compact text of an attributes value (`None` for `null`), or why it is refused.
pub type Checked = Result<Option<String>, Rejection>;

fn not_an_object() -> Rejection {
    Rejection::invalid("attributes: expected a JSON object".into())
}

fn too_deep(d: usize) -> Rejection {
    Rejection::invalid(format!(
        "attributes: nesting depth {d} is over the limit of {MAX_ATTRIBUTES_DEPTH}"
    ))
}

fn too_big(len: usize) -> Rejection {
    Rejection::invalid(format!(
        "attributes: {len} bytes serialized, over the limit of {MAX_ATTRIBUTES_BYTES}"
    ))
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Checks parsed attributes and serializes them.
pub fn of_value(v: &Value) -> Checked {
    match v {
        Value::Null => return Ok(None),
        Value::Object(_) => {}
        _ => return Err(not_an_object()),
    }
    let d = depth(v);
    if d > MAX_ATTRIBUTES_DEPTH {
        return Err(too_deep(d));
    }
    let text = serde_json::to_string(v).unwrap_or_default();
    if text.len() > MAX_ATTRIBUTES_BYTES {
        return Err(too_big(text.len()));
    }
    Ok(Some(text))
}

/// Checks attributes given as the JSON text of one well-formed value: on the text where it
/// decides ([`of_text`]), else parsed ([`of_value`]). `None` only when the text cannot be
/// parsed as a `Value` (nesting past serde_json's recursion limit).
pub fn of_raw(text: &str) -> Option<Checked> {
    of_text(text).or_else(|| {
        serde_json::from_str::<Value>(text)
            .ok()
            .map(|v| of_value(&v))
    })
}

/// An object or array being copied: where its keys start in the key stack, and whether the
/// next string in it is a key.
struct Open {
    object: bool,
    keys_from: usize,
    expect_key: bool,
}

/// Checks attributes given as the JSON text of one well-formed value (as `serde_json`'s
/// `RawValue` holds it) and compacts them; `None` when only parsing can tell (see the
/// module doc). The answer, when there is one, is [`of_value`]'s on the parsed text.
pub fn of_text(text: &str) -> Option<Checked> {
    let t = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    if t == "null" {
        return Some(Ok(None));
    }
    if !t.starts_with('{') {
        return Some(Err(not_an_object()));
    }
    let b = t.as_bytes();
    if memchr::memchr(b'\\', b).is_some() {
        return None;
    }
    let mut out = String::with_capacity(t.len());
    let mut open: Vec<Open> = Vec::with_capacity(8);
    let mut keys: Vec<&str> = Vec::new();
    let mut deepest = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            c @ (b'{' | b'[') => {
                open.push(Open {
                    object: c == b'{',
                    keys_from: keys.len(),
                    expect_key: c == b'{',
                });
                deepest = deepest.max(open.len());
                out.push(c as char);
                i += 1;
            }
            c @ (b'}' | b']') => {
                if let Some(o) = open.pop() {
                    keys.truncate(o.keys_from);
                }
                out.push(c as char);
                i += 1;
            }
            b',' => {
                if let Some(o) = open.last_mut() {
                    o.expect_key = o.object;
                }
                out.push(',');
                i += 1;
            }
            b':' => {
                out.push(':');
                i += 1;
            }
            b'"' => {
                // No backslash anywhere: the string ends at the next quote.
                let end = i + 1 + memchr::memchr(b'"', &b[i + 1..])?;
                if let Some(o) = open.last_mut() {
                    if o.expect_key {
                        o.expect_key = false;
                        let key = &t[i + 1..end];
                        let mine = &keys[o.keys_from..];
                        if mine.len() >= MAX_KEYS_COMPARED || mine.contains(&key) {
                            return None;
                        }
                        keys.push(key);
                    }
                }
                out.push_str(&t[i..=end]);
                i = end + 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'0'..=b'9' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let n = &t[start..i];
                let digits = n.len() - usize::from(n.starts_with('-'));
                if digits > 18 || n == "-0" || n.contains(['.', 'e', 'E', '+']) {
                    return None;
                }
                out.push_str(n);
            }
            _ => {
                // true, false, null.
                let start = i;
                while i < b.len() && b[i].is_ascii_alphabetic() {
                    i += 1;
                }
                if i == start {
                    return None;
                }
                out.push_str(&t[start..i]);
            }
        }
    }
    if deepest > MAX_ATTRIBUTES_DEPTH {
        return Some(Err(too_deep(deepest)));
    }
    if out.len() > MAX_ATTRIBUTES_BYTES {
        return Some(Err(too_big(out.len())));
    }
    Some(Ok(Some(out)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parsed(text: &str) -> Checked {
        of_value(&serde_json::from_str::<Value>(text).expect("json"))
    }

    #[test]
    fn compact_text_without_parsing() {
        let sent = " {\"http\" : {\"method\":\"GET\", \"status\": 500},\n \"xs\":[ 1, -2, true, null, \"é\" ], \"e\":{}} ";
        let got = of_text(sent).expect("decided on the text");
        assert_eq!(
            got,
            Ok(Some(
                r#"{"http":{"method":"GET","status":500},"xs":[1,-2,true,null,"é"],"e":{}}"#.into()
            ))
        );
        assert_eq!(got, parsed(sent));
        assert_eq!(of_text("null"), Some(Ok(None)));
        assert_eq!(of_text("[1]"), Some(Err(not_an_object())));
        assert_eq!(of_text("\"x\""), Some(Err(not_an_object())));
        // Repeated keys in different objects are not a repeat.
        assert!(of_text(r#"{"a":{"a":1},"b":{"a":2}}"#).is_some());
    }

    #[test]
    fn what_serializing_rewrites_goes_to_the_parser() {
        for sent in [
            r#"{"q":"say \"hi\""}"#,
            r#"{"f":1.50}"#,
            r#"{"f":1e3}"#,
            r#"{"n":-0}"#,
            r#"{"n":123456789012345678901}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"o":{"a":1,"b":[],"a":2}}"#,
        ] {
            assert_eq!(of_text(sent), None, "{sent}");
        }
    }

    #[test]
    fn the_limits_hold_on_text() {
        let deep = format!("{}1{}", r#"{"a":"#.repeat(17), "}".repeat(17));
        assert_eq!(of_text(&deep), Some(Err(too_deep(17))));
        assert_eq!(of_text(&deep), Some(parsed(&deep)));
        let ok = format!("{}1{}", r#"{"a":"#.repeat(16), "}".repeat(16));
        assert!(matches!(of_text(&ok), Some(Ok(Some(_)))));
        let big = format!(r#"{{"x": "{}"}}"#, "a".repeat(MAX_ATTRIBUTES_BYTES));
        assert_eq!(of_text(&big), Some(parsed(&big)));
        assert!(matches!(of_text(&big), Some(Err(_))));
    }

    /// JSON text of any shape, with whitespace between tokens, escapes, repeated keys and
    /// numbers of every form.
    fn json_text() -> impl Strategy<Value = String> {
        let ws = prop::sample::select(vec!["", "", "", " ", "\n  ", "\t"]);
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            Just("false".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            (-1e6f64..1e6).prop_map(|f| f.to_string()),
            prop::sample::select(vec![
                "0",
                "-0",
                "1e3",
                "2.50",
                "-7E-2",
                "12345678901234567890"
            ])
            .prop_map(str::to_string),
            "[a-z é/:.-]{0,8}".prop_map(|s| format!("\"{s}\"")),
            prop::sample::select(vec![r#""a\"b""#, r#""\u00e9""#, r#""\n""#])
                .prop_map(str::to_string),
        ];
        leaf.prop_recursive(5, 48, 6, move |inner| {
            let ws = ws.clone();
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..5), ws.clone())
                    .prop_map(|(xs, w)| format!("[{w}{}{w}]", xs.join(&format!("{w},{w}")))),
                (
                    prop::collection::vec(("[a-c]{1,2}", inner), 0..5),
                    ws.clone()
                )
                    .prop_map(|(kv, w)| {
                        let members: Vec<String> = kv
                            .iter()
                            .map(|(k, v)| format!("\"{k}\"{w}:{w}{v}"))
                            .collect();
                        format!("{{{w}{}{w}}}", members.join(&format!("{w},{w}")))
                    }),
            ]
        })
    }

    proptest! {
        /// Where the text decides, it decides as parsing and serializing does.
        #[test]
        fn the_text_answers_as_the_parsed_value(text in json_text()) {
            if let Some(answer) = of_text(&text) {
                prop_assert_eq!(answer, parsed(&text), "{}", text);
            }
        }
    }
}
