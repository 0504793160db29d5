//! The fuzz targets' smoke, so that the README's test command runs it: `fuzz/run.sh` for
//! `LEDGER_FUZZ_SECONDS` seconds per target (default 20), which replays the committed
//! corpus of every target first. `LEDGER_FUZZ_SECONDS=300 cargo test -p ledger-tools --test
//! fuzz_smoke` is the long run; `LEDGER_FUZZ_SECONDS=0` skips it while iterating.
//!
//! The targets build with the nightly toolchain and AddressSanitizer (a few minutes from a
//! cold `fuzz/target`). Without a nightly toolchain the test says why and passes.

use std::path::Path;
use std::process::Command;

#[test]
fn every_fuzz_target_runs_without_a_crash() {
    let secs = std::env::var("LEDGER_FUZZ_SECONDS").unwrap_or_else(|_| "20".into());
    if secs.trim() == "0" {
        eprintln!("fuzz smoke skipped: LEDGER_FUZZ_SECONDS=0");
        return;
    }
    let nightly = Command::new("cargo")
        .args(["+nightly", "--version"])
        .output();
    if !nightly.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!(
            "fuzz smoke skipped: no nightly toolchain (`cargo +nightly --version` failed: {:?})",
            nightly.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        );
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/run.sh");
    // The fuzz workspace chooses its own toolchain and target directory.
    let status = Command::new("bash")
        .arg(&script)
        .arg(secs.trim())
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .status()
        .expect("run fuzz/run.sh");
    assert!(
        status.success(),
        "{} {secs} failed: its output above names the target, and the input is in fuzz/artifacts/",
        script.display()
    );
}
