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

# shellcheck disable=SC2086
"$bin"/ledger --listen $addr --data-dir "$work/data" ${server_flags:-} >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
api() { curl -sf -X "$1" "http://$addr$2" -H 'Content-Type: application/json' ${3:+-H "Authorization: Bearer $3"} ${4:+-d "$4"}; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
token=$(api POST /api/v1/auth/register "" '{"email":"q@example.com","password":"correct horse battery"}' | field token)
project=$(api POST /api/v1/projects "$token" '{"name":"q","rate_limit_per_minute":100000000,"rate_limit_per_hour":1000000000,"daily_quota":1000000000000}' | field id)
key=$(api POST "/api/v1/projects/$project/keys" "$token" '{"name":"q","scopes":["ingest","query"]}' | field key)

echo "== filling to $stored logs"
start=$(date +%s)
while :; do
    n=$(api GET "/api/v1/metrics/usage-stats?days=1" "$key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["today"]["logs"])')
    [ "$n" -ge "$stored" ] && break
    "$bin"/ledgerctl loadgen --url "http://$addr" --key "$key" --batch-size 1000 \
        --concurrency 4 --duration 30s --seed "$n" --live-timestamps >/dev/null
done
echo "filled $n logs in $(( $(date +%s) - start )) s; waiting for the index"
for _ in $(seq 120); do
    lag=$(curl -s "http://$addr/metrics" | awk '/^ledger_index_lag /{print $2}')
    [ "${lag:-1}" = "0" ] && break
    sleep 1
done

