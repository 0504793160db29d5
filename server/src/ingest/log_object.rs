//! A native log's JSON object, read in one pass without building a `Map`.
//!
//! Parsing a log into a `serde_json::Map` allocated a `String` for every key and hashed it
//! into the map, only for validation to walk the map once in order and move the values
//! out. Here each key is recognised as it is read (the Log schema's names need no
//! allocation) and kept with its value in order, so validation walks a plain list. A key
//! sent twice keeps its first place and its last value, as a `Map` would; of the keys the
//! schema does not know only the first is kept, since it alone can be the first rule broken.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// The names of the Log schema's fields, as they are matched.
const NAMES: [&str; 17] = [
    "timestamp",
    "level",
    "log_type",
    "importance",
    "attributes",
    "message",
    "error_type",
    "error_message",
    "stack_trace",
    "service",
    "source",
    "environment",
    "release",
    "platform",
    "language",
    "trace_id",
    "span_id",
];

fn known(key: &str) -> Option<usize> {
    NAMES.iter().position(|n| *n == key)
}

/// A key of a log object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// One of the schema's names, by position in `NAMES`.
    Known(usize),
    /// A name the schema does not have.
    Unknown(String),
}

impl Key {
    pub fn as_str(&self) -> &str {
        match self {
            Key::Known(i) => NAMES[*i],
            Key::Unknown(s) => s,
        }
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// A log object's fields in the order they were first sent.
#[derive(Debug, Default)]
pub struct LogObject {
    pub fields: Vec<(Key, Value)>,
}

impl<'de> Deserialize<'de> for LogObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<LogObject, D::Error> {
        d.deserialize_map(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = LogObject;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LogObject, A::Error> {
        let mut fields: Vec<(Key, Value)> = Vec::with_capacity(16);
        let mut slots = [None::<usize>; NAMES.len()];
        let mut unknown_seen = false;
        while let Some(key) = map.next_key::<KeySeed>()? {
            let value: Value = map.next_value()?;
            match key.0 {
                Key::Known(i) => match slots[i] {
                    Some(at) => fields[at].1 = value,
                    None => {
                        slots[i] = Some(fields.len());
                        fields.push((Key::Known(i), value));
                    }
                },
                unknown @ Key::Unknown(_) => {
                    if !unknown_seen {
                        unknown_seen = true;
                        fields.push((unknown, value));
                    }
                }
            }
        }
        Ok(LogObject { fields })
    }
}

/// A key, recognised without allocating when it is one of the schema's names.
struct KeySeed(Key);

impl<'de> Deserialize<'de> for KeySeed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeySeed, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = KeySeed;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E>(self, s: &str) -> Result<KeySeed, E> {
        Ok(KeySeed(match known(s) {
            Some(i) => Key::Known(i),
            None => Key::Unknown(s.to_owned()),
        }))
    }

    fn visit_string<E>(self, s: String) -> Result<KeySeed, E> {
        Ok(KeySeed(match known(&s) {
            Some(i) => Key::Known(i),
            None => Key::Unknown(s),
        }))
    }
}
