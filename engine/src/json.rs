//! The JSON form of a stored log, shared by the server's answers and `ledgerctl dump`.

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
