# Sourced by queries.sh and explore.sh: starts a fresh release server on $addr, makes an
# account (q@example.com), a project with raised limits ($project) and a key ($key), and
# fills it to $stored logs with `ledgerctl loadgen` (stamped as they are sent, so they advance
# in time like a live service's), then waits for the index to catch up.
# Leaves $pid (the server, stopped on exit), $n (logs stored), $work and `api`. Extra
# server flags come from $server_flags. With bin=target/profiling (binaries built beforehand
# with `cargo build --profile profiling -p ledger-server -p ledger-tools`), the same run
# uses those binaries, symbols and all, for `perf`.
bin="${bin:-target/release}"
if [ "$bin" = target/release ]; then
    cargo build --release -q -p ledger-server -p ledger-tools
fi
work=$(mktemp -d)
# shellcheck disable=SC2154
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

# shellcheck source=benches/http/server.sh
source benches/http/server.sh
# shellcheck disable=SC2086
start_bench_server "$bin" "$work" ${server_flags:-}

echo "== filling to $stored logs"
start=$(date +%s)
while :; do
    n=$(stored_logs)
    [ "$n" -ge "$stored" ] && break
    "$bin"/ledgerctl loadgen --url "http://$addr" --key "$key" --batch-size 1000 \
        --concurrency 4 --duration 30s --seed "$n" --live-timestamps >/dev/null
done
echo "filled $n logs in $(( $(date +%s) - start )) s; waiting for the index"
wait_for_index
