"""The Cloud API over HTTPS: status reads, listing, compose submission and the cost of mTLS.

Starts the real ``osbuildd serve`` twice on private state dirs (no local executor: nothing builds),
with certificates made by ``osbuildd gen-certs``:
- daemon M: the Cloud API on 127.0.0.1 over TLS with mTLS (the client certificate of gen-certs);
- daemon T: the same over plain TLS (JWT mode: no client certificate; ``/errors`` is public).
Each store holds N FINISHED composes (inserted into SQLite before the daemon starts, as
bench/routes.py does), for N = 10 and N = 10,000. Measured, in one run:
- ``GET /composes/{id}`` requests/s and p99 latency over keep-alive mTLS connections (closed loop,
  ``--clients`` connections), for N = 10 and N = 10,000: bar >= 2,000 req/s, and the 10,000 figure
  no more than 1.5x slower than the 10 one; the daemon's CPU ms per request beside it;
- ``GET /composes/`` at N = 10,000 (latency of one listing);
- ``POST /compose`` latency (the daemon enqueues the graph; the depsolve runs later in a job, so
  it is excluded by construction): bar <= 20 ms;
- a new connection + one request: mTLS against plain TLS, same route (``GET /errors/4``).
Baseline in the same run: a bare aiohttp app over the same TLS stack answering constant JSON.

    .venv/bin/python bench/cloud.py [--seconds 3] [--clients 4] [--sizes 10,10000]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.daemonproc import fetch  # noqa: E402
from bench.routes import cpu_seconds, prepare_state  # noqa: E402

BASE = "/api/image-builder-composer/v2"
BAR_RPS, BAR_SLOWDOWN, BAR_POST_MS = 2000.0, 1.5, 20.0
COMPOSE_BODY = json.dumps({
    "distribution": "debian-12",
    "image_request": {"architecture": "x86_64", "image_type": "guest-image", "upload_options": {},
                      "repositories": [{"baseurl": "http://deb.debian.org/debian"}]},
    "customizations": {"packages": ["tmux"]},
}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gen_certs(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "osbuildd.cli", "gen-certs", str(where)], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    return where


def jwks_file(where: Path) -> Path:
    """A JWKS with one RSA key (daemon T checks tokens against it; the bench sends none: public routes)."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    path = where / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "bench", "alg": "RS256", "use": "sig"}]}))
    return path


def start_daemon(state: Path, port: int, certs: Path, *, mtls: bool) -> subprocess.Popen[bytes]:
    auth = ('enable_mtls = true\nallowed_domains = ["localhost", "client.osbuild.org", "*.osbuild.org"]\n' if mtls
            else f'enable_mtls = false\nenable_jwt = true\njwt_keys_urls = ["{jwks_file(state)}"]\n')
    conf = state / "osbuildd.toml"
    conf.write_text(
        f'state_dir = "{state}"\nlog_level = "warning"\nlog_format = "json"\n'
        f'[weldr]\nsocket = "{state}/api.socket"\n[builder]\nlocal_executor = false\n'
        f'[cloud]\nlisten = "127.0.0.1:{port}"\ncert = "{certs}/composer-crt.pem"\n'
        f'key = "{certs}/composer-key.pem"\nca = "{certs}/ca-crt.pem"\n{auth}')
    return subprocess.Popen([sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(conf)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=open(state / "daemon.log", "wb"))


BASELINE_BODY = json.dumps({"href": f"{BASE}/composes/x", "id": "x", "kind": "ComposeStatus",
                            "image_status": {"status": "success"}, "status": "success"}).encode()


def baseline_server(port: int, certs: str) -> None:
    """A bare aiohttp app over TLS+mTLS answering constant JSON, on the loop the daemon picks."""
    from aiohttp import web

    from osbuildd.daemon import event_loop_factory

    async def status(_: web.Request) -> web.Response:
        return web.Response(body=BASELINE_BODY, content_type="application/json")

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=f"{certs}/ca-crt.pem")
    ctx.load_cert_chain(f"{certs}/composer-crt.pem", f"{certs}/composer-key.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    app = web.Application()
    app.router.add_get(BASE + "/composes/{id}", status)
    app.router.add_get(BASE + "/errors/{id}", status)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ctx).start()
        await asyncio.Event().wait()

    factory = event_loop_factory()
    with asyncio.Runner(loop_factory=factory) as r:
        r.run(main())


