"""Several ``osbuildd serve`` on one PostgreSQL (issue 17): fake-compose throughput and idle statements.

Both measured in one run, each against a baseline of the same run; every PostgreSQL phase in a fresh
database created from the admin URL (``--pg-url``, else $OSBUILDD_TEST_PG, else the private test
cluster's /var/tmp/osbuildd-test/servers/pg.url) and dropped after it. Daemons run without a local
executor, one state dir each, one shared ``[results] dir`` per phase, the test suite's warm depsolve cache.

1. Throughput: ``--composes`` Weldr ``POST /api/v1/compose?test=2`` (depsolved and manifested in the
   request, as upstream; nothing built: the compose is finished at once) from ``--clients`` concurrent
   keep-alive clients, round-robin over the daemons' Weldr unix sockets: composes/s with 3 daemons and
   with 1 on the same PostgreSQL, their ratio (bar >= 2x), and 1 daemon on SQLite for reference. Every
   daemon must then list every compose as finished. The CPU of each daemon, of the whole PostgreSQL
   cluster (postmaster and its backends, /proc) and of this client is printed, since the cores are shared.
2. Idle statements: 3 daemons with the worker API (TLS + mTLS, as bench/worker.py) and 50 idle
   long-polling workers spread over them (bench/worker.py's Pollers: one ``POST /api/worker/v1/jobs``
   always outstanding each). After a 10 s settle, ``pg_stat_statements_reset()``, ``--idle-seconds`` idle,
   then the calls of the bench database's statements (this script's own, which name pg_stat_statements,
   left out) per second. Bar <= 10/s. Baseline: the same daemons with 0 workers. Top 5 statements printed.

    .venv/bin/python bench/scaleout.py [--composes 600] [--clients 24] [--idle-seconds 60] [--workers 50]
                                       [--pg-url URL] [--log-dir DIR] [--skip-throughput] [--skip-idle]
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds queue.py: as the script's directory it would shadow the stdlib `queue` asyncio imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import ssl  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator, Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402

import asyncpg  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.daemonproc import start_daemon  # noqa: E402
from bench.queue import pg_url_of_test_cluster  # noqa: E402
from bench.routes import TICKS  # noqa: E402
from bench.weldr import wait_ready  # noqa: E402
from bench.worker import Pollers, answer, client_context, free_port, gen_certs, request  # noqa: E402
from bench.worker import wait_ready as worker_ready  # noqa: E402

BAR_RATIO, BAR_STATEMENTS = 2.0, 10.0
BP = {"name": "scaleout", "description": "scale-out bench", "version": "0.0.1", "packages": [{"name": "tmux"}]}
START = json.dumps({"blueprint_name": "scaleout", "compose_type": "tar", "branch": "master"}).encode()
OWN = "query NOT ILIKE '%pg_stat_statements%'"   # this script's own statements all name the view
THIS_DB = "dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
SHARED_CACHE = Path(os.environ.get("OSBUILDD_TEST_STATE", "/var/tmp/osbuildd-test/state")) / "cache"


class BenchError(Exception):
    pass


# -- PostgreSQL ----------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def fresh_database(admin: str, label: str) -> AsyncIterator[str]:
    """The URL of a new database on the admin URL's server, dropped (forcibly) on the way out."""
    name = f"osbuildd_bench_{label}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await conn.close()
    try:
        yield urlunsplit(urlsplit(admin)._replace(path="/" + name))
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree_seconds(pid: int) -> float:
    """utime + stime of a process and of the children it has reaped: a daemon's depsolves run apt in
    subprocesses, which are part of what a compose costs."""
    return sum(int(x) for x in _stat(pid)[11:15]) / TICKS


class PostgresCPU:
    """CPU seconds of the whole cluster: the postmaster, its live children, and (cutime/cstime) the
    children it has reaped, so a backend that ends between two readings still counts."""

    def __init__(self, postmaster: int) -> None:
        self.postmaster = postmaster

    @classmethod
    async def of(cls, admin: str) -> PostgresCPU:
        conn = await asyncpg.connect(admin)
        try:   # read while the session is open: its backend exits with it
            return cls(int(_stat(int(await conn.fetchval("SELECT pg_backend_pid()")))[1]))
        finally:
            await conn.close()

    def seconds(self) -> float:
        """NaN once the postmaster is gone (the cluster restarted: another run's fault test)."""
        try:
            f = _stat(self.postmaster)
        except OSError:
            return float("nan")
        total = sum(int(x) for x in f[11:15])
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                c = _stat(int(entry.name))
            except OSError:
                continue
            if int(c[1]) == self.postmaster:
                total += int(c[11]) + int(c[12])
        return total / TICKS


# -- daemons -------------------------------------------------------------------------------------

