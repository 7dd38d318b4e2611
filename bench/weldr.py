"""Weldr API throughput over the unix socket: 50 concurrent clients against ``osbuildd serve``.

For each endpoint (api/status, blueprints/list, blueprints/info, compose/status/*, compose/queue,
compose/finished, compose/failed, compose/types) it prints requests/s and p50/p99 latency with a small
store (10 blueprints, 10 composes) and a large one (1,000 blueprints, 10,000 composes, inserted directly
into SQLite: one in ten failed, one in a thousand waiting, the rest finished), and compose/types latency
from one client.
Baseline, measured in the same run with the same client: a bare aiohttp app on a unix socket answering a
constant JSON body — the ceiling this Python client and aiohttp reach on this machine.

Compose start: ``POST /api/v1/compose`` depsolves and generates the manifest inside the request (as
upstream), so its latency is set against ``GET /api/v1/blueprints/depsolve/<bp>`` for the same blueprint,
one client, requests interleaved, warm apt cache (the test suite's shared one when it exists, else
warmed first), on a daemon without a local executor (nothing builds; each compose is canceled and
deleted after it is measured). Target: compose start p50 <= 1.2x depsolve p50.

    .venv/bin/python bench/weldr.py [--seconds 3] [--clients 50] [--start-samples 40] [--only-start]
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds queue.py (the job-queue bench): as the script's directory it would shadow the stdlib
# `queue` that asyncio imports, so it leaves sys.path before anything else is imported.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import aiohttp  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.daemonproc import baseline_server, fetch, start_daemon  # noqa: E402


async def prepare_state(state: Path, blueprints: int, composes: int) -> None:
    """Migrate a fresh database, then bulk-insert blueprints and composes with sqlite3."""
    from osbuildd.blueprint import Blueprint
    from osbuildd.queue.db import Database

    db = await Database.open(state / "osbuildd.db")
    await db.close()

    def insert() -> None:
        conn = sqlite3.connect(state / "osbuildd.db")
        now = time.time()
        rows, changes = [], []
        for i in range(blueprints):
            bp = Blueprint.from_json(json.dumps({
                "name": f"bench-{i:05d}", "description": "bench blueprint", "version": "0.0.1",
                "packages": [{"name": "tmux", "version": "*"}, {"name": "curl"}],
                "customizations": {"hostname": f"host-{i}"}}))
            bp.initialize()
            text = bp.to_json()
            rows.append((bp.name, text, now))
            changes.append((bp.name, uuid.uuid4().hex + uuid.uuid4().hex[:8], f"Recipe {bp.name}, version 0.0.1 saved.",
                            "2026-01-01T00:00:00Z", text))
        conn.executemany("INSERT INTO blueprints (name, blueprint, updated) VALUES (?, ?, ?)", rows)
        conn.executemany("INSERT INTO blueprint_changes (name, commit_id, message, timestamp, blueprint)"
                         " VALUES (?, ?, ?, ?, ?)", changes)
        result = json.dumps({"success": True, "osbuild_output": {"success": True}, "target_results": []})
        error = json.dumps({"id": 10, "reason": "osbuild build failed"})
        failed = json.dumps({"success": False, "job_error": json.loads(error)})
        jobs, comp = [], []
        for i in range(composes):
            cid = str(uuid.uuid4())
            # nothing takes a waiting one: the daemon runs without its local executor
            status, res, err, done = (("pending", None, None, None) if i % 1000 == 5 else
                                      ("finished", failed, error, now - i) if i % 10 == 9 else
                                      ("finished", result, None, now - i))
            jobs.append((cid, "osbuild:x86_64", '{"targets":[],"pipeline_names":null}', status, res, err,
                         now - i, done, done))
            request = json.dumps({"distro": "debian-12", "arch": "x86_64", "image_type": "qcow2",
                                  "blueprint": {"name": f"bench-{i % max(blueprints, 1):05d}"}, "targets": []})
            comp.append((cid, request, f"bench-{i % max(blueprints, 1):05d}", "0.0.1", "qcow2", "debian-12",
                         "x86_64", now - i, 2147483648, "disk.qcow2"))
        conn.executemany("INSERT INTO jobs (id, type, args, status, result, error, queued_at, started_at,"
                         " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", jobs)
        conn.executemany("INSERT INTO composes (id, request, blueprint_name, blueprint_version, image_type, distro,"
                         " arch, created, size, image_filename, fake) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)", comp)
        conn.commit()
        conn.close()

    await asyncio.to_thread(insert)


def warm_cache(state: Path) -> None:
    """The state dir's depsolve cache: the test suite's shared one (warm) when there is one."""
    shared = Path(os.environ.get("OSBUILDD_TEST_STATE", "/var/tmp/osbuildd-test/state")) / "cache"
    if shared.is_dir():
        (state / "cache").symlink_to(shared)


def start_baseline(socket_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--baseline-server", str(socket_path)])


async def wait_ready(socket_path: Path, proc: subprocess.Popen) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket_path))) as s, \
                    s.get("http://localhost/api/status") as r:
                if r.status == 200:
                    return
        except (aiohttp.ClientError, OSError):
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("server did not become ready")


# ------------------------------------------------------------------------------------------- load


async def load(socket_path: Path, path: str, clients: int, seconds: float, max_requests: int | None = None
               ) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, requests) with ``clients`` concurrent keep-alive connections.

    A minimal client on raw asyncio streams, so that the Python client costs less CPU than the server
    it measures (both share this machine's cores)."""
    latencies: list[float] = []
    issued = 0
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    conns = [await asyncio.open_unix_connection(str(socket_path), limit=1 << 24) for _ in range(clients)]
    deadline = time.perf_counter() + seconds

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal issued
        while time.perf_counter() < deadline and (max_requests is None or issued < max_requests):
            issued += 1
            t0 = time.perf_counter()
            status = await fetch(reader, writer, request)
            if status != 200:
                raise SystemExit(f"{path}: HTTP {status}")
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker(r, w) for r, w in conns))
    finally:
        for _, w in conns:
            w.close()
    elapsed = time.perf_counter() - start
    latencies.sort()
    n = len(latencies)
    return n / elapsed, latencies[n // 2] * 1000, latencies[min(n - 1, int(n * 0.99))] * 1000, n


ENDPOINTS = [
    ("api/status", "/api/status"),
    ("blueprints/list", "/api/v1/blueprints/list"),
    ("blueprints/info", "/api/v1/blueprints/info/bench-00003"),
    ("compose/status/*", "/api/v1/compose/status/*"),
    ("compose/queue", "/api/v1/compose/queue"),
    ("compose/finished", "/api/v1/compose/finished"),
    ("compose/failed", "/api/v1/compose/failed"),
    ("compose/types", "/api/v1/compose/types"),
]


START_BP = {"name": "bench-start", "description": "compose start bench", "version": "0.0.1",
            "packages": [{"name": "tmux", "version": "*"}, {"name": "curl"}],
            "customizations": {"hostname": "bench-start"}}


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))] * 1000


