//! The Elasticsearch front door: decoding a `_bulk` body (NDJSON action and source lines),
//! mapping each source document onto the Log schema, and the bodies Elasticsearch clients
//! expect back (the bulk answer, the node info of `GET /`, the error shape). The mapping
//! table is in `docs/shippers.md`; each row has a case in the tests below.
//!
//! ECS names come first, then common ones. An ECS dotted name may arrive flat
//! (`{"log.level": "warn"}`) or nested (`{"log": {"level": "warn"}}`); both are read, and
//! a field that was mapped is taken out of the document, so `attributes` holds only what
//! no Ledger field took, nested as it was sent.

use ledger_engine::timefmt::{format_micros, parse_rfc3339};
use ledger_engine::Level;
use serde::Deserialize;
use serde_json::error::Category;
use serde_json::{json, Map, Value};

use super::pipeline::{is_hex_id, level_name, Mapped};
use crate::error::ItemError;
use source::Source;

/// The Elasticsearch version Ledger answers as: clients pick their wire format from it.
pub const VERSION: &str = "8.17.0";

/// Most actions one request may carry; past it, 413 (Beats split a batch on 413). It bounds
/// the memory a small body of tiny documents can turn into.
pub const MAX_ACTIONS: usize = 50_000;

/// A bulk operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Index,
    Create,
    Delete,
    Update,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "index" => Op::Index,
            "create" => Op::Create,
            "delete" => Op::Delete,
            "update" => Op::Update,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Index => "index",
            Op::Create => "create",
            Op::Delete => "delete",
            Op::Update => "update",
        }
    }
}

/// One action of a bulk request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub op: Op,
    /// The action's `_index`, else the path's.
    pub index: String,
    /// The client's `_id`, answered back for the refused `delete` and `update`.
    pub id: Option<String>,
    /// For `index` and `create`: the position of its document in [`Bulk::items`].
    pub item: Option<usize>,
}

/// A decoded bulk request: every action in order, and the documents to store.
pub struct Bulk {
    pub actions: Vec<Action>,
    pub items: Vec<Mapped>,
}

/// A whole request refused, as Elasticsearch would refuse it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct BulkError {
    pub status: u16,
    /// Elasticsearch's exception type (`illegal_argument_exception`, …).
    pub kind: &'static str,
    pub reason: String,
}

impl BulkError {
    fn malformed(reason: String) -> BulkError {
        BulkError {
            status: 400,
            kind: "illegal_argument_exception",
            reason,
        }
    }
}

/// Decodes a `_bulk` body and maps its documents. `path_index` is the `{index}` of
/// `/{index}/_bulk`; `arrival_us` stamps documents that carry no time.
pub fn decode(body: &[u8], path_index: Option<&str>, arrival_us: i64) -> Result<Bulk, BulkError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| BulkError::malformed("the bulk body is not valid UTF-8".into()))?;
    // The newline that ends the last line starts no line of its own.
    let text = text.strip_suffix('\n').unwrap_or(text);
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l));
    let mut bulk = Bulk {
        actions: Vec::new(),
        items: Vec::new(),
    };
    while let Some((n, line)) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        if bulk.actions.len() == MAX_ACTIONS {
            return Err(BulkError {
                status: 413,
                kind: "illegal_argument_exception",
                reason: format!(
                    "a bulk request may hold at most {MAX_ACTIONS} actions: split it into smaller ones"
                ),
            });
        }
        let (op, meta) = action_line(n, line)?;
        let index = match meta.index {
            Some(Value::String(s)) => s,
            Some(v) if !v.is_null() => {
                return Err(BulkError::malformed(format!(
                    "Malformed action/metadata line [{n}]: _index must be a string"
                )))
            }
            _ => path_index.map(str::to_owned).ok_or_else(|| BulkError {
                status: 400,
                kind: "action_request_validation_exception",
                reason: format!("Validation Failed: 1: index is missing (line [{n}]);"),
            })?,
        };
        let id = match meta.id {
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(x)) => Some(x.to_string()),
            _ => None,
        };
        let mut item = None;
        if op != Op::Delete {
            let Some((_, source)) = lines.next() else {
                return Err(BulkError::malformed(format!(
                    "Malformed action/metadata line [{n}]: the {} action has no source line after it",
                    op.as_str()
                )));
            };
            if matches!(op, Op::Index | Op::Create) {
                item = Some(bulk.items.len());
                bulk.items.push(document(source, &index, arrival_us));
            }
        }
        bulk.actions.push(Action {
            op,
            index,
            id,
            item,
        });
    }
    if bulk.actions.is_empty() {
        return Err(BulkError {
            status: 400,
            kind: "action_request_validation_exception",
            reason: "Validation Failed: 1: no requests added;".into(),
        });
    }
    Ok(bulk)
}

