//! The JSON form of a stored log, shared by the server's answers and `ledgerctl dump`.

use serde_json::{Map, Value};

use crate::model::{Field, LogRecord};
use crate::timefmt::format_micros;

/// A stored log as JSON: every field the client sent (absent optional fields omitted), plus
/// `id`, `project_id`, `ingested_at` and, for errors, `error_fingerprint`.
pub fn record_json(r: &LogRecord, project_id: &str) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(r.id().to_string()));
    m.insert("project_id".into(), Value::String(project_id.to_owned()));
    m.insert(
        "timestamp".into(),
        Value::String(format_micros(r.log.timestamp)),
    );
    m.insert(
        "ingested_at".into(),
        Value::String(format_micros(r.ingested_at)),
    );
    m.insert("level".into(), Value::String(r.log.level.as_str().into()));
    m.insert(
        "log_type".into(),
        Value::String(r.log.log_type.as_str().into()),
    );
    m.insert(
        "importance".into(),
        Value::String(r.log.importance.as_str().into()),
    );
    for f in Field::ALL {
        let Some(v) = r.get(f) else { continue };
        let value = if f == Field::Attributes {
            serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()))
        } else {
            Value::String(v.to_owned())
        };
        m.insert(f.name().into(), value);
    }
    Value::Object(m)
}
