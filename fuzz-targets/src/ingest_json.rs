//! The ingest pipeline's body stages on arbitrary bytes: `body::decode` (gzip/zstd under a
//! limit), `parse::batch` (JSON envelope or NDJSON) and `validate::validate` (the Log schema).
//! Invariants: no panic; every refusal is a 4xx error with a code; a decompressed body never
//! exceeds its limit; a batch holds 1..=MAX_BATCH logs; a log that validates keeps every
//! field within its documented limit; every byte a body claimed from the server's body
//! budget is given back once the body and what was parsed from it are dropped.
//!
//! The first byte picks the framing and the encoding, the rest is the body.
use bytes::Bytes;
use ledger_engine::Field;
use ledger_server::error::ApiError;
use ledger_server::ingest::body::{decode, Body, BodyBudget, Encoding};
use ledger_server::ingest::parse::{batch, Framing, MAX_BATCH};
use ledger_server::ingest::validate::{
    validate, MAX_ATTRIBUTES_BYTES, MAX_ID_CHARS, MAX_MESSAGE_CHARS, MAX_SHORT_CHARS,
    MAX_STACK_TRACE_CHARS,
};

/// Decompressed-size limit for the fuzzer: small, so bombs are cheap to refuse.
const LIMIT: usize = 1 << 20;

fn assert_client_error(e: &ApiError) {
    let s = e.status();
    assert!(
        (400..500).contains(&s),
        "status {s} ({}) for bad input",
        e.code()
    );
}

fn chars(log: &ledger_engine::NewLog, f: Field) -> usize {
    log.get(f).map_or(0, |s| s.chars().count())
}

fn check_log(raw: &str) {
    match validate(raw) {
        Ok(log) => {
            assert!(chars(&log, Field::Message) <= MAX_MESSAGE_CHARS);
            assert!(chars(&log, Field::StackTrace) <= MAX_STACK_TRACE_CHARS);
            for f in [
                Field::Service,
                Field::Source,
                Field::Environment,
                Field::Release,
                Field::Platform,
                Field::Language,
            ] {
                assert!(chars(&log, f) <= MAX_SHORT_CHARS, "{f:?} over its limit");
            }
            for f in [Field::TraceId, Field::SpanId] {
                if let Some(id) = log.get(f) {
                    assert!(!id.is_empty() && id.len() <= MAX_ID_CHARS);
                    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
                }
            }
            if let Some(a) = log.get(Field::Attributes) {
                assert!(a.len() <= MAX_ATTRIBUTES_BYTES);
                let v: serde_json::Value =
                    serde_json::from_str(a).expect("stored attributes are JSON");
                assert!(v.is_object(), "stored attributes are not an object");
            }
        }
        Err(r) => assert_client_error(&ApiError::from(r)),
    }
}

/// Checks one input; panics on a broken invariant.
pub fn run(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let framing = if mode & 1 == 0 {
        Framing::Json
    } else {
        Framing::NdJson
    };
    let encoding = match (mode >> 1) % 4 {
        1 => Encoding::Gzip,
        2 => Encoding::Zstd,
        _ => Encoding::Identity,
    };
    // Room for the raw body and its decoded form at their limits: only the limit refuses.
    let budget = BodyBudget::new(4 * LIMIT + body.len());
    let raw = budget
        .admit(Bytes::copy_from_slice(body))
        .expect("the budget holds the raw body");
    check_body(decode(raw, encoding, LIMIT), framing);
    assert_eq!(budget.in_use(), 0, "a body's claim outlived it");
}

fn check_body(decoded: Result<Body, ApiError>, framing: Framing) {
    let body = match decoded {
        Ok(b) => b,
        Err(e) => {
            assert_client_error(&e);
            return;
        }
    };
    assert!(body.len() <= LIMIT, "decoded body over the limit");
    match batch(&body, framing) {
        Ok(items) => {
            assert!(!items.is_empty() && items.len() <= MAX_BATCH);
            for raw in items {
                check_log(raw);
            }
        }
        Err(e) => assert_client_error(&e),
    }
    // Each body is also one log, as /ingest/single reads it.
    if let Ok(text) = std::str::from_utf8(&body) {
        check_log(text);
    }
}
