#!/usr/bin/env bash
# Runs every fuzz target for a bounded time and fails if any finds a crash.
#
#   fuzz/run.sh [seconds-per-target] [target...]     (default: 20 s, every target)
#
# Needs the nightly toolchain (`cargo +nightly`); installs cargo-fuzz when it is missing.
# The committed seeds in fuzz/corpus/<target>/ are read, never written: what a run learns
# goes to fuzz/target/corpus/<target>/ (kept between runs, not committed), and a crash to
# fuzz/artifacts/<target>/. Works unattended (CI=true, no stdin).
set -euo pipefail
cd "$(dirname "$0")"

secs="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(wal_frames segment_reader search_query ingest_json http_request query_string \
        otlp_request es_bulk loki_push)
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked </dev/null
fi

# Debug assertions on: integer overflow in a decoder is a finding, not a silent wrap.
flags=(--debug-assertions)

echo "== building fuzz targets"
cargo +nightly fuzz build "${flags[@]}" </dev/null

failed=()
for t in "${targets[@]}"; do
    echo "== fuzzing $t for ${secs}s"
    mkdir -p "target/corpus/$t" "artifacts/$t"
    # -timeout: an input that takes this long is reported as a hang (a failure).
    if ! cargo +nightly fuzz run "${flags[@]}" "$t" "target/corpus/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=30 -print_final_stats=1 </dev/null; then
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzzing found crashes in: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
    exit 1
fi
echo "== fuzzing: no crashes in ${targets[*]}"