/// What an action line says about its document (other metadata is ignored).
#[derive(Debug, Default, Deserialize)]
struct Meta {
    #[serde(rename = "_index")]
    index: Option<Value>,
    #[serde(rename = "_id")]
    id: Option<Value>,
}

/// Parses line `n` as an action: `{"<op>": {metadata}}`.
fn action_line(n: usize, line: &str) -> Result<(Op, Meta), BulkError> {
    // The common line, read straight into its parts; anything unusual (or wrong) takes
    // the general path below, which also words the refusal.
    if let Ok(ActionLine(op, meta)) = serde_json::from_str(line) {
        if let Some(op) = Op::parse(&op) {
            return Ok((op, meta));
        }
    }
    let bad =
        |why: String| BulkError::malformed(format!("Malformed action/metadata line [{n}], {why}"));
    let value: Value =
        serde_json::from_str(line).map_err(|e| bad(format!("it is not valid JSON: {e}")))?;
    let Value::Object(top) = value else {
        return Err(bad("expected a JSON object".into()));
    };
    if top.len() != 1 {
        return Err(bad(format!(
            "expected one field, [create], [delete], [index] or [update], but found {}",
            top.len()
        )));
    }
    let Some((name, meta)) = top.into_iter().next() else {
        return Err(bad("expected a JSON object".into()));
    };
    let op = Op::parse(&name).ok_or_else(|| {
        bad(format!(
            "expected field [create], [delete], [index] or [update] but found [{name}]"
        ))
    })?;
    match meta {
        Value::Object(mut m) => Ok((
            op,
            Meta {
                index: m.remove("_index"),
                id: m.remove("_id"),
            },
        )),
        _ => Err(bad(format!("the value of [{name}] must be an object"))),
    }
}

/// An action line as it usually comes: one field, the operation, holding an object.
struct ActionLine(String, Meta);

impl<'de> Deserialize<'de> for ActionLine {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ActionLine, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ActionLine;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of one field")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ActionLine, A::Error> {
                use serde::de::{Error, IgnoredAny};
                let Some(op) = map.next_key::<String>()? else {
                    return Err(A::Error::custom("no operation"));
                };
                let meta = map.next_value::<Meta>()?;
                if map.next_key::<IgnoredAny>()?.is_some() {
                    return Err(A::Error::custom("more than one operation"));
                }
                Ok(ActionLine(op, meta))
            }
        }
        d.deserialize_map(V)
    }
}

/// One source line, mapped (or refused, naming the field).
fn document(source: &str, index: &str, arrival_us: i64) -> Mapped {
    let bytes = source.len() as u64;
    let mut de = serde_json::Deserializer::from_str(source);
    let read = Source::deserialize(&mut de).and_then(|doc| de.end().map(|()| doc));
    let mapped = match read {
        Ok(doc) => match map_source(doc, index, arrival_us) {
            Ok(m) => Mapped::from_schema(m, bytes),
            Err(why) => Mapped::refused("invalid_field", why, bytes),
        },
        // Well-formed JSON of the wrong type: an array, a string, …
        Err(e) if e.classify() == Category::Data => Mapped::refused(
            "invalid_field",
            "the document must be a JSON object".into(),
            bytes,
        ),
        Err(e) => Mapped::refused(
            "invalid_json",
            format!("the document is not valid JSON: {e}"),
            bytes,
        ),
    };
    mapped.with_raw(|| source.to_owned())
}

