//! The Loki front door: decoding push bodies (JSON, or protobuf in a snappy block as
//! Promtail, Grafana Alloy, Fluent Bit and Vector send them) and mapping each entry onto
//! the Log schema. The mapping table is in `docs/shippers.md`; each row has a case in the
//! tests below.
//!
//! The protobuf messages are Loki's `push.proto`, declared here with `prost`'s derive (the
//! wire format is all that matters; Loki's generated Go code is gogoproto).

use ledger_engine::timefmt::format_micros;
use ledger_engine::Level;
use prost::Message;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::pipeline::{is_hex_id, level_name, Mapped};

/// Most entries one request may carry; past it, 413. It bounds the memory a small body of
/// tiny entries can turn into.
pub const MAX_ENTRIES: usize = 50_000;

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`: a stream's labels as Prometheus label-set text
/// (`{job="x", level="warn"}`) and its entries.
#[derive(Clone, PartialEq, Message)]
pub struct StreamAdapter {
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.EntryAdapter`. The line is read as bytes (same wire type as a string) so
/// that a line that is not UTF-8 costs only that line its odd bytes, not the whole push.
#[derive(Clone, PartialEq, Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(bytes = "vec", tag = "2")]
    pub line: Vec<u8>,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, Message)]
pub struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// How a push body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    /// Protobuf in a snappy block (not the framed stream format).
    Protobuf,
}

impl Format {
    /// The format a `Content-Type` names. None sent is protobuf, as in Loki; any other
    /// type is `None` (415).
    pub fn from_content_type(ct: Option<&str>) -> Option<Format> {
        let Some(ct) = ct else {
            return Some(Format::Protobuf);
        };
        let essence = ct.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/json") {
            Some(Format::Json)
        } else if essence.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Format::Protobuf)
        } else {
            None
        }
    }
}

/// A whole push refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The body cannot be decoded (400).
    #[error("{0}")]
    Invalid(String),
    /// The body is, or decompresses to, more than the limit (413).
    #[error("{0}")]
    TooLarge(String),
}

/// The entries of a push, mapped, and the name of each (`streams[0].values[3]`) for the
/// answer that lists the refused ones.
pub struct Push {
    pub items: Vec<Mapped>,
    pub names: Vec<EntryName>,
}

/// Where an entry sat in its push: written out (`streams[0].values[3]`) only for the few
/// that are refused, so an accepted entry costs no text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryName {
    pub stream: usize,
    pub entry: usize,
    pub format: Format,
}

impl std::fmt::Display for EntryName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = match self.format {
            Format::Json => "values",
            Format::Protobuf => "entries",
        };
        write!(f, "streams[{}].{list}[{}]", self.stream, self.entry)
    }
}

