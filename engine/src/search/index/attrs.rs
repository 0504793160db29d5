//! A log's attributes handed to tantivy where they lie in the stored text, instead of
//! parsed into a `serde_json::Value` tree first.
//!
//! Indexing a log used to parse its attributes (compact JSON, as validation stores them)
//! into a `Value` — a map and a `String` per key and per string value — only for tantivy to
//! copy the tree into its document and the tree to be dropped. [`Json`] implements
//! tantivy's `Value` over the text itself: an object yields its keys and values as slices of
//! the text, a leaf is read when tantivy asks for it. Every leaf comes out exactly as
//! tantivy's own `Value` for `serde_json::Value` gives it (numbers as `i64`, else `u64`,
//! else `f64`; a string that starts with a digit and reads as an RFC 3339 time as a date),
//! which a property test checks.
//!
//! Text is only read this way when it holds no backslash (no escaped string or key, which
//! could not be lent as it is); other text goes through `serde_json` as before
//! ([`Attributes::of`]). Stored attributes are always a serialized JSON object, so keys
//! are unique; on text that is not JSON the walk still never panics (it yields whatever
//! leaves it can cut out, and the log is checked against the query on its stored text
//! anyway).

use tantivy::schema::document::{ReferenceValue, ReferenceValueLeaf, Value};

/// A log's attributes, ready to add to a tantivy document.
pub enum Attributes<'a> {
    /// Compact JSON without escapes, walked in place.
    Text(Json<'a>),
    /// Anything else, parsed.
    Parsed(serde_json::Value),
}

impl<'a> Attributes<'a> {
    /// The attributes of a log, if they are a JSON object.
    pub fn of(text: &'a str) -> Option<Attributes<'a>> {
        let trimmed = text.trim_matches(is_ws);
        if memchr::memchr(b'\\', trimmed.as_bytes()).is_none() {
            return trimmed
                .starts_with('{')
                .then_some(Attributes::Text(Json(trimmed)));
        }
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v @ serde_json::Value::Object(_)) => Some(Attributes::Parsed(v)),
            _ => None,
        }
    }
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// One JSON value's text, without surrounding whitespace and holding no backslash.
#[derive(Debug, Clone, Copy)]
pub struct Json<'a>(&'a str);

impl<'a> Value<'a> for Json<'a> {
    type ArrayIter = Elements<'a>;
    type ObjectIter = Members<'a>;

    fn as_value(&self) -> ReferenceValue<'a, Self> {
        let s = self.0;
        match s.as_bytes().first() {
            Some(b'{') => ReferenceValue::Object(Members(Cursor::inside(s))),
            Some(b'[') => ReferenceValue::Array(Elements(Cursor::inside(s))),
            Some(b'"') => ReferenceValue::Leaf(string_leaf(unquote(s))),
            Some(b't') => ReferenceValue::Leaf(ReferenceValueLeaf::Bool(true)),
            Some(b'f') => ReferenceValue::Leaf(ReferenceValueLeaf::Bool(false)),
            Some(b'-' | b'0'..=b'9') => ReferenceValue::Leaf(number_leaf(s)),
            _ => ReferenceValue::Leaf(ReferenceValueLeaf::Null),
        }
    }
}

/// The text between a string's quotes (the whole of what is there if it is not closed).
fn unquote(s: &str) -> &str {
    let inner = s.get(1..).unwrap_or("");
    inner.strip_suffix('"').unwrap_or(inner)
}

/// A string leaf as tantivy makes it of a `serde_json::Value::String`.
fn string_leaf(text: &str) -> ReferenceValueLeaf<'_> {
    if text.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        use tantivy::time::{format_description::well_known::Rfc3339, OffsetDateTime, UtcOffset};
        let date = OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .and_then(|dt| tantivy::DateTime::try_from_utc(dt.to_offset(UtcOffset::UTC)));
        if let Some(d) = date {
            return ReferenceValueLeaf::Date(d);
        }
    }
    ReferenceValueLeaf::Str(text)
}

/// A number leaf as tantivy makes it of a `serde_json::Number` (not a number: null).
fn number_leaf(text: &str) -> ReferenceValueLeaf<'static> {
    match text.parse::<serde_json::Number>() {
        Ok(n) => {
            if let Some(v) = n.as_i64() {
                ReferenceValueLeaf::I64(v)
            } else if let Some(v) = n.as_u64() {
                ReferenceValueLeaf::U64(v)
            } else if let Some(v) = n.as_f64() {
                ReferenceValueLeaf::F64(v)
            } else {
                ReferenceValueLeaf::Null
            }
        }
        Err(_) => ReferenceValueLeaf::Null,
    }
}

