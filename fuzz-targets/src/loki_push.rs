//! The Loki front door on arbitrary bytes, along each of its paths: as a snappy block
//! (`ingest::loki::decompress` under a limit, then `decode` as protobuf, the route's
//! path), as protobuf already decompressed, and as JSON. Invariants: no panic; a snappy
//! block never decompresses past its limit; a decoded push has one `Mapped` and one name
//! per entry (protobuf: every entry of the `PushRequest`, refused as too large past
//! `MAX_ENTRIES`; JSON: every element of every stream's `values`), each a log within the
//! schema's limits or a 4xx refusal of that entry alone.
use crate::mapped;

use ledger_server::ingest::loki::{
    decode, decompress, Format, Push, PushError, PushRequest, MAX_ENTRIES,
};
use prost::Message;
use serde_json::Value;

/// Decompressed-size limit for the fuzzer: small, so bombs are cheap to refuse.
const LIMIT: usize = 1 << 20;

/// A struct's field as serde reads it: by name from an object, or by position from an
/// array (serde's derive takes both).
fn field<'a>(v: &'a Value, name: &str, position: usize) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(name),
        Value::Array(a) => a.get(position),
        _ => None,
    }
}

fn check(push: &Push, what: &str) {
    assert_eq!(
        push.items.len(),
        push.names.len(),
        "{what}: a name per entry"
    );
    assert!(push.items.len() <= MAX_ENTRIES, "{what}: over MAX_ENTRIES");
    for m in &push.items {
        mapped::check(m, what);
    }
}

fn protobuf(body: &[u8], what: &str) {
    let res = decode(body, Format::Protobuf, mapped::ARRIVAL_US);
    match PushRequest::decode(body) {
        Ok(req) => {
            let n: usize = req.streams.iter().map(|s| s.entries.len()).sum();
            match res {
                Ok(push) => {
                    assert_eq!(push.items.len(), n, "{what}: one Mapped per entry");
                    check(&push, what);
                }
                Err(PushError::TooLarge(_)) => assert!(n > MAX_ENTRIES, "{what}: {n} too many?"),
                Err(PushError::Invalid(why)) => {
                    panic!("{what}: a valid PushRequest refused: {why}")
                }
            }
        }
        Err(_) => assert!(res.is_err(), "{what}: a body prost refuses was decoded"),
    }
}

/// Checks one input; panics on a broken invariant.
pub fn run(data: &[u8]) {
    match decompress(data, LIMIT) {
        Ok(raw) => {
            assert!(raw.len() <= LIMIT, "decompressed past the limit");
            protobuf(&raw, "snappy+protobuf");
        }
        Err(PushError::TooLarge(_)) => {
            let claimed = snap::raw::decompress_len(data).expect("a length was read");
            assert!(claimed > LIMIT, "refused as too large at {claimed} bytes");
        }
        Err(PushError::Invalid(_)) => {}
    }
    protobuf(data, "protobuf");
    if let Ok(push) = decode(data, Format::Json, mapped::ARRIVAL_US) {
        check(&push, "json");
        // serde skips a field the push does not have without checking that its strings are
        // UTF-8, so a push can decode that is not JSON text; then there is nothing to count by.
        let Ok(v) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        let n: usize = field(&v, "streams", 0)
            .and_then(Value::as_array)
            .expect("a decoded push has streams")
            .iter()
            .map(|s| {
                field(s, "values", 1)
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            })
            .sum();
        assert_eq!(push.items.len(), n, "json: one Mapped per value");
    }
}