def client_context(certs: Path, *, mtls: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs / "ca-crt.pem"))
    if mtls:
        ctx.load_cert_chain(str(certs / "client-crt.pem"), str(certs / "client-key.pem"))
    return ctx


async def connect(port: int, ctx: ssl.SSLContext) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost", limit=1 << 24)


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()


async def wait_ready(port: int, ctx: ssl.SSLContext, proc: subprocess.Popen[bytes] | None, log: Path | None) -> None:
    for _ in range(600):
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-2000:] if log else ""  # noqa: ASYNC240 - the bench, not the daemon
            raise SystemExit(f"daemon exited with {proc.returncode}: {tail}")
        try:
            r, w = await connect(port, ctx)
            try:
                if await fetch(r, w, get(f"{BASE}/errors/4")) == 200:
                    return
            finally:
                w.close()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("server did not become ready")


async def closed_loop(port: int, ctx: ssl.SSLContext, paths: list[str], clients: int, seconds: float,
                      pid: int) -> tuple[float, float, float]:
    """(requests/s, p99 ms, daemon CPU ms per request) of GETs cycling through ``paths``."""
    conns = [await connect(port, ctx) for _ in range(clients)]
    for r, w in conns:
        if (status := await fetch(r, w, get(paths[0]))) != 200:
            raise SystemExit(f"{paths[0]}: HTTP {status}")
    requests = [get(p) for p in paths]
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(i: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = i
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            if (status := await fetch(reader, writer, requests[n % len(requests)])) != 200:
                raise SystemExit(f"HTTP {status}")
            latencies.append(time.perf_counter() - t)
            n += clients

    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(worker(i, r, w) for i, (r, w) in enumerate(conns)))
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    for _, w in conns:
        w.close()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    return len(latencies) / elapsed, p99, cpu * 1000 / len(latencies)


async def one_shot_ms(port: int, ctx: ssl.SSLContext, path: str, rounds: int) -> float:
    """Median ms of a NEW connection (TCP + TLS handshake) plus one request on it."""
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        r, w = await connect(port, ctx)
        if (status := await fetch(r, w, get(path))) != 200:
            raise SystemExit(f"{path}: HTTP {status}")
        times.append((time.perf_counter() - t) * 1000)
        w.close()
    return statistics.median(times)


async def post_compose_ms(port: int, ctx: ssl.SSLContext, rounds: int) -> tuple[float, float]:
    """(median, p95) ms of POST /compose on one keep-alive connection."""
    r, w = await connect(port, ctx)
    req = (f"POST {BASE}/compose HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(COMPOSE_BODY)}\r\n\r\n").encode() + COMPOSE_BODY
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        if (status := await fetch(r, w, req)) != 201:
            raise SystemExit(f"POST /compose: HTTP {status}")
        times.append((time.perf_counter() - t) * 1000)
    w.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


