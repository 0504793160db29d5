//! One source document of a `_bulk` request, read in one pass.
//!
//! The mapping table reads about twenty names, each flat (`log.level`) or nested
//! (`{"log": {"level": …}}`), in an order of preference. Looking each candidate up in a
//! parsed `Map` hashed a key some forty times a document, and building a `Map` for each
//! nested object (`service`, `trace`, `span`, `error`) cost as much again (profile in
//! BENCHMARKS.md, "Front doors"). Here the document is read once: every top-level key is
//! kept in order, each name the table reads is noted by position as it goes by, and the
//! objects under the table's prefixes (`log`, `error`, `service`, `trace`, `span`) are kept
//! as lists of their keys. A rule then finds its field by position, with no hashing, and
//! what no rule took becomes `attributes`, in the order it was sent.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The top-level names the mapping table reads, flat or as a prefix of a nested name.
const NAMES: [&str; 22] = [
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
];

/// The position of `key` in [`NAMES`].
fn slot_of(key: &str) -> Option<usize> {
    // Comparing lengths first, this is a few compares a key: no hashing.
    NAMES.iter().position(|n| *n == key)
}

/// Whether an object under this top-level name holds fields the table reads.
fn is_prefix(key: &str) -> bool {
    matches!(key, "log" | "error" | "service" | "trace" | "span")
}

/// Whether the table reads `key` inside an object under a prefix (`log.level` → `level`).
fn is_child_name(key: &str) -> bool {
    matches!(
        key,
        "level" | "type" | "message" | "stack_trace" | "name" | "environment" | "version" | "id"
    )
}

/// A key of an object under a prefix and its value (`None` once a rule took it).
type Child = (String, Option<Value>);

/// One top-level key of the document.
#[derive(Debug)]
struct Entry {
    key: String,
    /// `None` once a rule took it, or when the value is kept as `children`.
    value: Option<Value>,
    /// The keys of an object under a prefix, in order.
    children: Option<Vec<Child>>,
}

/// Where a field was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loc {
    /// A top-level key, by position.
    Top(usize),
    /// A key inside a prefix's object: the prefix's position, then the key's.
    Child(usize, usize),
}

/// A source document, read in one pass (see the module doc).
#[derive(Debug)]
pub struct Source {
    entries: Vec<Entry>,
    /// The position in `entries` of each of [`NAMES`] present.
    slots: [Option<usize>; NAMES.len()],
}

impl Source {
    /// The value of a dotted `name` (one of the table's) and where it is: the flat key if
    /// present, else the key after the dot inside the object under the part before it.
    /// A null counts as absent, as does a field a rule already took.
    pub fn locate(&self, name: &str) -> Option<(Loc, &Value)> {
        if let Some(i) = slot_of(name).and_then(|s| self.slots[s]) {
            if let Some(v) = self.entries[i].value.as_ref().filter(|v| !v.is_null()) {
                return Some((Loc::Top(i), v));
            }
        }
        let (head, tail) = name.split_once('.')?;
        let i = slot_of(head).and_then(|s| self.slots[s])?;
        let children = self.entries[i].children.as_ref()?;
        // Only the table's child names are kept unique as the document is read (see
        // `ChildrenVisitor`), and only those are looked for.
        let j = children.iter().position(|(k, _)| k == tail)?;
        let v = children[j].1.as_ref().filter(|v| !v.is_null())?;
        Some((Loc::Child(i, j), v))
    }

    /// The first of `names` present whose value `accept`s, with where it is and its value.
    pub fn first<'n>(
        &self,
        names: &[&'n str],
        accept: impl Fn(&Value) -> bool,
    ) -> Option<(&'n str, Loc, &Value)> {
        names.iter().find_map(|name| {
            let (loc, v) = self.locate(name)?;
            accept(v).then_some((*name, loc, v))
        })
    }

