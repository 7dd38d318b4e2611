"""Job queue throughput and dequeue latency on a real SQLite file (WAL).

Prints enqueue -> dequeue -> finish cycles per second, and p50/p99 latency of one ``dequeue`` (a ready
job waiting) with 0 and with 100,000 finished jobs in the table, and the ratio large/small (the bar:
p99 <= 10 ms at 100,000 jobs, no growth with table size). Baseline, measured in the same run: the same
three committed statements (INSERT, UPDATE, UPDATE) issued straight through aiosqlite without the
job store — the floor this SQLite + aiosqlite setup reaches per cycle.

    .venv/bin/python bench/queue.py [--cycles 2000] [--finished 100000] [--samples 1000]
"""

from __future__ import annotations

import os
import sys

# This file is named queue.py: its folder must not shadow the stdlib ``queue`` (aiosqlite imports it).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

from osbuildd.queue import Database, JobStore  # noqa: E402


async def cycles(store: JobStore, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        await store.enqueue("depsolve", {"i": i})
        got = await store.dequeue(["depsolve"], timeout=0)
        await store.finish(got.token, {"ok": True})
    return n / (time.perf_counter() - start)


async def baseline_cycles(db: Database, n: int) -> float:
    conn = db.conn
    start = time.perf_counter()
    for i in range(n):
        job_id = str(uuid.uuid4())
        async with db.transaction():
            await conn.execute(
                "INSERT INTO jobs (id, type, args, channel, status, queued_at) VALUES (?, 'x', ?, '', 'pending', ?)",
                (job_id, f'{{"i":{i}}}', time.time()))
        async with db.transaction():
            await conn.execute("UPDATE jobs SET status='running', token=? WHERE id=?", (str(uuid.uuid4()), job_id))
        async with db.transaction():
            await conn.execute("UPDATE jobs SET status='finished', result='{}' WHERE id=?", (job_id,))
    return n / (time.perf_counter() - start)


async def fill_finished(db: Database, count: int) -> None:
    """``count`` finished build graphs' worth of rows, written directly (the job store would take minutes)."""
    now = time.time()
    batch = []
    async with db.transaction() as conn:
        for i in range(count):
            batch.append((str(uuid.uuid4()), "osbuild:x86_64" if i % 3 == 0 else "depsolve",
                          '{"targets":[]}', "" if i % 2 else "org-1", '{"success":true}', now, now, now,
                          str(uuid.uuid4()), now))
            if len(batch) == 5000:
                await conn.executemany(
                    "INSERT INTO jobs (id, type, args, channel, status, result, queued_at, started_at,"
                    " finished_at, token, heartbeat) VALUES (?, ?, ?, ?, 'finished', ?, ?, ?, ?, ?, ?)", batch)
                batch.clear()
        if batch:
            await conn.executemany(
                "INSERT INTO jobs (id, type, args, channel, status, result, queued_at, started_at,"
                " finished_at, token, heartbeat) VALUES (?, ?, ?, ?, 'finished', ?, ?, ?, ?, ?, ?)", batch)
    await db.conn.execute("ANALYZE")


async def one_dequeue(store: JobStore, i: int) -> float:
    # a realistic graph: the build waits for its depsolve, so there is always a blocked job too
    dep = await store.enqueue("depsolve", {"i": i})
    await store.enqueue("osbuild:x86_64", {"i": i}, [dep])
    start = time.perf_counter()
    got = await store.dequeue(["depsolve", "osbuild:x86_64"], timeout=0)
    elapsed = time.perf_counter() - start
    await store.finish(got.token, {"ok": True})
    build = await store.dequeue(["osbuild:x86_64"], timeout=0)
    await store.finish(build.token, {"success": True})
    return elapsed


async def dequeue_latency(small: JobStore, large: JobStore, samples: int) -> tuple[list[float], list[float]]:
    """Samples taken alternately on both stores, so load from the rest of the machine hits both alike."""
    a: list[float] = []
    b: list[float] = []
    for i in range(samples):
        a.append(await one_dequeue(small, i))
        b.append(await one_dequeue(large, i))
    return a, b


def p50_p99(times: list[float]) -> tuple[float, float]:
    return statistics.median(times) * 1000, statistics.quantiles(times, n=100)[98] * 1000


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=2000)
    ap.add_argument("--finished", type=int, default=100_000)
    ap.add_argument("--samples", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="osbuildd-bench-queue-") as tmp:
        base_db = await Database.open(Path(tmp) / "baseline.db")
        base = await baseline_cycles(base_db, args.cycles)
        await base_db.close()

        db = await Database.open(Path(tmp) / "small.db")
        store = await JobStore.open(db)
        rate = await cycles(store, args.cycles)
        await db.close()
        print(f"cycles/s (enqueue->dequeue->finish): {rate:8.0f}   baseline (3 bare committed statements): "
              f"{base:8.0f}   ratio {rate / base:.2f}")

        small_db = await Database.open(Path(tmp) / "small2.db")
        large_db = await Database.open(Path(tmp) / "large.db")
        t0 = time.perf_counter()
        await fill_finished(large_db, args.finished)
        fill = time.perf_counter() - t0
        async with large_db.conn.execute(
            "EXPLAIN QUERY PLAN SELECT seq FROM jobs WHERE status = 'pending' AND waiting_for = 0"
            " AND type IN ('depsolve', 'osbuild:x86_64') AND channel IN ('') ORDER BY seq LIMIT 1") as cur:
            plan = "; ".join(r[3] for r in await cur.fetchall())
        print(f"dequeue query plan: {plan}")
        a, b = await dequeue_latency(await JobStore.open(small_db), await JobStore.open(large_db), args.samples)
        small, large = p50_p99(a), p50_p99(b)
        await small_db.close()
        await large_db.close()
        print(f"dequeue latency, 0 finished jobs:        p50 {small[0]:6.3f} ms   p99 {small[1]:6.3f} ms")
        print(f"dequeue latency, {args.finished:,} finished jobs: p50 {large[0]:6.3f} ms   p99 {large[1]:6.3f} ms"
              f"   (table filled in {fill:.1f} s)")
        print(f"ratio large/small: p50 {large[0] / small[0]:.2f}   p99 {large[1] / small[1]:.2f}"
              f"   (bar: p99 <= 10 ms at {args.finished:,}, no growth)")


if __name__ == "__main__":
    asyncio.run(main())
