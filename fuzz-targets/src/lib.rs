//! The bodies of Ledger's fuzz targets, one module per target, each with
//! `pub fn run(data: &[u8])` that panics when an invariant breaks.
//!
//! Two drivers run them:
//! - cargo-fuzz (`fuzz/`, nightly, libFuzzer with coverage feedback and AddressSanitizer):
//!   each `fuzz/fuzz_targets/<name>.rs` is one line that calls `<name>::run`. This is the
//!   long run, `fuzz/run.sh`.
//! - the smoke test `tests/smoke.rs`, part of `cargo test --workspace` on stable: it
//!   replays the committed corpus `fuzz/corpus/<name>/` and then feeds mutations of it for
//!   a few seconds per target, so a decoder change that breaks an invariant on a known
//!   input fails the ordinary test run.

pub mod mapped;

pub mod es_bulk;
pub mod http_request;
pub mod ingest_json;
pub mod loki_push;
pub mod otlp_request;
pub mod query_string;
pub mod search_query;
pub mod segment_reader;
pub mod wal_frames;

/// A target's body: checks one input, panics on a broken invariant.
pub type Body = fn(&[u8]);

/// Every target, by the name of its corpus directory and its cargo-fuzz binary.
pub const TARGETS: &[(&str, Body)] = &[
    ("wal_frames", wal_frames::run),
    ("segment_reader", segment_reader::run),
    ("search_query", search_query::run),
    ("ingest_json", ingest_json::run),
    ("http_request", http_request::run),
    ("query_string", query_string::run),
    ("otlp_request", otlp_request::run),
    ("es_bulk", es_bulk::run),
    ("loki_push", loki_push::run),
];