/// Maps a source document onto the Log schema's field names (the table in the module doc).
/// An error names the document's field.
pub fn map_source(
    mut doc: Source,
    index: &str,
    arrival_us: i64,
) -> Result<Map<String, Value>, String> {
    let mut m = Map::new();
    let micros = match doc.first(&["@timestamp", "timestamp", "time"], |v| {
        v.is_string() || v.is_number()
    }) {
        Some((name, loc, _)) => {
            let v = doc.take(loc).unwrap_or(Value::Null);
            time_of(&v).ok_or_else(|| {
                format!("{name}: expected an RFC 3339 time (2026-11-22T12:26:36.123Z) or epoch milliseconds, got {v}")
            })?
        }
        None => arrival_us,
    };
    m.insert("timestamp".into(), format_micros(micros).into());
    if let Some(msg) = doc.take_string(&["message", "msg", "log"]) {
        m.insert("message".into(), msg.into());
    }
    // The first level given decides; one Ledger does not know is `info`, and stays in
    // `attributes` so nothing the shipper sent is lost.
    let level = match doc.first(&["log.level", "level", "severity"], Value::is_string) {
        Some((_, loc, v)) => match v.as_str().and_then(level_name) {
            Some(level) => {
                doc.take(loc);
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
        if let Some(s) = doc.take_string(&[from]) {
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
        if let Some(s) = doc.take_string(names) {
            m.insert(to.into(), s.into());
        }
    }
    // An id that is not hex (X-Ray's, say) would refuse the whole log: keep it as an
    // attribute instead.
    for (from, to) in [("trace.id", "trace_id"), ("span.id", "span_id")] {
        if let Some((_, loc, _)) = doc.first(&[from], |v| v.as_str().is_some_and(is_hex_id)) {
            if let Some(v) = doc.take(loc) {
                m.insert(to.into(), v);
            }
        }
    }
    m.insert("source".into(), index.into());
    let attributes = doc.into_attributes();
    if !attributes.is_empty() {
        m.insert("attributes".into(), Value::Object(attributes));
    }
    Ok(m)
}

/// A time as a shipper sends it: RFC 3339 (a missing offset is UTC, as in Elasticsearch's
/// `strict_date_optional_time`), a date alone, or epoch milliseconds as a number or digits.
fn time_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => millis(n.as_f64()?),
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                return millis(s.parse::<f64>().ok()?);
            }
            parse_rfc3339(s)
                .or_else(|| parse_rfc3339(&format!("{s}Z")))
                .or_else(|| (s.len() == 10).then(|| parse_rfc3339(&format!("{s}T00:00:00Z")))?)
        }
        _ => None,
    }
}

/// Epoch milliseconds to microseconds, for times between years 0 and 9999.
fn millis(ms: f64) -> Option<i64> {
    const MIN_MS: f64 = -62_167_219_200_000.0;
    const MAX_MS: f64 = 253_402_300_799_999.0;
    (ms.is_finite() && (MIN_MS..=MAX_MS).contains(&ms)).then(|| (ms * 1000.0).round() as i64)
}

/// What became of each stored document: its Ledger id, or why it was refused.
pub type Outcome = Result<String, ItemError>;

/// Sorts a store's ids and errors back into one outcome per document, by position.
pub fn outcomes(total: usize, ids: Vec<(usize, String)>, errors: Vec<ItemError>) -> Vec<Outcome> {
    let mut out: Vec<Option<Outcome>> = (0..total).map(|_| None).collect();
    for (i, id) in ids {
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(Ok(id));
        }
    }
    for e in errors {
        if let Some(slot) = out.get_mut(e.index) {
            *slot = Some(Err(e));
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(index, o)| {
            o.unwrap_or_else(|| {
                Err(ItemError {
                    index,
                    code: "invalid_field",
                    message: "the document was not stored".into(),
                })
            })
        })
        .collect()
}