@dataclass
class Daemon:
    state: Path
    log: Path
    proc: subprocess.Popen
    port: int = 0

    @property
    def weldr(self) -> Path:
        return self.state / "weldr.socket"


@dataclass
class Fleet:
    """``n`` daemons of one phase: state dirs under ``root``, logs in ``logs``, one shared results dir."""

    root: Path
    logs: Path
    label: str
    daemons: list[Daemon] = field(default_factory=list)

    def start(self, n: int, extra: Callable[[], tuple[str, int]], cache: bool = True) -> None:
        """``extra()``: each daemon's own config sections and its worker API port (0: none); ``cache``: a
        warm depsolve cache (daemon i of every phase gets copy i of the test suite's)."""
        results = self.root / f"{self.label}-results"
        results.mkdir(exist_ok=True)
        for i in range(n):
            state = self.root / f"{self.label}-{i}"
            state.mkdir()
            if cache:
                (state / "cache").symlink_to(warm_cache(self.root / f"cache-{i}"))
            log = self.logs / f"{self.label}-{i}.log"
            text, port = extra()
            text += f'[results]\ndir = "{results}"\n'
            self.daemons.append(Daemon(state, log, start_daemon(state, state / "weldr.socket", text, log), port))

    async def ready(self) -> None:
        for d in self.daemons:
            try:
                await wait_ready(d.weldr, d.proc)
            except SystemExit:
                self.dump()
                raise

    def cpu(self) -> list[float]:
        return [tree_seconds(d.proc.pid) for d in self.daemons]

    def dump(self) -> None:
        for d in self.daemons:
            text = d.log.read_text(errors="replace") if d.log.exists() else ""
            print(f"--- {d.log} (last 3000 characters) ---\n{text[-3000:]}", file=sys.stderr)

    def stop(self) -> None:
        for d in self.daemons:
            if d.proc.poll() is None:
                d.proc.terminate()
        for d in self.daemons:
            try:
                d.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                d.proc.kill()
                d.proc.wait()


def warm_cache(copy: Path) -> Path:
    """A private copy of the shared depsolve cache (daemons sharing one apt directory race: a depsolve
    reading the indexes while another daemon's ``apt-get update`` rewrites them fails), its refresh stamp
    renewed so no phase pays for a mirror fetch midway."""
    if not copy.exists():
        if SHARED_CACHE.is_dir():
            subprocess.run(["cp", "-a", "--reflink=auto", str(SHARED_CACHE), str(copy)], check=True)
        else:
            copy.mkdir()
    for stamp in copy.glob("depsolve/apt/*/updated"):
        stamp.touch()
    return copy


def pg_section(url: str) -> str:
    return f'[database]\nurl = "{url}"\n'


# -- throughput ----------------------------------------------------------------------------------

