"""The image-builder API v1: listing an organisation's composes beside a big tenant, and what
``POST /compose`` costs over the Cloud API's own.

Starts the real ``osbuildd serve`` (no local executor: nothing builds) with the image-builder API
and the Cloud API on unix sockets (no TLS on either, so both routes pay the same transport):
- store E ("empty"): organisation A's 10 composes and nothing else;
- store B ("big"): the same 10 of A, and 10,000 of organisation B;
(inserted into SQLite before the daemon starts, as bench/routes.py does). Measured, in one run:
- ``GET /api/image-builder/v1/composes`` as A: requests/s and p99 over keep-alive connections
  (closed loop, ``--clients``), store B against store E: bar, B's figures within 1.2x of E's;
- ``POST /api/image-builder/v1/compose`` (a Debian 12 guest-image to aws.s3) against the Cloud
  API's ``POST /compose`` of the Cloud request image-builder sends for it, on the same daemon:
  bar, the median difference (identity, quota, mapping, the image-builder row) <= 10 ms.
Baseline in the same run: store E, and the Cloud API's own POST.

    .venv/bin/python bench/imagebuilder.py [--seconds 6] [--rounds 6] [--clients 4] [--posts 200] [--big 10000]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.daemonproc import fetch  # noqa: E402
from bench.routes import cpu_seconds  # noqa: E402

IB = "/api/image-builder/v1"
CLOUD = "/api/image-builder-composer/v2"
BAR_RATIO, BAR_POST_MS = 1.2, 10.0
REGION = "us-east-1"
IB_BODY = {
    "image_name": "bench",
    "distribution": "debian-12",
    "image_requests": [{"architecture": "x86_64", "image_type": "guest-image",
                        "upload_request": {"type": "aws.s3", "options": {}}}],
    "customizations": {"packages": ["tmux"]},
}


def identity(org: str) -> str:
    doc = {"identity": {"type": "User", "org_id": org, "account_number": f"acct-{org}",
                        "internal": {"org_id": org}, "user": {"username": "bench", "email": "bench@example.com"}},
           "entitlements": {"rhel": {"is_entitled": True}}}
    return base64.b64encode(json.dumps(doc).encode()).decode()


def prepare_state(state: Path, orgs: dict[str, int]) -> None:
    """A migrated database with ``orgs[org]`` image-builder composes per organisation, bulk-inserted."""
    from osbuildd.queue.db import Database

    async def migrate() -> None:
        db = await Database.open(state / "osbuildd.db")
        await db.close()

    asyncio.run(migrate())
    conn = sqlite3.connect(state / "osbuildd.db")
    now = time.time()
    request = json.dumps(IB_BODY)
    rows = [(str(uuid.uuid4()), request, now - i, f"acct-{org}", org, "bench@example.com", f"bench-{i}")
            for org, n in orgs.items() for i in range(n)]
    conn.executemany("INSERT INTO ib_composes (job_id, request, created_at, account_number, org_id, email,"
                     " image_name) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()


def start_daemon(state: Path) -> subprocess.Popen[bytes]:
    conf = state / "osbuildd.toml"
    conf.write_text(
        f'state_dir = "{state}"\nlog_level = "warning"\nlog_format = "json"\n'
        f'[weldr]\nsocket = "{state}/api.socket"\n[builder]\nlocal_executor = false\n'
        f'[cloud]\nlisten = "unix:{state}/cloud.sock"\n'
        f'[image_builder]\nlisten = "unix:{state}/ib.sock"\naws_region = "{REGION}"\n')
    return subprocess.Popen([sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(conf),
                             "--composer-config", ""], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=open(state / "daemon.log", "wb"))


def request(method: str, path: str, org: str | None = None, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
    if org is not None:
        head += f"X-Rh-Identity: {identity(org)}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


async def connect(sock: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_unix_connection(str(sock), limit=1 << 24)


async def wait_ready(state: Path, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"daemon exited with {proc.returncode}: {(state / 'daemon.log').read_text()[-2000:]}")
        try:
            r, w = await connect(state / "ib.sock")
            try:
                if await fetch(r, w, request("GET", "/status")) == 200:
                    return
            finally:
                w.close()
        except (OSError, asyncio.IncompleteReadError):
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("daemon did not become ready")


async def closed_loop(sock: Path, req: bytes, clients: int, seconds: float, pid: int) -> tuple[float, float, float]:
    """(requests/s, p99 ms, daemon CPU ms per request) of ``req`` on ``clients`` keep-alive connections."""
    conns = [await connect(sock) for _ in range(clients)]
    for r, w in conns:
        if (status := await fetch(r, w, req)) != 200:
            raise SystemExit(f"HTTP {status}")
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            if (status := await fetch(reader, writer, req)) != 200:
                raise SystemExit(f"HTTP {status}")
            latencies.append(time.perf_counter() - t)

    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(worker(r, w) for r, w in conns))
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    for _, w in conns:
        w.close()
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(len(latencies) * 0.99) - 1] * 1000, cpu * 1000 / len(latencies)


async def post_ms(sock: Path, req: bytes, rounds: int) -> list[float]:
    r, w = await connect(sock)
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        if (status := await fetch(r, w, req)) != 201:
            raise SystemExit(f"POST: HTTP {status}")
        times.append((time.perf_counter() - t) * 1000)
    w.close()
    return sorted(times)


def cloud_body(state: Path) -> bytes:
    """The Cloud request image-builder sends for IB_BODY (the mapping osbuildd uses, read back)."""
    from osbuildd.config import ImageBuilderConfig
    from osbuildd.imagebuilder.distributions import DistributionRegistry
    from osbuildd.imagebuilder.mapping import cloud_compose_request

    registry = DistributionRegistry.load()
    cfg = ImageBuilderConfig(aws_region=REGION)
    return json.dumps(cloud_compose_request(IB_BODY, registry.get("debian-12"), cfg)).encode()


async def measure_lists(root: Path, args: argparse.Namespace) -> dict[str, tuple[float, float, float]]:
    """Both daemons (E and B) up at once, measured in alternating windows so that both see the same
    machine (a busy neighbour slows both alike): per store (req/s, p99 ms, CPU ms/req)."""
    names = ("empty", "big")
    procs = {n: start_daemon(root / n) for n in names}
    try:
        for n in names:
            await wait_ready(root / n, procs[n])
        req = request("GET", f"{IB}/composes", "org-a")
        done: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
        for n in names:   # warm
            await closed_loop(root / n / "ib.sock", req, args.clients, 0.5, procs[n].pid)
        for _ in range(args.rounds):
            for n in names:
                done[n].append(await closed_loop(root / n / "ib.sock", req, args.clients,
                                                 args.seconds / args.rounds, procs[n].pid))
        return {n: (statistics.mean(x[0] for x in done[n]), statistics.median(x[1] for x in done[n]),
                    statistics.mean(x[2] for x in done[n])) for n in names}
    finally:
        for p in procs.values():
            p.terminate()
            p.wait()


async def measure_post(state: Path, args: argparse.Namespace) -> tuple[list[float], list[float]]:
    proc = start_daemon(state)
    try:
        await wait_ready(state, proc)
        ib = request("POST", f"{IB}/compose", "org-post", json.dumps(IB_BODY).encode())
        cloud = request("POST", f"{CLOUD}/compose", None, cloud_body(state))
        await post_ms(state / "ib.sock", ib, 10)   # warm both paths
        await post_ms(state / "cloud.sock", cloud, 10)
        ib_times, cloud_times = [], []
        for _ in range(args.posts // 20):   # interleaved, so both see the same queue length
            ib_times += await post_ms(state / "ib.sock", ib, 10)
            cloud_times += await post_ms(state / "cloud.sock", cloud, 10)
        return sorted(ib_times), sorted(cloud_times)
    finally:
        proc.terminate()
        proc.wait()


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ib-", dir="/var/tmp") as tmp:
        root = Path(tmp)
        for name, orgs in (("empty", {"org-a": 10}), ("big", {"org-a": 10, "org-b": args.big})):
            (root / name).mkdir()
            await asyncio.to_thread(prepare_state, root / name, orgs)
        figures = await measure_lists(root, args)
        e_rps, e_p99, e_cpu = figures["empty"]
        b_rps, b_p99, b_cpu = figures["big"]
        print(f"baseline GET /composes as A (10 composes, store empty otherwise): {e_rps:,.0f} req/s,"
              f" p99 {e_p99:.2f} ms, {e_cpu:.3f} CPU ms/req")
        print(f"GET /composes as A (10 composes, B has {args.big:,} in the same store): {b_rps:,.0f} req/s,"
              f" p99 {b_p99:.2f} ms, {b_cpu:.3f} CPU ms/req")
        rps_ratio, p99_ratio = e_rps / b_rps, b_p99 / e_p99
        ok = rps_ratio <= BAR_RATIO and p99_ratio <= BAR_RATIO
        print(f"bar within {BAR_RATIO}x of the empty store: req/s {rps_ratio:.2f}x slower, p99 {p99_ratio:.2f}x"
              f" -> {'met' if ok else 'MISSED'}")

        ib_times, cloud_times = await measure_post(root / "empty", args)
        ib_med, cloud_med = statistics.median(ib_times), statistics.median(cloud_times)
        p95 = int(len(ib_times) * 0.95) - 1
        print(f"baseline Cloud API POST /compose: median {cloud_med:.2f} ms, p95 {cloud_times[p95]:.2f} ms")
        print(f"image-builder POST /compose: median {ib_med:.2f} ms, p95 {ib_times[p95]:.2f} ms")
        over = ib_med - cloud_med
        print(f"bar overhead <= {BAR_POST_MS:.0f} ms: {over:+.2f} ms ({ib_med / cloud_med:.2f}x)"
              f" -> {'met' if over <= BAR_POST_MS else 'MISSED'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=6.0, help="per store, split over --rounds windows")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--posts", type=int, default=200)
    p.add_argument("--big", type=int, default=10000)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