/// The `_bulk` answer: `{"took", "errors", "items"}`, one item per action in order, as
/// JSON text. Written straight to bytes, since only `_index`, `_id` and a refusal's reason
/// vary: a `serde_json::Value` tree per item was a quarter of this door's CPU (profile in
/// BENCHMARKS.md, "Front doors").
pub fn answer(actions: &[Action], outcomes: &[Outcome], took_ms: u64) -> Vec<u8> {
    let stored = |a: &Action| {
        matches!(a.op, Op::Index | Op::Create)
            && matches!(a.item.and_then(|i| outcomes.get(i)), Some(Ok(_)))
    };
    let errors = !actions.iter().all(stored);
    let mut out = Vec::with_capacity(64 + actions.len() * 220);
    out.extend_from_slice(
        format!("{{\"took\":{took_ms},\"errors\":{errors},\"items\":[").as_bytes(),
    );
    for (n, a) in actions.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(a.op.as_str().as_bytes());
        out.extend_from_slice(b"\":{\"_index\":");
        json_string(&mut out, &a.index);
        match (a.op, a.item.and_then(|i| outcomes.get(i))) {
            (Op::Index | Op::Create, Some(Ok(id))) => {
                out.extend_from_slice(b",\"_id\":");
                json_string(&mut out, id);
                out.extend_from_slice(
                    b",\"_version\":1,\"result\":\"created\",\
                      \"_shards\":{\"total\":1,\"successful\":1,\"failed\":0},\
                      \"_seq_no\":0,\"_primary_term\":1,\"status\":201",
                );
            }
            (Op::Index | Op::Create, Some(Err(e))) => {
                // Over the quota is "retry later" to a shipper, not "this is malformed".
                let (status, kind) = match e.code {
                    "quota_exceeded" => (429, "es_rejected_execution_exception"),
                    _ => (400, "mapper_parsing_exception"),
                };
                error_fields(&mut out, status, kind, &e.message);
            }
            (op, _) => {
                out.extend_from_slice(b",\"_id\":");
                match &a.id {
                    Some(id) => json_string(&mut out, id),
                    None => out.extend_from_slice(b"null"),
                }
                let reason = format!(
                    "logs are immutable: the {} action is not supported (only index and create)",
                    op.as_str()
                );
                // Every failed item has the one error type the API promises.
                error_fields(&mut out, 400, "mapper_parsing_exception", &reason);
            }
        }
        out.extend_from_slice(b"}}");
    }
    out.extend_from_slice(b"]}");
    out
}

/// `,"status":…,"error":{"type":…,"reason":…}` of a refused item.
fn error_fields(out: &mut Vec<u8>, status: u16, kind: &str, reason: &str) {
    out.extend_from_slice(format!(",\"status\":{status},\"error\":{{\"type\":").as_bytes());
    json_string(out, kind);
    out.extend_from_slice(b",\"reason\":");
    json_string(out, reason);
    out.push(b'}');
}

/// `s` as a JSON string, quoted and escaped.
fn json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a `&str` to a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Elasticsearch's error body: `{"error": {"root_cause", "type", "reason"}, "status"}`.
pub fn error_body(status: u16, kind: &str, reason: &str) -> Value {
    json!({
        "error": {
            "root_cause": [{"type": kind, "reason": reason}],
            "type": kind,
            "reason": reason,
        },
        "status": status,
    })
}

/// The body of `GET /_license`: a basic licence that never expires, in Elasticsearch's words.
pub fn license_info() -> Value {
    json!({
        "license": {
            "status": "active",
            "uid": "6b6c6564-6765-4c65-8467-657200000001",
            "type": "basic",
            "issue_date": "2026-01-01T00:00:00.000Z",
            "issue_date_in_millis": 1_767_225_600_000u64,
            "max_nodes": 1000,
            "max_resource_units": null,
            "issued_to": "ledger",
            "issuer": "elasticsearch",
            "start_date_in_millis": -1,
        }
    })
}

/// The body of `GET /`, as an Elasticsearch 8 node answers it.
pub fn node_info() -> Value {
    json!({
        "name": "ledger",
        "cluster_name": "ledger",
        "cluster_uuid": "bGVkZ2VyLWxvZy1wbGF0Zm9ybQ",
        "version": {
            "number": VERSION,
            "build_flavor": "default",
            "build_type": "tar",
            "build_snapshot": false,
            "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    })
}

mod source;
#[cfg(test)]
mod tests;