class Weldr:
    """One keep-alive connection to a daemon's Weldr socket."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def open(self) -> Weldr:
        self.r, self.w = await asyncio.open_unix_connection(str(self.path), limit=1 << 24)
        return self

    async def call(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        self.w.write(request(method, path, body))
        return await answer(self.r)

    def close(self) -> None:
        self.w.close()


async def check(conn: Weldr, method: str, path: str, body: bytes = b"") -> bytes:
    status, text = await conn.call(method, path, body)
    if status != 200:
        raise BenchError(f"{method} {path} on {conn.path}: HTTP {status} {text[:500]!r}")
    return text


async def submit(socks: list[Path], total: int, clients: int) -> float:
    """Seconds for ``total`` ?test=2 composes, request i to daemon i % len(socks), ``clients`` in flight."""
    conns = [[await Weldr(s).open() for s in socks] for _ in range(clients)]
    issued = 0

    async def client(mine: list[Weldr]) -> None:
        nonlocal issued
        while issued < total:
            i = issued
            issued += 1
            await check(mine[i % len(mine)], "POST", "/api/v1/compose?test=2", START)

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(client(c) for c in conns))
    finally:
        for c in conns:
            for w in c:
                w.close()
    return time.perf_counter() - t0


@dataclass
class Throughput:
    label: str
    daemons: int
    rate: float
    daemon_cpu: list[float]
    pg_cpu: float | None
    client_cpu: float


async def throughput(fleet: Fleet, args: argparse.Namespace, pg: PostgresCPU | None) -> Throughput:
    socks = [d.weldr for d in fleet.daemons]
    first = await Weldr(socks[0]).open()
    await check(first, "POST", "/api/v1/blueprints/new", json.dumps(BP).encode())
    first.close()
    warm = 2 * len(socks)   # imports, depsolve cache, the blueprint read by every daemon
    await submit(socks, warm, 1)
    c0, p0, k0 = fleet.cpu(), pg.seconds() if pg else 0.0, time.process_time()
    secs = await submit(socks, args.composes, args.clients)
    c1, p1, k1 = fleet.cpu(), pg.seconds() if pg else 0.0, time.process_time()
    for s in socks:   # every daemon lists every compose, finished
        conn = await Weldr(s).open()
        body = json.loads(await check(conn, "GET", "/api/v1/compose/finished"))
        conn.close()
        if len(body["finished"]) != warm + args.composes:
            raise BenchError(f"{s}: {len(body['finished'])} finished composes, expected {warm + args.composes}")
    return Throughput(fleet.label, len(socks), args.composes / secs, [(b - a) / secs for a, b in zip(c0, c1, strict=True)],
                      (p1 - p0) / secs if pg else None, (k1 - k0) / secs)


def show(t: Throughput) -> None:
    cpu = " + ".join(f"{c * 100:.0f}%" for c in t.daemon_cpu)
    pg = f", postgres {t.pg_cpu * 100:.0f}%" if t.pg_cpu is not None else ""
    print(f"{t.label}: {t.rate:.1f} composes/s (CPU of one core: daemons {cpu}{pg}, client {t.client_cpu * 100:.0f}%)")


async def throughput_phases(root: Path, logs: Path, admin: str, args: argparse.Namespace
                            ) -> dict[str, Throughput]:
    out: dict[str, Throughput] = {}
    for label, n, backend in (("sqlite-1", 1, "sqlite"), ("pg-1", 1, "pg"), ("pg-3", 3, "pg")):
        async with contextlib.AsyncExitStack() as stack:
            url = await stack.enter_async_context(fresh_database(admin, label.replace("-", ""))) \
                if backend == "pg" else ""
            fleet = Fleet(root, logs, label)
            stack.callback(fleet.stop)
            fleet.start(n, lambda url=url: (pg_section(url) if url else "", 0))
            await fleet.ready()
            try:
                pg = await PostgresCPU.of(admin) if backend == "pg" else None
                out[label] = await throughput(fleet, args, pg)
            except BaseException:
                fleet.dump()
                raise
            name = {"sqlite-1": "1 daemon on SQLite", "pg-1": "1 daemon on PostgreSQL",
                    "pg-3": "3 daemons on one PostgreSQL"}[label]
            out[label].label = f"fake-compose throughput, {name}, {args.composes} composes, {args.clients} in flight"
            show(out[label])
    return out


# -- idle statements -----------------------------------------------------------------------------

def worker_section(url: str, certs: Path) -> Callable[[], tuple[str, int]]:
    """The worker API as bench/worker.py configures it (mTLS, long polls never time out)."""
    def extra() -> tuple[str, int]:
        port = free_port()
        return (pg_section(url) +
                f'[worker_api]\nlisten = "127.0.0.1:{port}"\ncert = "{certs}/composer-crt.pem"\n'
                f'key = "{certs}/composer-key.pem"\nca = "{certs}/ca-crt.pem"\n'
                'allowed_domains = ["localhost", "worker"]\nrequest_job_timeout = 0\njob_timeout = 3600\n'), port
    return extra


@dataclass
class Idle:
    workers: int
    rate: float
    top: list[tuple[int, str]]
    daemon_cpu: list[float]
    pg_cpu: float


async def statements(url: str, seconds: float, fleet: Fleet, pg: PostgresCPU, workers: int) -> Idle:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("SELECT pg_stat_statements_reset()")
        t0, c0, p0 = time.monotonic(), fleet.cpu(), pg.seconds()
        await asyncio.sleep(seconds)
        calls = int(await conn.fetchval(f"SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                                        f"WHERE {THIS_DB} AND {OWN}"))
        secs, c1, p1 = time.monotonic() - t0, fleet.cpu(), pg.seconds()
        top = await conn.fetch(f"SELECT calls, regexp_replace(query, '\\s+', ' ', 'g') AS q FROM pg_stat_statements"
                               f" WHERE {THIS_DB} AND {OWN} ORDER BY calls DESC LIMIT 5")
    finally:
        await conn.close()
    return Idle(workers, calls / secs, [(int(r["calls"]), str(r["q"])) for r in top],
                [(b - a) / secs for a, b in zip(c0, c1, strict=True)], (p1 - p0) / secs)


def show_idle(i: Idle, seconds: float) -> None:
    cpu = " + ".join(f"{c * 100:.2f}%" for c in i.daemon_cpu)
    print(f"idle PostgreSQL statements/s, 3 daemons, {i.workers} idle long-polling workers, over {seconds:.0f} s: "
          f"{i.rate:.2f}/s (CPU of one core: daemons {cpu}, postgres {i.pg_cpu * 100:.2f}%)")
    for calls, q in i.top:
        print(f"  {calls:6d} calls  {q[:110]}")


async def idle_phase(root: Path, logs: Path, admin: str, args: argparse.Namespace) -> list[Idle]:
    pg = await PostgresCPU.of(admin)
    certs = gen_certs(root / "x509")
    ctx: ssl.SSLContext = client_context(certs)
    out: list[Idle] = []
    async with fresh_database(admin, "idle") as url:
        fleet = Fleet(root, logs, "idle")
        try:
            fleet.start(3, worker_section(url, certs), cache=False)
            await fleet.ready()
            for d in fleet.daemons:
                await worker_ready(d.port, ctx, d.proc, d.log)
            for workers in (0, args.workers):
                pollers = [Pollers(d.port, ctx) for d in fleet.daemons]
                for k, p in enumerate(pollers):   # spread: 17 + 17 + 16 for 50
                    await p.start(workers // 3 + (1 if k < workers % 3 else 0))
                await asyncio.sleep(args.settle)
                out.append(await statements(url, args.idle_seconds, fleet, pg, workers))
                show_idle(out[-1], args.idle_seconds)
                for p in pollers:
                    await p.stop()
                for d in fleet.daemons:
                    if d.proc.poll() is not None:
                        raise BenchError(f"daemon {d.state} exited with {d.proc.returncode}")
        except BaseException:
            fleet.dump()
            raise
        finally:
            fleet.stop()
    return out


# -- the run -------------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


async def run(args: argparse.Namespace) -> None:
    admin = args.pg_url or os.environ.get("OSBUILDD_TEST_PG") or pg_url_of_test_cluster()
    if not admin:
        raise SystemExit("no PostgreSQL: --pg-url, $OSBUILDD_TEST_PG, or `bash scripts/test-pg.sh start`")
    print(f"CPUs: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="osbuildd-bench-scaleout-", dir="/var/tmp") as tmp:
        root = Path(tmp)
        logs = Path(args.log_dir) if args.log_dir else root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        if not args.skip_throughput:   # daemon i of every phase gets copy i of the warm cache
            await asyncio.gather(*(asyncio.to_thread(warm_cache, root / f"cache-{i}") for i in range(3)))
        tp = await throughput_phases(root, logs, admin, args) if not args.skip_throughput else {}
        idle = await idle_phase(root, logs, admin, args) if not args.skip_idle else []
    print()
    if tp:
        ratio = tp["pg-3"].rate / tp["pg-1"].rate
        print(f"SQLite, 1 daemon (reference): {tp['sqlite-1'].rate:.1f} composes/s")
        print(f"PostgreSQL, 1 daemon: {tp['pg-1'].rate:.1f} composes/s")
        print(f"PostgreSQL, 3 daemons: {tp['pg-3'].rate:.1f} composes/s")
        print(f"bar 3 daemons / 1 daemon on PostgreSQL >= {BAR_RATIO:.0f}x: {ratio:.2f}x -> {verdict(ratio >= BAR_RATIO)}")
        busy = sum(tp["pg-3"].daemon_cpu) + (tp["pg-3"].pg_cpu or 0) + tp["pg-3"].client_cpu
        print(f"CPU in use during the 3-daemon phase: {busy * 100:.0f}% of {(os.cpu_count() or 1) * 100}% "
              f"(daemons {sum(tp['pg-3'].daemon_cpu) * 100:.0f}%, postgres {(tp['pg-3'].pg_cpu or 0) * 100:.0f}%, "
              f"client {tp['pg-3'].client_cpu * 100:.0f}%)")
    if idle:
        base, loaded = idle[0], idle[-1]
        print(f"idle statements/s, 0 workers (baseline): {base.rate:.2f}/s")
        print(f"idle statements/s, {loaded.workers} workers: {loaded.rate:.2f}/s")
        print(f"bar idle statements/s with {loaded.workers} workers <= {BAR_STATEMENTS:.0f}/s: {loaded.rate:.2f}/s"
              f" -> {verdict(loaded.rate <= BAR_STATEMENTS)}")


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--composes", type=int, default=600)
    p.add_argument("--clients", type=int, default=24)
    p.add_argument("--idle-seconds", type=float, default=60.0)
    p.add_argument("--settle", type=float, default=10.0, help="seconds before an idle measurement")
    p.add_argument("--workers", type=int, default=50)
    p.add_argument("--pg-url", default="", help="an admin URL (may CREATE DATABASE)")
    p.add_argument("--log-dir", default="", help="keep the daemons' logs here (default: the run's temp dir)")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-idle", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        asyncio.run(run(args))
    except BenchError as e:
        raise SystemExit(f"scaleout: {e}") from None


if __name__ == "__main__":
    main()