async def compose_start_latency(tmp: Path, samples: int) -> dict[str, list[float]]:
    """Seconds per request of blueprints/depsolve and compose start, interleaved, one client."""
    state = tmp / "start"
    state.mkdir()
    await prepare_state(state, 0, 0)
    warm_cache(state)
    sock = state / "weldr.socket"
    proc = start_daemon(state, sock)
    out: dict[str, list[float]] = {"depsolve": [], "compose": []}
    try:
        await wait_ready(sock, proc)
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock)),
                                         timeout=aiohttp.ClientTimeout(total=600)) as s:
            base = "http://localhost/api/v1"

            async def depsolve() -> None:
                async with s.get(f"{base}/blueprints/depsolve/bench-start") as r:
                    body = await r.json()
                if r.status != 200 or body.get("errors") or not body["blueprints"][0]["dependencies"]:
                    raise SystemExit(f"blueprints/depsolve: HTTP {r.status} {body}")

            async def compose() -> str:
                async with s.post(f"{base}/compose", json={"blueprint_name": "bench-start",
                                                          "compose_type": "qcow2", "branch": "master"}) as r:
                    body = await r.json()
                if r.status != 200:
                    raise SystemExit(f"compose start: HTTP {r.status} {body}")
                return body["build_id"]

            async def forget(cid: str) -> None:   # not measured: keeps the store the same for every sample
                async with s.delete(f"{base}/compose/cancel/{cid}") as r:
                    await r.read()
                async with s.delete(f"{base}/compose/delete/{cid}") as r:
                    await r.read()

            async with s.post(f"{base}/blueprints/new", json=START_BP) as r:
                if r.status != 200:
                    raise SystemExit(f"blueprints/new: HTTP {r.status} {await r.text()}")
            for _ in range(2):   # warm-up: apt lists (when the cache is cold), imports, first-use caches
                await depsolve()
                await forget(await compose())
            for i in range(samples):
                order = ("depsolve", "compose") if i % 2 == 0 else ("compose", "depsolve")
                for name in order:
                    t0 = time.perf_counter()
                    if name == "depsolve":
                        await depsolve()
                        out[name].append(time.perf_counter() - t0)
                    else:
                        cid = await compose()
                        out[name].append(time.perf_counter() - t0)
                        await forget(cid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def print_start(lat: dict[str, list[float]]) -> None:
    d, c = lat["depsolve"], lat["compose"]
    print(f"compose start vs blueprints/depsolve, same blueprint, one client, warm apt cache, {len(c)} samples each:")
    print(f"  GET  blueprints/depsolve: p50 {_pct(d, 0.5):7.1f} ms  p99 {_pct(d, 0.99):7.1f} ms")
    print(f"  POST compose (qcow2):     p50 {_pct(c, 0.5):7.1f} ms  p99 {_pct(c, 0.99):7.1f} ms")
    print(f"  ratio compose/depsolve:   p50 {_pct(c, 0.5) / _pct(d, 0.5):.2f}x  p99 "
          f"{_pct(c, 0.99) / _pct(d, 0.99):.2f}x (target p50 <= 1.2x)")


BEST = tuple[float, float, float, int]


def _better(a: BEST | None, b: BEST) -> BEST:
    return b if a is None or b[0] > a[0] else a


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="best of N, rounds interleaved (shared machine)")
    parser.add_argument("--start-samples", type=int, default=40, help="compose start vs depsolve; 0: skip")
    parser.add_argument("--only-start", action="store_true", help="only the compose start measurement")
    args = parser.parse_args()
    lat = None
    if args.start_samples > 0:
        with tempfile.TemporaryDirectory(prefix="bench-weldr-start-") as t:
            lat = await compose_start_latency(Path(t), args.start_samples)
        if args.only_start:
            print_start(lat)
            return
    with tempfile.TemporaryDirectory(prefix="bench-weldr-") as t:
        tmp = Path(t)
        stores = {"small": (10, 10), "large": (1000, 10000)}
        procs: dict[str, tuple[subprocess.Popen, Path]] = {}
        try:
            sock = tmp / "baseline.socket"
            procs["baseline"] = (start_baseline(sock), sock)
            for label, (nbp, ncomp) in stores.items():
                state = tmp / label
                state.mkdir()
                await prepare_state(state, nbp, ncomp)
                procs[label] = (start_daemon(state, state / "weldr.socket"), state / "weldr.socket")
            for proc, sock in procs.values():
                await wait_ready(sock, proc)
            for label in stores:  # warm-up: the blueprint store loads its cache on first use
                await load(procs[label][1], "/api/v1/blueprints/list", 5, 0.3)
            first: dict[str, float] = {}
            for label in stores:  # the compose service reads every compose once, on the first listing
                first[label] = (await load(procs[label][1], "/api/v1/compose/status/*", 1, 60, 1))[1]
            best: dict[tuple[str, str], BEST] = {}
            for _ in range(args.rounds):
                best["baseline", "api/status"] = _better(best.get(("baseline", "api/status")), await load(
                    procs["baseline"][1], "/api/status", args.clients, args.seconds))
                for name, path in ENDPOINTS:
                    for label in stores:
                        key = (label, name)
                        best[key] = _better(best.get(key), await load(procs[label][1], path, args.clients,
                                                                      args.seconds))
                for label in stores:
                    key = (label, "compose/types (1 client)")
                    best[key] = _better(best.get(key), await load(procs[label][1], "/api/v1/compose/types", 1,
                                                                  args.seconds / 2))
        finally:
            for proc, _ in procs.values():
                proc.terminate()
            for proc, _ in procs.values():
                proc.wait(timeout=30)
    base = best["baseline", "api/status"]
    print(f"Weldr API over a unix socket: {args.clients} concurrent keep-alive clients, {os.cpu_count()} cores, "
          f"best of {args.rounds} interleaved rounds of {args.seconds:g}s")
    print("small store: 10 blueprints, 10 composes; large store: 1,000 blueprints, 10,000 composes")
    print(f"baseline (bare aiohttp app, constant JSON): {base[0]:7.0f} req/s  p99 {base[2]:6.1f} ms")
    print(f"{'endpoint':26s} {'small req/s':>11s} {'p99 ms':>8s} {'large req/s':>11s} {'p99 ms':>8s}"
          f" {'small/baseline':>14s} {'slowdown large':>14s}")
    for name in [n for n, _ in ENDPOINTS] + ["compose/types (1 client)"]:
        s, g = best["small", name], best["large", name]
        print(f"{name:26s} {s[0]:11.0f} {s[2]:8.1f} {g[0]:11.0f} {g[2]:8.1f} {s[0] / base[0]:13.2f}x"
              f" {s[0] / g[0]:13.2f}x")
    for label in stores:
        print(f"first compose/status/* after start ({label} store, fills the compose cache): {first[label]:.0f} ms")
    for label in stores:
        t = best[label, "compose/types (1 client)"]
        print(f"compose/types latency, one client, {label} store: p50 {t[1]:.2f} ms, p99 {t[2]:.2f} ms "
              "(target <= 5 ms)")
    if lat is not None:
        print_start(lat)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--baseline-server":
        baseline_server(sys.argv[2])
    else:
        asyncio.run(main())
