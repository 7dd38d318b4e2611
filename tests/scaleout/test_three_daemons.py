"""Three ``osbuildd serve`` and three ``osbuildd worker`` on one PostgreSQL, all on loopback (issue 17).

60 composes go round-robin through the three daemons' Weldr sockets: 57 ``?test=2`` fakes and 3 real
Debian tar builds (each with its own hostname, so an image is shown to be *that* compose's). The real
builds run one after the other (one image build at a time on the machine: a rule of this test host);
the fakes are submitted meanwhile. During the run: the worker building the first real compose is
killed with SIGKILL and restarted; the daemon holding the watchdog leadership is killed with SIGKILL
and restarted with the same config ~10 s later; PostgreSQL is restarted (``pg_ctl restart -m fast``).

Then: every compose FINISHED, its build job finished once with a result (the jobs table read
directly; one retry only for the killed worker's job; one "finished by a worker" across every
daemon's logs), all three daemons report every compose identically, every image downloads
through every daemon with the same sha256, another daemon took the watchdog leadership while the
killed leader was down, and at the end exactly one of the three leads.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import aiohttp
import asyncpg
import pgtest
import pytest
from worker.netns import marked
from worker.test_remote_builds import tar_hostname

from .cluster import Cluster, Node, cluster

pytestmark = [pytest.mark.build, pytest.mark.usefixtures("require_root")]

FAKES, REALS = 57, 3
LIMIT = 3600.0        # hang guard, not a timing assertion
DONE = {"FINISHED", "FAILED"}
FAKE_BP = "scaleout-fake"
T = TypeVar("T")


@dataclass
class Run:
    c: Cluster
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)   # a fault never hits a submission in flight
    count: int = 0
    composes: dict[str, int] = field(default_factory=dict)     # compose id -> daemon it went through
    hostnames: dict[str, str] = field(default_factory=dict)    # real compose id -> its hostname
    notes: list[str] = field(default_factory=list)
    killed_worker_job: str | None = None
    killed_leader: int | None = None
    took_over: int | None = None        # the daemon that led while the killed leader was down
    t0: float = field(default_factory=time.monotonic)

    def note(self, text: str) -> None:
        self.notes.append(f"{time.monotonic() - self.t0:7.1f}s {text}")

    def live(self) -> list[Node]:
        return [n for n in self.c.nodes if n.alive()]


async def submit(run: Run, blueprint: str, test: str) -> str:
    async with run.lock:
        node = run.c.nodes[run.count % len(run.c.nodes)]
        run.count += 1
        await node.up.wait()          # a killed daemon's turn waits for its restart
        path = "/api/v1/compose" + (f"?test={test}" if test else "")
        status, body = await node.call("POST", path, {"blueprint_name": blueprint, "compose_type": "tar",
                                                      "branch": "master"})
        assert status == 200, (node.index, status, body, node.log_text()[-3000:])
        cid = str(body["build_id"])
        run.composes[cid] = node.index
        return cid


async def states(run: Run, ids: list[str]) -> dict[str, str]:
    # the fault task may kill the chosen daemon mid-request: ask the next live one then
    for attempt in range(30):
        try:
            status, body = await run.live()[attempt % len(run.live())].call(
                "GET", f"/api/v1/compose/status/{','.join(ids)}")
            break
        except (aiohttp.ClientError, ZeroDivisionError):
            await asyncio.sleep(1)
    else:
        raise AssertionError("no daemon answered compose/status for 30 s")
    assert status == 200, body
    return {e["id"]: e["queue_status"] for e in body["uuids"]}


async def wait_done(run: Run, ids: list[str]) -> dict[str, str]:
    async with asyncio.timeout(LIMIT):
        while True:
            got = await states(run, ids)
            if len(got) == len(ids) and set(got.values()) <= DONE:
                return got
            await asyncio.sleep(1)


async def job(run: Run, cid: str) -> asyncpg.Record:
    conn = await asyncpg.connect(run.c.pg_url)    # per query: the PostgreSQL restart drops connections
    try:
        row = await conn.fetchrow("SELECT * FROM jobs WHERE id = $1", cid)
    finally:
        await conn.close()
    assert row is not None, cid
    return row


async def until(probe: Callable[[], T | None]) -> T:
    """``probe()`` once it is truthy, asked every 0.5 s (the caller bounds the wait)."""
    while True:
        if got := probe():
            return got
        await asyncio.sleep(0.5)


# -- the three tasks of the run ------------------------------------------------------------------

async def fakes(run: Run) -> None:
    for _ in range(FAKES):
        await submit(run, FAKE_BP, "2")
        await asyncio.sleep(0.7)


async def reals(run: Run, names: list[str]) -> None:
    for name in names:
        t = time.monotonic()
        cid = await submit(run, name, "")
        run.hostnames[cid] = name
        run.note(f"real {cid} ({name}) submitted through daemon {run.composes[cid]}")
        got = await wait_done(run, [cid])
        run.note(f"real {cid}: {got[cid]} after {time.monotonic() - t:.0f} s")


async def faults(run: Run) -> None:
    c = run.c
    async with asyncio.timeout(LIMIT):      # the first real compose's build running on some worker
        first = await until(lambda: next(iter(run.hostnames), None))
        victims = await until(lambda: [w for w in c.workers if marked(w.state, first)])
    await asyncio.sleep(5)
    victim = victims[0]
    async with run.lock:
        await victim.kill9()
        run.killed_worker_job = first
        run.note(f"worker {victim.index} SIGKILLed while building {first}")
        await victim.start()
    await asyncio.sleep(3)
    leaders = [n.index for n in c.nodes if await n.leader() == 1]
    assert len(leaders) == 1, leaders
    node = c.nodes[leaders[0]]
    async with run.lock:
        await node.kill9()
    run.killed_leader = node.index
    run.note(f"daemon {node.index} (the leader) SIGKILLed")
    t = time.monotonic()
    async with asyncio.timeout(30):     # its session's advisory lock went with it; one of the others takes it
        while True:
            gauges = {n.index: await n.leader() for n in run.live()}
            if sum(gauges.values()) == 1:
                break
            await asyncio.sleep(0.5)
    run.took_over = next(i for i, v in gauges.items() if v == 1)
    run.note(f"daemon {run.took_over} leads {time.monotonic() - t:.1f} s after the kill")
    await asyncio.sleep(max(0.0, 10 - (time.monotonic() - t)))
    await node.start()
    run.note(f"daemon {node.index} restarted")
    await asyncio.sleep(3)
    async with run.lock:
        proc = await asyncio.create_subprocess_exec(pgtest.pg_ctl(), "restart", "-m", "fast", "-w",
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode(errors="replace")
        run.note("PostgreSQL restarted")
        await reconnected(run)


async def reconnected(run: Run) -> None:
    """Every daemon answers a read of the database again; any refusal meanwhile is noted."""
    async with asyncio.timeout(60):
        for n in run.c.nodes:
            while True:
                status, body = await n.call("GET", "/api/v1/compose/finished")
                if status == 200:
                    break
                run.note(f"daemon {n.index} after the PostgreSQL restart: {status} {str(body)[:200]}")
                await asyncio.sleep(0.5)
    run.note("every daemon answers after the PostgreSQL restart")


# -- the checks ----------------------------------------------------------------------------------

async def check_jobs(run: Run) -> None:
    conn = await asyncpg.connect(run.c.pg_url)
    try:
        builds = await conn.fetch("SELECT * FROM jobs WHERE type LIKE 'osbuild:%'")
        composes = await conn.fetch("SELECT id, fake FROM composes")
    finally:
        await conn.close()
    assert sorted(r["id"] for r in composes) == sorted(run.composes)
    assert sorted(r["id"] for r in builds) == sorted(run.composes)      # one build job per compose
    for r in builds:
        row = dict(r)
        assert r["status"] == "finished" and r["error"] is None and r["result"], row
        allowed = 1 if r["id"] == run.killed_worker_job else 0
        assert r["retries"] <= allowed, (row, run.notes)
    for cid in run.hostnames:
        row = dict(await job(run, cid))
        assert row["owner"] not in (None, "") and not row["owner"].startswith("local"), row
        assert len(run.c.events("job finished by a worker", cid)) == 1, (cid, run.notes)
        taken = run.c.events("job taken by a worker", cid)
        assert len(taken) == 1 + row["retries"], (cid, taken, row)


async def check_reports(run: Run) -> None:
    ids = sorted(run.composes)
    answers = []
    for n in run.c.nodes:
        status, body = await n.call("GET", f"/api/v1/compose/status/{','.join(ids)}")
        assert status == 200, (n.index, body)
        answers.append(sorted(body["uuids"], key=lambda e: e["id"]))
        status, fin = await n.call("GET", "/api/v1/compose/finished")
        assert status == 200 and sorted(e["id"] for e in fin["finished"]) == ids, (n.index, fin)
    assert [e["id"] for e in answers[0]] == ids and {e["queue_status"] for e in answers[0]} == {"FINISHED"}
    assert answers[1] == answers[0] and answers[2] == answers[0]


async def download(n: Node, cid: str, dest: Path | None) -> tuple[int, str]:
    h, size = hashlib.sha256(), 0
    async with n.session() as s, s.get(f"http://localhost/api/v1/compose/image/{cid}") as r:
        assert r.status == 200, (n.index, cid, await r.text())
        f = dest.open("wb") if dest is not None else None
        try:
            async for chunk in r.content.iter_chunked(1 << 20):
                h.update(chunk)
                size += len(chunk)
                if f is not None:
                    f.write(chunk)
        finally:
            if f is not None:
                f.close()
    return size, h.hexdigest()


async def check_images(run: Run, tmp: Path) -> None:
    for cid in sorted(run.composes):
        real = cid in run.hostnames
        got = [await download(n, cid, tmp / f"{cid}-{n.index}" if real and n.index == 0 else None)
               for n in run.c.nodes]
        assert got.count(got[0]) == len(got), (cid, got)     # the same bytes through every daemon
        assert got[0][0] > 0 or not real, (cid, got)           # a ?test=2 fake's image is empty
        if real:
            assert await asyncio.to_thread(tar_hostname, tmp / f"{cid}-0") == run.hostnames[cid]
            (tmp / f"{cid}-0").unlink()


async def check_leader(run: Run) -> None:
    """Exactly one leader among the live daemons (leadership is retried every ~5 s: waited for)."""
    async with asyncio.timeout(60):
        while True:
            gauges = {n.index: await n.leader() for n in run.live()}
            if sum(gauges.values()) == 1:
                break
            await asyncio.sleep(1)
    assert len(gauges) == 3, gauges
    await asyncio.sleep(6)      # stable across a retry period
    again = {n.index: await n.leader() for n in run.live()}
    assert again == gauges, (gauges, again)
    run.note(f"leader gauges at the end: {gauges}")


async def test_three_daemons_three_workers_with_faults(tmp_path: Path, certs: Path, pg_url: str,
                                                       shared_state_dir: Path) -> None:
    names = [f"so-{i}-{uuid.uuid4().hex[:8]}" for i in range(REALS)]
    async with cluster(tmp_path, certs, pg_url, shared_state_dir) as c:
        run = Run(c)
        try:
            for bp in [{"name": FAKE_BP, "version": "0.0.1", "description": "scale-out fake"}] + [
                    {"name": n, "version": "0.0.1", "description": "scale-out real",
                     "customizations": {"hostname": n}} for n in names]:
                status, body = await c.nodes[0].call("POST", "/api/v1/blueprints/new", bp)
                assert status == 200, body
            await asyncio.gather(fakes(run), reals(run, names), faults(run))
            run.note("every compose submitted, every real one done")
            final = await wait_done(run, list(run.composes))
            assert len(run.composes) == FAKES + REALS
            assert set(final.values()) == {"FINISHED"}, ({k: v for k, v in final.items() if v != "FINISHED"},
                                                          run.notes)
            await check_jobs(run)
            await check_reports(run)
            await check_images(run, tmp_path)
            await check_leader(run)
            assert run.killed_leader is not None and run.took_over not in (None, run.killed_leader), run.notes
            run.note("checked")
        except BaseException:
            print("\n".join(run.notes))
            (tmp_path / "cluster.log").write_text(c.logs())
            raise
        print("\n".join(run.notes))
        assert all([n.alive() for n in c.nodes] + [w.proc is not None and w.proc.returncode is None
                                                    for w in c.workers]), c.logs()[-5000:]