async def run(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-cloud-", dir="/var/tmp") as tmp:
        root = Path(tmp)
        certs = gen_certs(root / "certs")
        mctx, tctx = client_context(certs, mtls=True), client_context(certs, mtls=False)

        # baseline: the bare app over the same TLS + mTLS
        bport = free_port()
        base = subprocess.Popen(  # noqa: ASYNC220 - the bench's own server process
            [sys.executable, __file__, "--baseline-server", str(bport), str(certs)])
        try:
            await wait_ready(bport, mctx, base, None)
            b_rps, b_p99, b_cpu = await closed_loop(bport, mctx, [f"{BASE}/composes/x"], args.clients,
                                                    args.seconds, base.pid)
        finally:
            base.terminate()
            base.wait()
        print(f"baseline (bare aiohttp, TLS+mTLS, {args.clients} keep-alive clients): {b_rps:,.0f} req/s,"
              f" p99 {b_p99:.2f} ms, {b_cpu:.3f} CPU ms/req")

        figures: dict[int, tuple[float, float, float]] = {}
        list_ms = post = None
        mtls_new = tls_new = None
        for n in sizes:
            state = root / f"m{n}"
            state.mkdir()
            ids = await prepare_state(state, n)
            port = free_port()
            proc = start_daemon(state, port, certs, mtls=True)
            try:
                await wait_ready(port, mctx, proc, state / "daemon.log")
                paths = [f"{BASE}/composes/{cid}" for cid in ids[:: max(1, len(ids) // 200)]]
                await closed_loop(port, mctx, paths, args.clients, 0.5, proc.pid)   # warm caches
                figures[n] = await closed_loop(port, mctx, paths, args.clients, args.seconds, proc.pid)
                rps, p99, cpu = figures[n]
                print(f"GET /composes/{{id}}, {n:>6,} composes: {rps:,.0f} req/s ({rps / b_rps:.2f}x baseline),"
                      f" p99 {p99:.2f} ms, daemon {cpu:.3f} CPU ms/req")
                if n == max(sizes):
                    r, w = await connect(port, mctx)
                    times = []
                    for _ in range(5):
                        t = time.perf_counter()
                        if (status := await fetch(r, w, get(f"{BASE}/composes/"))) != 200:
                            raise SystemExit(f"GET /composes/: HTTP {status}")
                        times.append((time.perf_counter() - t) * 1000)
                    w.close()
                    list_ms = statistics.median(times)
                    post = await post_compose_ms(port, mctx, args.posts)
                    mtls_new = await one_shot_ms(port, mctx, f"{BASE}/errors/4", args.handshakes)
            finally:
                proc.terminate()
                proc.wait()

        state = root / "tls"
        state.mkdir()
        await prepare_state(state, 10)
        port = free_port()
        proc = start_daemon(state, port, certs, mtls=False)
        try:
            await wait_ready(port, tctx, proc, state / "daemon.log")
            tls_new = await one_shot_ms(port, tctx, f"{BASE}/errors/4", args.handshakes)
        finally:
            proc.terminate()
            proc.wait()

        small, big = figures[min(sizes)], figures[max(sizes)]
        slow = small[0] / big[0]
        print()
        print(f"bar GET /composes/{{id}} >= {BAR_RPS:,.0f} req/s: {min(small[0], big[0]):,.0f} req/s"
              f" -> {'met' if min(small[0], big[0]) >= BAR_RPS else 'MISSED'}")
        print(f"bar slowdown {max(sizes):,} vs {min(sizes):,} composes <= {BAR_SLOWDOWN}x: {slow:.2f}x"
              f" -> {'met' if slow <= BAR_SLOWDOWN else 'MISSED'}")
        print(f"GET /composes/ at {max(sizes):,} composes: {list_ms:.1f} ms per listing")
        assert post is not None and mtls_new is not None and tls_new is not None
        print(f"bar POST /compose <= {BAR_POST_MS:.0f} ms: median {post[0]:.1f} ms, p95 {post[1]:.1f} ms"
              f" -> {'met' if post[0] <= BAR_POST_MS else 'MISSED'}")
        print(f"new connection + one request: mTLS {mtls_new:.2f} ms, plain TLS {tls_new:.2f} ms"
              f" ({mtls_new / tls_new:.2f}x, +{mtls_new - tls_new:.2f} ms for the client certificate)")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--baseline-server":
        baseline_server(int(sys.argv[2]), sys.argv[3])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--sizes", default="10,10000")
    p.add_argument("--posts", type=int, default=100)
    p.add_argument("--handshakes", type=int, default=50)
    args = p.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
