#!/usr/bin/env bash
# Where the server's CPU goes by thread during HTTP batch ingest: for each of `runs` rounds a
# fresh server takes `ledgerctl loadgen` batch load (4 connections × 1,000 logs, 15 s), the
# run waits for the index to catch up, and each thread's CPU time (user + system, from
# /proc/<pid>/task/*/stat, from just before the load) is divided by the logs stored.
# Threads are grouped by name (tokio's workers: request handling, parsing, validation; the
# WAL writer; the flusher, which seals; our indexer and tantivy's indexing threads; the
# rollup thread; tantivy's indexing and merge threads; ...), polled every 100 ms so that
# threads which end during the run (tantivy replaces its indexing threads at each commit)
# are counted. Prints per run, then the medians: µs per stored log and share of the server's
# CPU.
#
#   benches/http/threads.sh [runs]               (default 3)
#
# The rollup thread's share is the cost of rollups on append as a client sees it; the rest
# of their cost, on the WAL writer, is measured at the engine (`--bench rollups`).
# bin=target/profiling uses binaries built beforehand with
# `cargo build --profile profiling -p ledger-server -p ledger-tools`.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-3}"
bin="${bin:-target/release}"
if [ "$bin" = target/release ]; then
    cargo build --release -q -p ledger-server -p ledger-tools
fi
addr=127.0.0.1:18114
# shellcheck source=benches/http/server.sh
source benches/http/server.sh
results=$(mktemp)
trap 'rm -f "$results"' EXIT

# Polls the server's threads every 100 ms until $1 exists, then prints "group ticks" lines per
# thread group (a thread's ticks since polling began; one that started later counts from 0),
# "unattributed ticks" (the process's total less the groups: threads that lived less than a
# poll, and a thread's last poll interval) and "all ticks". tantivy ends its indexing threads
# at each commit and starts new ones, so a single snapshot would miss them.
sample() {
    python3 - "$pid" "$1" <<'PY'
import os, re, sys, time
pid, stop = sys.argv[1], sys.argv[2]
def ticks(path):
    s = open(path).read()
    name, rest = s[s.index("(") + 1 : s.rindex(")")], s[s.rindex(")") + 2 :].split()
    return name, int(rest[11]) + int(rest[12])
def poll():
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out[tid] = ticks(f"/proc/{pid}/task/{tid}/stat")
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out
first, last = poll(), {}
total0 = ticks(f"/proc/{pid}/stat")[1]
while not os.path.exists(stop):
    last.update(poll())
    time.sleep(0.1)
last.update(poll())
total = ticks(f"/proc/{pid}/stat")[1] - total0
groups = {}
for tid, (name, t) in last.items():
    # tokio-rt-worker, thrd-tantivy-index0, merge_thread_3: one group per name less its number.
    group = re.sub(r"[0-9]+$", "", name).rstrip("_").replace(" ", "_")
    groups[group] = groups.get(group, 0) + t - first.get(tid, (name, 0))[1]
groups["unattributed"] = total - sum(groups.values())
groups["all"] = total
for g, t in groups.items():
    print(g, t)
PY
}

one() {
    local run=$1 work pid token project key sampler n
    work=$(mktemp -d)
    start_bench_server "$bin" "$work"
    sample "$work/stop" >"$work/ticks" &
    sampler=$!
    "$bin"/ledgerctl loadgen --url "http://$addr" --key "$key" --batch-size 1000 \
        --concurrency 4 --duration 15s --seed "$run" >/dev/null
    wait_for_index
    touch "$work/stop"
    wait "$sampler"
    n=$(stored_logs)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    python3 - "$run" "$n" "$(getconf CLK_TCK)" "$work/ticks" <<'PY'
import sys
run, n, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for line in open(sys.argv[4]):
    g, t = line.split()
    print(run, g, round(int(t) * 1e6 / hz / n, 3))
PY
    rm -rf "$work"
}

for r in $(seq "$runs"); do
    one "$r" | tee -a "$results"
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
groups = {}
for run, g, us in rows:
    groups.setdefault(g, []).append(float(us))
runs = len({r[0] for r in rows})
all_us = statistics.median(groups.pop("all"))
print(f"medians of {runs} runs: µs of server CPU per stored log, share of the server's CPU")
for g, xs in sorted(groups.items(), key=lambda kv: -statistics.median(kv[1])):
    xs += [0.0] * (runs - len(xs))
    m = statistics.median(xs)
    if m > 0:
        print(f"  {g:24} {m:7.3f}  {100 * m / all_us:5.1f} %")
print(f"  {'all':24} {all_us:7.3f}")
PY
