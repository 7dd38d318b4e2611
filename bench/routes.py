"""Daemon CPU per request of the Weldr routes that read one compose or an empty list.

Starts the real ``osbuildd serve`` (private state dir, no local executor) over a store of N FINISHED
composes (each with a depsolve job of 20 packages, inserted into SQLite before the daemon starts), then
for each route runs a closed-loop client (1 and 50 keep-alive connections on the unix socket) and reads
the daemon's utime+stime from ``/proc/<pid>/stat`` around the run: CPU ms per request = CPU seconds /
requests. Bar: <= 0.2 ms for every route at 1,000 and 10,000 composes, 1 and 50 clients.
Baseline, measured in the same run the same way: a bare aiohttp app on a unix socket answering a
constant JSON body (the floor of this interpreter + HTTP stack), with the event loop the daemon uses.

    .venv/bin/python bench/routes.py [--seconds 2] [--rounds 3] [--sizes 1000,10000] [--clients 1,50]

``OSBUILDD_EVENT_LOOP=asyncio`` runs the daemon (and the baseline) on asyncio's loop instead of uvloop's.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds queue.py: as the script's directory it would shadow the stdlib `queue` asyncio imports
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.daemonproc import baseline_server, fetch, start_daemon  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
BAR_MS = 0.2
def _package(i: int) -> dict:
    return {"name": f"pkg{i:03d}", "epoch": 0, "version": f"1.{i}", "release": "1", "arch": "amd64",
            "url": f"http://deb.example/pool/pkg{i:03d}.deb", "checksum": "sha256:" + "0" * 64}


async def prepare_state(state: Path, composes: int) -> list[str]:
    """Migrate a fresh database, then bulk-insert FINISHED composes; returns their ids."""
    from osbuildd.queue.db import Database

    db = await Database.open(state / "osbuildd.db")
    await db.close()

    def insert() -> list[str]:
        conn = sqlite3.connect(state / "osbuildd.db")
        now = time.time()
        result = json.dumps({"success": True, "osbuild_output": {"success": True}, "target_results": []})
        dep_result = json.dumps({"package_specs": {"os": [_package(i) for i in range(20)],
                                                   "build": [_package(99)]}})
        jobs, comp, ids = [], [], []
        for i in range(composes):
            cid, dep = str(uuid.uuid4()), str(uuid.uuid4())
            ids.append(cid)
            jobs.append((dep, "depsolve", "{}", "finished", dep_result, None, now - i, now - i, now - i))
            jobs.append((cid, "osbuild:x86_64", '{"targets":[],"pipeline_names":null}', "finished", result,
                         None, now - i, now - i, now - i + 1))
            request = json.dumps({"distro": "debian-12", "arch": "x86_64", "image_type": "qcow2",
                                  "blueprint": {"name": f"bench-{i % 100:03d}", "version": "0.0.1",
                                                "packages": [{"name": "tmux", "version": "*"}]},
                                  "targets": []})
            comp.append((cid, dep, request, f"bench-{i % 100:03d}", "0.0.1", "qcow2", "debian-12", "x86_64",
                         now - i, 2147483648, "disk.qcow2"))
        conn.executemany("INSERT INTO jobs (id, type, args, status, result, error, queued_at, started_at,"
                         " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", jobs)
        conn.executemany("INSERT INTO composes (id, depsolve_job, request, blueprint_name, blueprint_version,"
                         " image_type, distro, arch, created, size, image_filename, fake)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)", comp)
        conn.commit()
        conn.close()
        return ids

    return await asyncio.to_thread(insert)


def start_baseline(socket_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--baseline-server", str(socket_path)])


async def wait_ready(socket_path: Path, proc: subprocess.Popen) -> None:
    for _ in range(1200):
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            r, w = await asyncio.open_unix_connection(str(socket_path))
            try:
                if await fetch(r, w, b"GET /api/status HTTP/1.1\r\nHost: localhost\r\n\r\n") == 200:
                    return
            finally:
                w.close()
        except (OSError, asyncio.IncompleteReadError):
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("server did not become ready")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def load(socket_path: Path, pid: int, path: str, clients: int, seconds: float) -> tuple[float, float]:
    """(requests/s, daemon CPU ms per request) with ``clients`` closed-loop keep-alive connections."""
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    conns = [await asyncio.open_unix_connection(str(socket_path), limit=1 << 24) for _ in range(clients)]
    for r, w in conns:   # warm: the first request of a route may fill a cache
        if (status := await fetch(r, w, request)) != 200:
            raise SystemExit(f"{path}: HTTP {status}")
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            if (status := await fetch(reader, writer, request)) != 200:
                raise SystemExit(f"{path}: HTTP {status}")
            done += 1

    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    try:
        await asyncio.gather(*(worker(r, w) for r, w in conns))
    finally:
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
        for _, w in conns:
            w.close()
    return done / elapsed, cpu * 1000 / max(done, 1)


def routes(ids: list[str]) -> list[tuple[str, str]]:
    one = ids[len(ids) // 2]
    return [
        ("api/status", "/api/status"),
        ("compose/info/<id>", f"/api/v1/compose/info/{one}"),
        ("compose/status/<id>", f"/api/v1/compose/status/{one}"),
        ("compose/queue (empty)", "/api/v1/compose/queue"),
        ("compose/failed (empty)", "/api/v1/compose/failed"),
        ("compose/status/*?status=RUNNING", "/api/v1/compose/status/*?status=RUNNING"),
    ]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--sizes", default="1000,10000", help="compose counts, comma-separated")
    parser.add_argument("--clients", default="1,50", help="concurrent connections, comma-separated")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds; each figure is the round with the least CPU per request")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    clients = [int(x) for x in args.clients.split(",")]
    best: dict[tuple[str, int, int], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-routes-") as t:
        tmp = Path(t)
        servers: list[tuple[int, subprocess.Popen, Path, list[tuple[str, str]]]] = []
        try:
            sock = tmp / "baseline.socket"
            servers.append((0, start_baseline(sock), sock, [("baseline: bare aiohttp, constant JSON", "/api/status")]))
            for size in sizes:
                state = tmp / f"state-{size}"
                state.mkdir()
                ids = await prepare_state(state, size)
                servers.append((size, start_daemon(state, state / "weldr.socket"), state / "weldr.socket", routes(ids)))
            for _, proc, sock, _ in servers:
                await wait_ready(sock, proc)
            for _ in range(args.rounds):   # interleaved: load from the rest of the machine hits all alike
                for size, proc, sock, paths in servers:
                    for name, path in paths:
                        for n in clients:
                            got = await load(sock, proc.pid, path, n, args.seconds)
                            key = (name, size, n)
                            if key not in best or got[1] < best[key][1]:
                                best[key] = got
        finally:
            for _, proc, _, _ in servers:
                proc.terminate()
            for _, proc, _, _ in servers:
                proc.wait(timeout=30)
    try:
        from osbuildd.daemon import event_loop_factory
        loop = "uvloop" if event_loop_factory() is not None else "asyncio"
    except ImportError:
        loop = "asyncio"
    print(f"Weldr routes over a unix socket, closed loop, {os.cpu_count()} cores, best of {args.rounds} rounds"
          f" of {args.seconds:g}s; event loop: {loop}; daemon CPU = utime+stime from /proc/<pid>/stat")
    print(f"{'route':38s} {'composes':>8s} {'clients':>7s} {'req/s':>8s} {'CPU ms/req':>10s} {'bar':>5s}")
    for (name, size, n), (rps, ms) in best.items():
        bar = "" if size == 0 else ("ok" if ms <= BAR_MS else "OVER")
        print(f"{name:38s} {size or '':>8} {n:7d} {rps:8.0f} {ms:10.3f} {bar:>5s}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--baseline-server":
        baseline_server(sys.argv[2])
    else:
        asyncio.run(main())
