//! What every front door's mapping promises, checked the same way for each: an item either
//! maps to a log that keeps every field within its documented limit, or is refused alone
//! with a 4xx error naming why. Shared by the `otlp_request`, `es_bulk` and `loki_push`
//! targets.

use ledger_engine::{Field, NewLog};
use ledger_server::error::ApiError;
use ledger_server::ingest::pipeline::Mapped;
use ledger_server::ingest::validate::{
    MAX_ATTRIBUTES_BYTES, MAX_ERROR_MESSAGE_CHARS, MAX_ERROR_TYPE_CHARS, MAX_ID_CHARS,
    MAX_MESSAGE_CHARS, MAX_SHORT_CHARS, MAX_STACK_TRACE_CHARS,
};

/// The time of arrival the targets stamp untimed items with (2026-11-18).
pub const ARRIVAL_US: i64 = 1_795_000_000_000_000;

fn chars(log: &NewLog, f: Field) -> usize {
    log.get(f).map_or(0, |s| s.chars().count())
}

/// Checks one mapped item; `what` names the door in a failure.
pub fn check(m: &Mapped, what: &str) {
    match &m.log {
        Ok(log) => {
            assert!(
                chars(log, Field::Message) <= MAX_MESSAGE_CHARS,
                "{what}: message"
            );
            assert!(
                chars(log, Field::StackTrace) <= MAX_STACK_TRACE_CHARS,
                "{what}: stack_trace"
            );
            assert!(
                chars(log, Field::ErrorType) <= MAX_ERROR_TYPE_CHARS,
                "{what}: error_type"
            );
            assert!(
                chars(log, Field::ErrorMessage) <= MAX_ERROR_MESSAGE_CHARS,
                "{what}: error_message"
            );
            for f in [
                Field::Service,
                Field::Source,
                Field::Environment,
                Field::Release,
                Field::Platform,
                Field::Language,
            ] {
                assert!(
                    chars(log, f) <= MAX_SHORT_CHARS,
                    "{what}: {f:?} over its limit"
                );
            }
            for f in [Field::TraceId, Field::SpanId] {
                if let Some(id) = log.get(f) {
                    assert!(!id.is_empty() && id.len() <= MAX_ID_CHARS, "{what}: {f:?}");
                    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{what}: {f:?}");
                }
            }
            if let Some(a) = log.get(Field::Attributes) {
                assert!(a.len() <= MAX_ATTRIBUTES_BYTES, "{what}: attributes");
                let v: serde_json::Value =
                    serde_json::from_str(a).expect("stored attributes are JSON");
                assert!(v.is_object(), "{what}: stored attributes are not an object");
            }
        }
        Err(r) => {
            let e = ApiError::from(r.clone());
            let s = e.status();
            assert!(
                (400..500).contains(&s),
                "{what}: status {s} ({}) for a bad item",
                e.code()
            );
            assert!(!r.message.is_empty(), "{what}: a refusal without a reason");
        }
    }
}