/// Decompresses a protobuf push body (a snappy block). The length the block claims is
/// checked against `limit` before anything is allocated.
pub fn decompress(body: &[u8], limit: usize) -> Result<Vec<u8>, PushError> {
    let not_snappy =
        |e: snap::Error| PushError::Invalid(format!("the body is not a snappy block: {e}"));
    let len = snap::raw::decompress_len(body).map_err(not_snappy)?;
    if len > limit {
        return Err(PushError::TooLarge(format!(
            "the body decompresses to {len} bytes, over the limit of {limit}"
        )));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(not_snappy)
}

/// Decodes and maps a push body (for protobuf, already [`decompress`]ed). `arrival_us`
/// stamps protobuf entries that carry no time.
pub fn decode(body: &[u8], format: Format, arrival_us: i64) -> Result<Push, PushError> {
    match format {
        Format::Json => decode_json(body),
        Format::Protobuf => {
            let req = PushRequest::decode(body).map_err(|e| {
                PushError::Invalid(format!("the body is not a Loki PushRequest: {e}"))
            })?;
            decode_proto(req, arrival_us)
        }
    }
}

fn too_many() -> PushError {
    PushError::TooLarge(format!(
        "a push may hold at most {MAX_ENTRIES} entries: split it into smaller ones"
    ))
}

fn decode_proto(req: PushRequest, arrival_us: i64) -> Result<Push, PushError> {
    let mut push = Push {
        items: Vec::new(),
        names: Vec::new(),
    };
    for (s, stream) in req.streams.into_iter().enumerate() {
        let labels = parse_labels(&stream.labels).map_err(|e| format!("labels: {e}"));
        for (e, entry) in stream.entries.into_iter().enumerate() {
            if push.items.len() == MAX_ENTRIES {
                return Err(too_many());
            }
            push.names.push(EntryName {
                stream: s,
                entry: e,
                format: Format::Protobuf,
            });
            let line = String::from_utf8(entry.line)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            let bytes = (line.len()
                + entry
                    .structured_metadata
                    .iter()
                    .map(|p| p.name.len() + p.value.len())
                    .sum::<usize>()) as u64;
            let labels = match &labels {
                Ok(l) => l.clone(),
                Err(why) => {
                    let raw =
                        || serde_json::json!({"labels": stream.labels, "line": line}).to_string();
                    push.items
                        .push(Mapped::refused("invalid_field", why.clone(), bytes).with_raw(raw));
                    continue;
                }
            };
            let micros = match entry.timestamp {
                Some(t) => t
                    .seconds
                    .saturating_mul(1_000_000)
                    .saturating_add(i64::from(t.nanos.div_euclid(1_000))),
                None => arrival_us,
            };
            let metadata = entry
                .structured_metadata
                .into_iter()
                .map(|p| (p.name, Value::String(p.value)))
                .collect();
            push.items.push(Mapped::from_schema(
                map_entry(
                    labels,
                    Entry {
                        micros,
                        line,
                        metadata,
                    },
                ),
                bytes,
            ));
        }
    }
    Ok(push)
}

#[derive(Deserialize)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(Deserialize)]
struct JsonStream {
    #[serde(default)]
    stream: Map<String, Value>,
    #[serde(default)]
    values: Vec<Value>,
}

fn decode_json(body: &[u8]) -> Result<Push, PushError> {
    let req: JsonPush = serde_json::from_slice(body)
        .map_err(|e| PushError::Invalid(format!("the body is not a Loki push (JSON): {e}")))?;
    let mut push = Push {
        items: Vec::new(),
        names: Vec::new(),
    };
    for (s, stream) in req.streams.into_iter().enumerate() {
        let labels: Result<Vec<(String, String)>, String> = stream
            .stream
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                _ => Err(format!("stream: label {k:?} must be a string")),
            })
            .collect();
        for (e, value) in stream.values.into_iter().enumerate() {
            if push.items.len() == MAX_ENTRIES {
                return Err(too_many());
            }
            push.names.push(EntryName {
                stream: s,
                entry: e,
                format: Format::Json,
            });
            let text = value.to_string();
            let bytes = text.len() as u64;
            let mapped = labels
                .clone()
                .and_then(|labels| Ok(map_entry(labels, json_entry(value)?)))
                .map_or_else(
                    |why| Mapped::refused("invalid_field", why, bytes),
                    |m| Mapped::from_schema(m, bytes),
                )
                .with_raw(|| text);
            push.items.push(mapped);
        }
    }
    Ok(push)
}

/// An entry of either encoding, before mapping.
struct Entry {
    micros: i64,
    line: String,
    metadata: Vec<(String, Value)>,
}

/// One `["<unix ns>", "<line>", {structured metadata}?]`.
fn json_entry(value: Value) -> Result<Entry, String> {
    const SHAPE: &str =
        "expected [\"<unix epoch in nanoseconds>\", \"<log line>\", {structured metadata}?]";
    let Value::Array(parts) = value else {
        return Err(format!("entry: {SHAPE}"));
    };
    let mut parts = parts.into_iter();
    let (Some(ts), Some(line), meta, None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("entry: {SHAPE}"));
    };
    let ns: Option<i64> = match &ts {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    let ns = ns.ok_or_else(|| {
        format!("timestamp: expected a Unix epoch in nanoseconds as a string, got {ts}")
    })?;
    let Value::String(line) = line else {
        return Err(format!("line: expected a string, got {line}"));
    };
    let metadata = match meta {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m.into_iter().collect(),
        Some(other) => {
            return Err(format!(
                "structured metadata: expected an object, got {other}"
            ))
        }
    };
    Ok(Entry {
        micros: ns.div_euclid(1_000),
        line,
        metadata,
    })
}

/// Maps one entry onto the Log schema's field names (the table in `docs/shippers.md`).
fn map_entry(mut labels: Vec<(String, String)>, entry: Entry) -> Map<String, Value> {
    let Entry {
        micros,
        line,
        metadata,
    } = entry;
    let mut m = Map::new();
    m.insert("timestamp".into(), format_micros(micros).into());
    m.insert("message".into(), line.into());
    m.insert("log_type".into(), "logger".into());
    if let Some(service) = take(&mut labels, &["service_name", "service", "job"]) {
        m.insert("service".into(), service.into());
    }
    // The first of these labels, in this order, whose value is a level Ledger knows; a label
    // it does not know (Loki's `detected_level="unknown"`) stays with the others, and no
    // known level is `info`.
    let known = ["level", "detected_level", "severity"]
        .iter()
        .find_map(|name| {
            let i = labels.iter().position(|(k, _)| k == name)?;
            level_name(&labels[i].1).map(|level| (i, level))
        });
    let level = match known {
        Some((i, level)) => {
            labels.remove(i);
            level
        }
        None => Level::Info,
    };
    m.insert("level".into(), level.as_str().into());
    let importance = if level >= Level::Error {
        "high"
    } else {
        "standard"
    };
    m.insert("importance".into(), importance.into());
    if let Some(env) = take(&mut labels, &["env", "environment"]) {
        m.insert("environment".into(), env.into());
    }
    let mut attributes = Map::new();
    for (k, v) in metadata {
        let field = match k.as_str() {
            "trace_id" => Some("trace_id"),
            "span_id" => Some("span_id"),
            _ => None,
        };
        match (field, &v) {
            // An id that is not hex would refuse the whole entry: keep it as an attribute.
            (Some(f), Value::String(s)) if is_hex_id(s) => {
                m.insert(f.into(), v);
            }
            _ => {
                attributes.insert(k, v);
            }
        }
    }
    if !labels.is_empty() {
        let labels = labels.into_iter().map(|(k, v)| (k, Value::String(v)));
        attributes.insert("labels".into(), Value::Object(labels.collect()));
    }
    if !attributes.is_empty() {
        m.insert("attributes".into(), Value::Object(attributes));
    }
    m
}

