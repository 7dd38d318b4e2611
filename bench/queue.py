"""Job queue throughput and dequeue latency on a real SQLite file (WAL) and on PostgreSQL, same run.

Prints enqueue -> dequeue -> finish cycles per second, and p50/p99 latency of one ``dequeue`` (a ready
job waiting) with 0 and with 100,000 finished jobs in the table, and the ratio large/small (the bar:
p99 <= 10 ms at 100,000 jobs, no growth with table size). Baseline, measured in the same run: the same
three committed statements (INSERT, UPDATE, UPDATE) issued straight through aiosqlite without the
job store — the floor the backend reaches per cycle.

PostgreSQL: the admin URL from ``--pg-url``, else $OSBUILDD_TEST_PG, else the private test cluster's
(``bash scripts/test-pg.sh start`` writes /var/tmp/osbuildd-test/servers/pg.url); each phase runs in a
throwaway database of its own.

    .venv/bin/python bench/queue.py [--backend sqlite,postgresql] [--cycles 2000] [--finished 100000]
                                    [--samples 1000] [--pg-url URL]
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
import contextlib  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator, Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402

from osbuildd.queue import Database, JobStore  # noqa: E402

PG_URL_FILE = Path("/var/tmp/osbuildd-test/servers/pg.url")
Opener = Callable[[str], "contextlib.AbstractAsyncContextManager[Database]"]


def pg_url_of_test_cluster() -> str:
    return PG_URL_FILE.read_text().strip() if PG_URL_FILE.exists() else ""


def sqlite_opener(tmp: Path) -> Opener:
    @contextlib.asynccontextmanager
    async def open_db(name: str) -> AsyncIterator[Database]:
        db = await Database.open(tmp / f"{name}.db")
        try:
            yield db
        finally:
            await db.close()
    return open_db


def pg_opener(admin: str) -> Opener:
    import asyncpg

    from osbuildd.queue.db_pg import PGDatabase

    @contextlib.asynccontextmanager
    async def open_db(name: str) -> AsyncIterator[Database]:
        dbname = f"osbuildd_bench_{name}_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(admin)
        await conn.execute(f'CREATE DATABASE "{dbname}" TEMPLATE template0')
        await conn.close()
        db = await PGDatabase.open(urlunsplit(urlsplit(admin)._replace(path="/" + dbname)))
        try:
            yield db
        finally:
            await db.close()
            conn = await asyncpg.connect(admin)
            await conn.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
            await conn.close()
    return open_db


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


async def query_plan(db: Database) -> str:
    sql = ("SELECT seq FROM jobs WHERE status = 'pending' AND waiting_for = 0"
           " AND type IN ('depsolve', 'osbuild:x86_64') AND channel IN ('') ORDER BY seq LIMIT 1")
    if db.backend == "sqlite":
        rows = await db.conn.execute_fetchall("EXPLAIN QUERY PLAN " + sql)
        return "; ".join(r[3] for r in rows)
    rows = await db.conn.execute_fetchall("EXPLAIN " + sql)
    return "; ".join(r[0].strip() for r in rows)


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


async def run(name: str, open_db: Opener, args: argparse.Namespace) -> None:
    print(f"== {name}")
    async with open_db("baseline") as base_db:
        base = await baseline_cycles(base_db, args.cycles)
    async with open_db("small") as db:
        store = await JobStore.open(db)
        rate = await cycles(store, args.cycles)
        await store.close()
    print(f"cycles/s (enqueue->dequeue->finish): {rate:8.0f}   baseline (3 bare committed statements): "
          f"{base:8.0f}   ratio {rate / base:.2f}")
    async with open_db("small2") as small_db, open_db("large") as large_db:
        t0 = time.perf_counter()
        await fill_finished(large_db, args.finished)
        fill = time.perf_counter() - t0
        print(f"dequeue query plan: {await query_plan(large_db)}")
        a, b = await dequeue_latency(await JobStore.open(small_db), await JobStore.open(large_db), args.samples)
    small, large = p50_p99(a), p50_p99(b)
    print(f"dequeue latency, 0 finished jobs:        p50 {small[0]:6.3f} ms   p99 {small[1]:6.3f} ms")
    print(f"dequeue latency, {args.finished:,} finished jobs: p50 {large[0]:6.3f} ms   p99 {large[1]:6.3f} ms"
          f"   (table filled in {fill:.1f} s)")
    print(f"ratio large/small: p50 {large[0] / small[0]:.2f}   p99 {large[1] / small[1]:.2f}"
          f"   (bar: p99 <= 10 ms at {args.finished:,}, no growth)")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="sqlite,postgresql")
    ap.add_argument("--cycles", type=int, default=2000)
    ap.add_argument("--finished", type=int, default=100_000)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--pg-url", default="")
    args = ap.parse_args()
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    with tempfile.TemporaryDirectory(prefix="osbuildd-bench-queue-") as tmp:
        for backend in backends:
            if backend == "sqlite":
                await run("SQLite (WAL file)", sqlite_opener(Path(tmp)), args)
            elif backend == "postgresql":
                admin = args.pg_url or os.environ.get("OSBUILDD_TEST_PG", "") or pg_url_of_test_cluster()
                if not admin:
                    sys.exit("bench/queue.py: no PostgreSQL: --pg-url, $OSBUILDD_TEST_PG or scripts/test-pg.sh start")
                await run("PostgreSQL (asyncpg)", pg_opener(admin), args)
            else:
                sys.exit(f"bench/queue.py: unknown backend {backend!r}")


if __name__ == "__main__":
    asyncio.run(main())
