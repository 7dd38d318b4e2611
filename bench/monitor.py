"""Monitor parser throughput and daemon memory vs build-log size.

1. MB/s of `MonitorParser.feed` on a JSONSeq stream made from osbuild's real monitor output
   (tests/data/osbuild/osbuild-monitor-sample.jsonseq, stage output chunks of realistic sizes, fed in 64 KiB
   pipe-sized chunks), against a baseline measured in the same run: the bare minimum any parser must
   do (split on newlines + json.loads of every record). Bar: >= 50 MB/s.
2. Peak RSS of a process running `run_osbuild` on a build that writes 10 MB vs 200 MB of stage
   output (a generator standing in for osbuild): the log goes to disk, so RSS must not grow with it.

Run: .venv/bin/python bench/monitor.py
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# bench/ itself must not be on the path: bench/queue.py would shadow the stdlib queue module
sys.path[0] = str(REPO)
SAMPLE = REPO / "tests" / "data" / "osbuild" / "osbuild-monitor-sample.jsonseq"

from osbuildd.runner.monitor import MonitorParser  # noqa: E402


def make_stream(target_bytes: int) -> bytes:
    """Real records, plus stage output records (1-8 KiB, like apt/dpkg output) with id-only contexts."""
    real = SAMPLE.read_bytes()
    out = [real]
    size = len(real)
    line = "Unpacking libfoo1:amd64 (1.2.3-4) over (1.2.3-3) ...\nSetting up libfoo1:amd64 (1.2.3-4) ...\n"
    i = 0
    while size < target_bytes:
        msg = line * (1 + (i % 8) * 12)
        rec = {"message": msg, "context": {"id": "6280e6fee60bcc5cc0f60200ad7a80feb93f1a6ce9362cb7074cbd9116651202"},
               "progress": {"name": "pipelines/sources", "total": 3, "done": 1,
                            "progress": {"name": "pipeline: tree", "total": 3, "done": 0}},
               "timestamp": 1795628436.88 + i}
        b = b"\x1e" + json.dumps(rec).encode() + b"\n"
        out.append(b)
        size += len(b)
        i += 1
    return b"".join(out)


def bench_parser(data: bytes, rounds: int = 5) -> tuple[float, float, int]:
    chunk = 65536
    best_p = best_b = float("inf")
    n = 0
    for _ in range(rounds):
        p = MonitorParser()
        t = time.perf_counter()
        n = 0
        for i in range(0, len(data), chunk):
            n += len(p.feed(data[i:i + chunk]))
        best_p = min(best_p, time.perf_counter() - t)
        t = time.perf_counter()
        for rec in data.split(b"\n"):
            if rec:
                json.loads(rec[1:])
        best_b = min(best_b, time.perf_counter() - t)
    return len(data) / best_p / 1e6, len(data) / best_b / 1e6, n


GENERATOR = r'''
import json, os, sys
args = sys.argv[1:]
fd = int(next(a for a in args if a.startswith("--monitor-fd=")).split("=")[1])
sys.stdin.read()
mon = os.fdopen(fd, "wb")
total = int(os.environ["GEN_BYTES"])
ctx = {"origin": "stages/org.osbuildd.debian.bootstrap", "pipeline": {"name": "os", "id": "p1",
       "stage": {"name": "org.osbuildd.debian.bootstrap", "id": "s1"}}, "id": "c1"}
start = {"message": "Starting module org.osbuildd.debian.bootstrap", "context": {"origin": "osbuild.monitor",
         "pipeline": {"name": "os", "id": "p1", "stage": {"name": "org.osbuildd.debian.bootstrap", "id": "s1"}},
         "id": "c0"}, "progress": {"name": "pipelines/sources", "total": 1, "done": 0,
         "progress": {"name": "pipeline: os", "total": 1, "done": 0}}}
mon.write(b"\x1e" + json.dumps(start).encode() + b"\n")
msg = "Setting up libfoo1:amd64 (1.2.3-4) ...\n" * 100
sent = 0
first = True
while sent < total:
    rec = {"message": msg, "context": ctx if first else {"id": "c1"}}
    first = False
    b = b"\x1e" + json.dumps(rec).encode() + b"\n"
    mon.write(b)
    sent += len(b)
mon.flush()
print(json.dumps({"type": "result", "success": True, "log": {}, "metadata": {}}))
'''


def hwm_kib() -> int:
    """Peak RSS of this process since exec (VmHWM; ru_maxrss would include the forked parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_child(gen_bytes: int) -> None:
    """Runs in a child: one run_osbuild over a generated log, then prints its peak RSS (KiB)."""
    from osbuildd.runner import run_osbuild

    async def main() -> None:
        with tempfile.TemporaryDirectory() as d:
            gen = Path(d) / "gen.py"
            gen.write_text(GENERATOR)
            import os
            os.environ["GEN_BYTES"] = str(gen_bytes)
            before = hwm_kib()
            import tracemalloc
            tracemalloc.start()
            res = await run_osbuild({"version": "2"}, osbuild=[sys.executable, str(gen)], store=Path(d) / "store",
                                    outdir=Path(d) / "out", exports=[], checkpoints=[], cache_max_size="",
                                    stage_timeout=None, on_progress=None, log_dir=Path(d) / "logs")
            assert res.success, res.error
            logged = (Path(d) / "logs" / "osbuild.log").stat().st_size
            peak = hwm_kib()
            heap_now, heap_peak = tracemalloc.get_traced_memory()
            print(json.dumps({"before_kib": before, "peak_kib": peak, "log_bytes": logged,
                              "heap_peak_kib": heap_peak // 1024, "heap_end_kib": heap_now // 1024}))

    asyncio.run(main())


def measure_rss(gen_bytes: int) -> dict:
    p = subprocess.run([sys.executable, __file__, "--rss-child", str(gen_bytes)], capture_output=True, text=True,
                       check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    data = make_stream(64 << 20)
    ours, base, n = bench_parser(data)
    print(f"monitor parser: {ours:.1f} MB/s over {len(data) / 1e6:.0f} MB ({n} records, 64 KiB chunks)")
    print(f"baseline (split + json.loads only): {base:.1f} MB/s -> parser at {ours / base:.2f}x of baseline")
    print(f"bar 50 MB/s: {'met' if ours >= 50 else 'NOT met'} ({ours / 50:.2f}x)")
    small, big = measure_rss(10 << 20), measure_rss(200 << 20)
    growth = big["peak_kib"] - small["peak_kib"]
    print(f"runner peak RSS with a {small['log_bytes'] / 1e6:.0f} MB build log: {small['peak_kib'] / 1024:.1f} MiB")
    print(f"runner peak RSS with a {big['log_bytes'] / 1e6:.0f} MB build log: {big['peak_kib'] / 1024:.1f} MiB "
          f"(growth {growth / 1024:+.1f} MiB for {(big['log_bytes'] - small['log_bytes']) / 1e6:.0f} MB more log; "
          f"ratio {big['peak_kib'] / small['peak_kib']:.2f}x)")
    print(f"Python heap (tracemalloc) peak: {small['heap_peak_kib'] / 1024:.1f} MiB vs {big['heap_peak_kib'] / 1024:.1f} MiB, "
          f"held at the end: {small['heap_end_kib']} KiB vs {big['heap_end_kib']} KiB "
          f"(what RSS adds on top is allocator slack, not held data)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--rss-child":
        rss_child(int(sys.argv[2]))
    else:
        main()