/// A position inside an object's or array's text, at the next member or element.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    /// At the first member of the object or array `s` (which starts with its bracket).
    fn inside(s: &'a str) -> Cursor<'a> {
        Cursor { s, i: 1 }
    }

    fn skip_ws(&mut self) {
        let b = self.s.as_bytes();
        while self.i < b.len() && matches!(b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    /// Moves past a `,` and whitespace; `None` at the closing bracket or the end.
    fn next_item(&mut self) -> Option<()> {
        self.skip_ws();
        match self.s.as_bytes().get(self.i)? {
            b',' => {
                self.i += 1;
                self.skip_ws();
            }
            b'}' | b']' => return None,
            _ => {}
        }
        match self.s.as_bytes().get(self.i)? {
            b'}' | b']' => None,
            _ => Some(()),
        }
    }

    /// The value that starts here, and moves past it. Its end is found by bracket depth,
    /// strings skipped whole; an unclosed value runs to the end of the text.
    fn value(&mut self) -> Option<Json<'a>> {
        let b = self.s.as_bytes();
        let start = self.i;
        let mut depth = 0usize;
        while self.i < b.len() {
            match b[self.i] {
                b'"' => {
                    self.i += 1;
                    self.i = memchr::memchr(b'"', &b[self.i..]).map_or(b.len(), |q| self.i + q);
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                }
                b',' if depth == 0 => break,
                _ => {}
            }
            self.i = (self.i + 1).min(b.len());
            if depth == 0 && matches!(b.get(start), Some(b'"' | b'{' | b'[')) {
                break;
            }
        }
        let text = self.s.get(start..self.i)?.trim_end_matches(is_ws);
        (!text.is_empty()).then_some(Json(text))
    }
}

/// The members of an object, in text order.
#[derive(Debug, Clone)]
pub struct Members<'a>(Cursor<'a>);

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, Json<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let c = &mut self.0;
        c.next_item()?;
        let key = c.value()?;
        c.skip_ws();
        if c.s.as_bytes().get(c.i) != Some(&b':') {
            c.i = c.s.len();
            return None;
        }
        c.i += 1;
        c.skip_ws();
        let value = c.value()?;
        Some((unquote(key.0), value))
    }
}

/// The elements of an array, in order.
#[derive(Debug, Clone)]
pub struct Elements<'a>(Cursor<'a>);

impl<'a> Iterator for Elements<'a> {
    type Item = Json<'a>;

    fn next(&mut self) -> Option<Json<'a>> {
        self.0.next_item()?;
        self.0.value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every leaf of a value with its path, as tantivy's indexer walks it.
    fn leaves<'a, V: Value<'a>>(v: &V, path: &str, out: &mut Vec<String>) {
        match v.as_value() {
            ReferenceValue::Leaf(l) => out.push(format!("{path} = {l:?}")),
            ReferenceValue::Array(items) => {
                for (i, item) in items.enumerate() {
                    leaves(&item, &format!("{path}[{i}]"), out);
                }
            }
            ReferenceValue::Object(members) => {
                for (k, item) in members {
                    leaves(&item, &format!("{path}.{k}"), out);
                }
            }
        }
    }

    fn both(text: &str) -> (Vec<String>, Vec<String>) {
        let parsed: serde_json::Value = serde_json::from_str(text).expect("json");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        leaves(&&parsed, "", &mut a);
        match Attributes::of(text).expect("an object") {
            Attributes::Text(j) => leaves(&j, "", &mut b),
            Attributes::Parsed(v) => leaves(&&v, "", &mut b),
        }
        (a, b)
    }

    #[test]
    fn the_walk_gives_what_parsing_gives() {
        let text = r#"{"http":{"method":"GET","status":500,"path":"/a/b"},"n":-3,"big":18446744073709551615,"f":1.5e3,"ok":true,"no":false,"z":null,"at":"2026-12-02T10:00:00Z","v":"2.1","xs":[1,"a",{"k":[]},[]],"e":{}}"#;
        let (a, b) = both(text);
        assert_eq!(a, b);
        assert!(a.iter().any(|l| l.contains("Date")), "{a:?}");
        assert!(matches!(Attributes::of(text), Some(Attributes::Text(_))));
    }

    #[test]
    fn escaped_text_is_parsed_and_non_objects_are_not_attributes() {
        let text = r#"{"q":"say \"hi\""}"#;
        assert!(matches!(Attributes::of(text), Some(Attributes::Parsed(_))));
        let (a, b) = both(text);
        assert_eq!(a, b);
        assert!(Attributes::of("[1,2]").is_none());
        assert!(Attributes::of("\"\\u0041\"").is_none());
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value as V;
        let leaf = prop_oneof![
            Just(V::Null),
            any::<bool>().prop_map(V::Bool),
            any::<i64>().prop_map(V::from),
            any::<u64>().prop_map(V::from),
            (-1e12f64..1e12).prop_map(V::from),
            "[ a-z0-9:.+/TZ-]{0,12}".prop_map(V::String),
            Just(V::String("2026-12-02T10:00:00.5+01:00".into())),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(V::Array),
                proptest::collection::btree_map("[a-z_ .]{0,6}", inner, 0..5)
                    .prop_map(|m| V::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_serialized_object_walks_as_it_parses(
            m in proptest::collection::btree_map("[a-z_.]{1,6}", arb_json(), 0..6)
        ) {
            let v = serde_json::Value::Object(m.into_iter().collect());
            let text = serde_json::to_string(&v).expect("serialize");
            let (a, b) = both(&text);
            prop_assert_eq!(a, b);
        }

        #[test]
        fn the_walk_never_panics(text in "\\{[ -~]{0,60}") {
            if let Some(Attributes::Text(j)) = Attributes::of(&text) {
                let mut out = Vec::new();
                leaves(&j, "", &mut out);
            }
        }
    }
}
