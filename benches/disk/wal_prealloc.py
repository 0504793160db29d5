#!/usr/bin/env python3
"""Would preallocating the WAL's files with zeros shorten its fdatasync tail?

An experiment outside the server, run before building it: a loop appends 8 KiB and calls
fdatasync (as the WAL's group commit does), 2,000 times with 2 ms between, to a file that
grows (what the WAL does today: every sync also commits ext4's journal for the new size) or
to one written with zeros and synced beforehand (preallocated: a sync writes data only).
Each runs beside a background writer like the server's own: none; new 20 MB files written
and fsynced in a loop (the sealer); new 4 MB files written without a sync (tantivy's
segments, left to page writeback). Prints p50/p90/p99/max of the fdatasync per case,
the median of REPS runs (default 3), files and modes alternated.

    python3 benches/disk/wal_prealloc.py [dir] [reps]      # dir defaults to ./target
"""
import os, statistics, subprocess, sys, time

d = sys.argv[1] if len(sys.argv) > 1 else "target"
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
N, CHUNK = 2000, 8192


def probe(mode):
    path = os.path.join(d, f"wal_probe_{mode}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    if mode == "zeroed":
        os.write(fd, b"\0" * (N * CHUNK + 4096))
        os.fsync(fd)
        os.lseek(fd, 0, os.SEEK_SET)
    buf = os.urandom(CHUNK)
    lat = []
    for _ in range(N):
        os.write(fd, buf)
        t = time.perf_counter()
        os.fdatasync(fd)
        lat.append((time.perf_counter() - t) * 1000)
        time.sleep(0.002)
    os.close(fd)
    os.unlink(path)
    lat.sort()
    return [lat[N // 2], lat[int(N * 0.9)], lat[int(N * 0.99)], lat[-1]]


BACKGROUND = {
    "none": None,
    "sealer (20 MB files, fsync)": "i=0; while :; do i=$((i+1)); "
    "dd if=/dev/urandom of={d}/bg_$((i%4)) bs=1M count=20 conv=fsync status=none; done",
    "indexer (4 MB files, no sync)": "i=0; while :; do i=$((i+1)); "
    "head -c 4000000 /dev/urandom > {d}/bg_$((i%50)); done",
}

print(f"fdatasync of 8 KiB appends, ms (median of {reps} runs of {N}): p50 p90 p99 max")
for name, script in BACKGROUND.items():
    bg = subprocess.Popen(["bash", "-c", script.replace("{d}", d)]) if script else None
    time.sleep(1)
    runs = {"growing": [], "zeroed": []}
    for r in range(reps):
        for mode in (("growing", "zeroed") if r % 2 == 0 else ("zeroed", "growing")):
            runs[mode].append(probe(mode))
    if bg:
        bg.kill()
        bg.wait()
    subprocess.run(f"rm -f {d}/bg_*", shell=True)
    for mode, rs in runs.items():
        med = [statistics.median(r[i] for r in rs) for i in range(4)]
        print(f"{name:32} {mode:8} " + " ".join(f"{v:7.2f}" for v in med))
