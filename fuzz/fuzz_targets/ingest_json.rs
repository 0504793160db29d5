//! The `ingest_json` target. Its body is `ledger_fuzz_targets::ingest_json::run`, which the
//! stable smoke test (`fuzz-targets/tests/smoke.rs`) also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ledger_fuzz_targets::ingest_json::run(data));
