//! The `es_bulk` target. Its body is `ledger_fuzz_targets::es_bulk::run`, which the
//! stable smoke test (`fuzz-targets/tests/smoke.rs`) also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ledger_fuzz_targets::es_bulk::run(data));
