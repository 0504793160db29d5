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

use super::validate::optional_field;

/// The schema's names that `validate::optional_field` does not hold.
const REQUIRED: [&str; 5] = ["timestamp", "level", "log_type", "importance", "attributes"];

/// `key` as the schema's own name, if it is one.
fn known(key: &str) -> Option<&'static str> {
    REQUIRED
        .iter()
        .find(|n| **n == key)
        .copied()
        .or_else(|| optional_field(key).map(|(field, _)| field.name()))
}

/// A key of a log object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// One of the schema's names.
    Known(&'static str),
    /// A name the schema does not have.
    Unknown(String),
}

impl Key {
    pub fn as_str(&self) -> &str {
        match self {
            Key::Known(name) => name,
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
        let mut unknown_seen = false;
        while let Some(key) = map.next_key::<KeySeed>()? {
            let value: Value = map.next_value()?;
            match key.0 {
                Key::Known(name) => {
                    // At most the schema's names and one other to look through.
                    let seen = fields
                        .iter()
                        .position(|(k, _)| matches!(k, Key::Known(n) if *n == name));
                    match seen {
                        Some(at) => fields[at].1 = value,
                        None => fields.push((Key::Known(name), value)),
                    }
                }
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
            Some(name) => Key::Known(name),
            None => Key::Unknown(s.to_owned()),
        }))
    }

    fn visit_string<E>(self, s: String) -> Result<KeySeed, E> {
        Ok(KeySeed(match known(&s) {
            Some(name) => Key::Known(name),
            None => Key::Unknown(s),
        }))
    }
}