/// Removes the first label named in `names` (in the order of `names`) and returns its value.
fn take(labels: &mut Vec<(String, String)>, names: &[&str]) -> Option<String> {
    let i = names
        .iter()
        .find_map(|n| labels.iter().position(|(k, _)| k == n))?;
    Some(labels.remove(i).1)
}

/// Parses Prometheus label-set text: `{name="value", ...}`. Values are double-quoted with
/// Go's escapes (what Prometheus's `Labels.String` writes through `strconv.Quote`):
/// `\\ \" \n \t \r \a \b \f \v`, `\xNN`, `\NNN` (octal), `\uNNNN`, `\UNNNNNNNN`. Names are
/// `[A-Za-z_][A-Za-z0-9_]*`, each at most once; a trailing comma is accepted.
pub fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut p = Cursor {
        b: text.as_bytes(),
        i: 0,
    };
    p.skip_ws();
    p.expect(b'{')?;
    let mut out: Vec<(String, String)> = Vec::new();
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let name = p.name()?;
        p.skip_ws();
        p.expect(b'=')?;
        p.skip_ws();
        let value = p.quoted()?;
        if out.iter().any(|(k, _)| *k == name) {
            return Err(format!("label {name:?} appears twice"));
        }
        out.push((name, value));
        p.skip_ws();
        if p.eat(b',') {
            continue;
        }
        p.expect(b'}')?;
        break;
    }
    p.skip_ws();
    if p.i != p.b.len() {
        return Err(format!("unexpected text after '}}' at byte {}", p.i));
    }
    Ok(out)
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            return Ok(());
        }
        Err(match self.peek() {
            Some(got) => format!(
                "expected '{}' at byte {}, found '{}'",
                c as char,
                self.i,
                got.escape_ascii()
            ),
            None => format!("expected '{}' at byte {}, found the end", c as char, self.i),
        })
    }

    fn name(&mut self) -> Result<String, String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c == b'_' || c.is_ascii_alphanumeric())
        {
            self.i += 1;
        }
        let name = &self.b[start..self.i];
        if name.is_empty() || name[0].is_ascii_digit() {
            return Err(format!("expected a label name at byte {start}"));
        }
        Ok(String::from_utf8_lossy(name).into_owned())
    }

    /// A double-quoted value; the bytes it spells, read as UTF-8 (invalid bytes replaced).
    fn quoted(&mut self) -> Result<String, String> {
        let start = self.i;
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(format!("the value opened at byte {start} is not closed"));
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => self.escape(&mut out)?,
                b'\n' => return Err(format!("a raw newline in the value at byte {start}")),
                _ => out.push(c),
            }
        }
        Ok(String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let at = self.i - 1;
        let Some(c) = self.peek() else {
            return Err(format!("an escape at byte {at} is cut off"));
        };
        self.i += 1;
        let simple = match c {
            b'\\' => Some(b'\\'),
            b'"' => Some(b'"'),
            b'\'' => Some(b'\''),
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'v' => Some(0x0b),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            return Ok(());
        }
        let bad = || format!("a malformed escape at byte {at}");
        match c {
            b'x' => out.push(u8::try_from(self.digits(2, 16).ok_or_else(bad)?).map_err(|_| bad())?),
            b'0'..=b'7' => {
                self.i -= 1;
                out.push(u8::try_from(self.digits(3, 8).ok_or_else(bad)?).map_err(|_| bad())?);
            }
            b'u' | b'U' => {
                let n = if c == b'u' { 4 } else { 8 };
                let ch = char::from_u32(self.digits(n, 16).ok_or_else(bad)?).ok_or_else(bad)?;
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
            }
            _ => return Err(bad()),
        }
        Ok(())
    }

    /// Exactly `n` digits in `radix`, as a number.
    fn digits(&mut self, n: usize, radix: u32) -> Option<u32> {
        let s = self.b.get(self.i..self.i + n)?;
        let v = u32::from_str_radix(std::str::from_utf8(s).ok()?, radix).ok()?;
        if !s.iter().all(|c| (*c as char).is_digit(radix)) {
            return None;
        }
        self.i += n;
        Some(v)
    }
}

#[cfg(test)]
mod tests;