    /// Takes the value at `loc` out of the document.
    pub fn take(&mut self, loc: Loc) -> Option<Value> {
        match loc {
            Loc::Top(i) => self.entries.get_mut(i)?.value.take(),
            Loc::Child(i, j) => self
                .entries
                .get_mut(i)?
                .children
                .as_mut()?
                .get_mut(j)?
                .1
                .take(),
        }
    }

    /// Takes the first of `names` that holds a string.
    pub fn take_string(&mut self, names: &[&str]) -> Option<String> {
        let (_, loc, _) = self.first(names, Value::is_string)?;
        match self.take(loc)? {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// What no rule took, in the order it was sent. An object under a prefix that a rule
    /// emptied is dropped; one sent empty is kept.
    pub fn into_attributes(self) -> Map<String, Value> {
        let mut out = Map::new();
        for e in self.entries {
            match (e.value, e.children) {
                (Some(v), _) => {
                    out.insert(e.key, v);
                }
                (None, Some(children)) => {
                    let sent_empty = children.is_empty();
                    let rest: Map<String, Value> = children
                        .into_iter()
                        .filter_map(|(k, v)| Some((k, v?)))
                        .collect();
                    if sent_empty || !rest.is_empty() {
                        out.insert(e.key, Value::Object(rest));
                    }
                }
                (None, None) => {}
            }
        }
        out
    }

    fn put(&mut self, entry: Entry) {
        match slot_of(&entry.key) {
            // A key sent twice keeps its first place and its last value, as a `Map` does.
            Some(s) => match self.slots[s] {
                Some(i) => self.entries[i] = entry,
                None => {
                    self.slots[s] = Some(self.entries.len());
                    self.entries.push(entry);
                }
            },
            // Other keys sent twice are merged the same way by `into_attributes`.
            None => self.entries.push(entry),
        }
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Source, D::Error> {
        d.deserialize_map(SourceVisitor)
    }
}

struct SourceVisitor;

impl<'de> Visitor<'de> for SourceVisitor {
    type Value = Source;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Source, A::Error> {
        let mut source = Source {
            entries: Vec::with_capacity(map.size_hint().unwrap_or(8).min(64)),
            slots: [None; NAMES.len()],
        };
        while let Some(key) = map.next_key::<String>()? {
            let entry = if is_prefix(&key) {
                match map.next_value::<Node>()? {
                    Node::Object(children) => Entry {
                        key,
                        value: None,
                        children: Some(children),
                    },
                    Node::Other(v) => Entry {
                        key,
                        value: Some(v),
                        children: None,
                    },
                }
            } else {
                Entry {
                    key,
                    value: Some(map.next_value()?),
                    children: None,
                }
            };
            source.put(entry);
        }
        Ok(source)
    }
}

/// The value under a prefix: an object as the list of its keys, anything else as a value.
enum Node {
    Object(Vec<Child>),
    Other(Value),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut children: Vec<Child> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = Some(map.next_value::<Value>()?);
            // The table's child names stay unique (first place, last value) so `locate`
            // finds the one a `Map` would hold; `into_attributes` merges the rest.
            let seen = is_child_name(&key)
                .then(|| children.iter().position(|(k, _)| *k == key))
                .flatten();
            match seen {
                Some(j) => children[j].1 = value,
                None => children.push((key, value)),
            }
        }
        Ok(Node::Object(children))
    }

    fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
        Ok(Node::Other(Value::Bool(b)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Node, E> {
        Ok(Node::Other(Value::Number(n.into())))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Node, E> {
        Ok(Node::Other(Value::Number(n.into())))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Node, E> {
        Ok(Node::Other(
            Number::from_f64(n).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_str<E>(self, s: &str) -> Result<Node, E> {
        Ok(Node::Other(Value::String(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Node, E> {
        Ok(Node::Other(Value::String(s)))
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Other(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Other(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            items.push(v);
        }
        Ok(Node::Other(Value::Array(items)))
    }
}
