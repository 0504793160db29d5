//! A native log's JSON object, read in one pass without building a `Map`.
//!
//! Parsing a log into a `serde_json::Map` allocated a `String` for every key and hashed it
//! into the map, only for validation to walk the map once in order and move the values
//! out. Here each key is recognised as it is read (the Log schema's names need no
//! allocation) and kept with its value in order, so validation walks a plain list. A key
//! sent twice keeps its first place and its last value, as a `Map` would; of the keys the
//! schema does not know only the first is kept, since it alone can be the first rule broken.
//!
//! [`LogObject::read_lending_attributes`] leaves `attributes` as the text that was sent (a
//! `RawValue` lent from the input), for `attributes::of_text` to check without a `Value`.

use std::fmt;

use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
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
pub struct LogObject<'a> {
    pub fields: Vec<(Key, Value)>,
    /// Read lending attributes: their text as sent (the last sent, if twice); their place
    /// in `fields` then holds `null`.
    pub attributes: Option<&'a RawValue>,
}

impl<'a> LogObject<'a> {
    /// Reads a log object with every value parsed.
    pub fn read(raw: &'a str) -> serde_json::Result<LogObject<'a>> {
        Self::read_with(raw, false)
    }

    /// Reads a log object, its attributes left as text.
    pub fn read_lending_attributes(raw: &'a str) -> serde_json::Result<LogObject<'a>> {
        Self::read_with(raw, true)
    }

    fn read_with(raw: &'a str, lend: bool) -> serde_json::Result<LogObject<'a>> {
        let mut de = serde_json::Deserializer::from_str(raw);
        let object = ObjectVisitor { lend }.deserialize(&mut de)?;
        de.end()?;
        Ok(object)
    }
}

struct ObjectVisitor {
    /// Leave `attributes` as text.
    lend: bool,
}

impl<'de> DeserializeSeed<'de> for ObjectVisitor {
    type Value = LogObject<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<LogObject<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = LogObject<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LogObject<'de>, A::Error> {
        let mut fields: Vec<(Key, Value)> = Vec::with_capacity(16);
        let mut attributes = None;
        let mut unknown_seen = false;
        while let Some(key) = map.next_key::<KeySeed>()? {
            let value: Value = if self.lend && key.0 == Key::Known("attributes") {
                attributes = Some(map.next_value::<&'de RawValue>()?);
                Value::Null
            } else {
                map.next_value()?
            };
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
        Ok(LogObject { fields, attributes })
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
