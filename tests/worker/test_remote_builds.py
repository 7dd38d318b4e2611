"""Real Debian tar builds on two remote ``osbuildd worker`` hosts (network namespaces, mTLS), one composer.

One session cluster (tests/worker/conftest.py) serves every test, in this order:

1. four Debian tar composes (made through Weldr: the Cloud API has no tar image type; a Cloud compose
   through remote workers is tests/worker/test_client.py's) all finish, both workers build; each image
   downloads through Weldr and the Cloud API, byte-identical, and is the image of *that* compose: its
   unique hostname inside (the xz stream and tar read to the end);
2. cancel reaches the remote build within 15 s (the issue's bar) and leaves nothing of it running;
3. a worker's link down mid-build for 30 s: the compose finishes exactly once;
4. a worker killed with SIGKILL mid-build: the job is requeued after its missed heartbeat and finished by
   the other worker; the killed worker, restarted, removes its leftover processes and mounts.

Who builds what is read from /proc: a build's processes carry the runner's marker
``OSBUILDD_STATE_DIR=<the worker's state dir>``, and each worker has its own state dir (and network
namespace), so the test never relies on a worker's own account.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from .conftest import CLOUD, JOB_TIMEOUT, Cluster, Worker
from .netns import loops_below, marked, mounts_below

pytestmark = pytest.mark.build

BUILD_LIMIT = 1800.0     # hang guards, not timing assertions
POLL = 0.5
CANCEL_BAR = 15.0        # the issue's: cancel reaches the remote build within 15 s
DONE = {"FINISHED", "FAILED"}


# -- composes -----------------------------------------------------------------------------------

async def weldr_compose(c: Cluster, hostname: str) -> str:
    bp = {"name": hostname, "version": "0.0.1", "description": "remote worker test",
          "customizations": {"hostname": hostname}}
    status, body = await c.call("weldr", "POST", "/api/v1/blueprints/new", bp)
    assert status == 200, body
    status, body = await c.call("weldr", "POST", "/api/v1/compose",
                                {"blueprint_name": hostname, "compose_type": "tar", "branch": "master"})
    assert status == 200, body
    return str(body["build_id"])


async def weldr_state(c: Cluster, cid: str) -> str:
    status, body = await c.call("weldr", "GET", f"/api/v1/compose/status/{cid}")
    assert status == 200, body
    return str(body["uuids"][0]["queue_status"])


def building_on(c: Cluster) -> dict[int, list[int]]:
    """worker index -> pids of build processes running for it right now."""
    return {w.index: pids for w in c.workers if (pids := marked(w.state))}


async def watch_until_done(c: Cluster, ids: list[str], seen: dict[str, set[int]] | None = None) -> dict[str, str]:
    """Poll until every compose is FINISHED or FAILED; ``seen``: compose id -> workers seen building its
    job (a worker building while exactly one of ``ids`` runs is that one's)."""
    states: dict[str, str] = {}
    async with asyncio.timeout(BUILD_LIMIT):
        while True:
            for cid in ids:
                states[cid] = await weldr_state(c, cid)
            if seen is not None:
                for index, pids in building_on(c).items():
                    for cid in ids:
                        if any(f"OSBUILDD_JOB_ID={cid}".encode() in _environ(p) for p in pids):
                            seen.setdefault(cid, set()).add(index)
            if all(s in DONE for s in states.values()):
                return states
            await asyncio.sleep(POLL)


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []


async def running_on(c: Cluster, cid: str) -> Worker:
    """Wait until the compose's build runs a stage on some worker; that worker."""
    async with asyncio.timeout(BUILD_LIMIT):
        while True:
            state = await weldr_state(c, cid)
            assert state not in DONE, f"compose {cid} ended ({state}) before its build was seen running"
            job = c.job(cid)
            if job["status"] == "running" and job["progress"]:
                for w in c.workers:
                    if marked(w.state, cid):
                        return w
            await asyncio.sleep(POLL)


# -- images -------------------------------------------------------------------------------------

async def download(c: Cluster, api: str, cid: str, dest: Path) -> tuple[int, str]:
    path = f"/api/v1/compose/image/{cid}" if api == "weldr" else f"{CLOUD}/composes/{cid}/download"
    h, size = hashlib.sha256(), 0
    async with c.session(api) as s, s.get("http://localhost" + path) as r:
        assert r.status == 200, await r.text()
        with dest.open("wb") as f:
            async for chunk in r.content.iter_chunked(1 << 20):
                h.update(chunk)
                size += len(chunk)
                f.write(chunk)
    return size, h.hexdigest()


def tar_hostname(path: Path) -> str:
    """The image's /etc/hostname, reading the whole xz stream and tar (a truncated or corrupt one fails)."""
    found = None
    with tarfile.open(path, "r:xz") as tar:
        for member in tar:
            if member.name.lstrip("./") == "etc/hostname":
                f = tar.extractfile(member)
                assert f is not None
                found = f.read().decode().strip()
    assert found is not None, f"{path}: no etc/hostname"
    return found


async def check_image(c: Cluster, cid: str, hostname: str, tmp: Path) -> None:
    weldr = await download(c, "weldr", cid, tmp / f"{cid}-weldr")
    cloud = await download(c, "cloud", cid, tmp / f"{cid}-cloud")
    assert weldr == cloud and weldr[0] > 0, (weldr, cloud)
    assert await asyncio.to_thread(tar_hostname, tmp / f"{cid}-weldr") == hostname


def build_jobs(c: Cluster, cid: str) -> list[Any]:
    return c.rows("SELECT * FROM jobs WHERE id = ?", (cid,))


async def nothing_left(c: Cluster, w: Worker, limit: float) -> float:
    """Wait (at most ``limit`` s) until no build process of ``w`` is left; the seconds it took."""
    t0 = time.monotonic()
    while marked(w.state):
        if time.monotonic() - t0 > limit:
            raise AssertionError(f"worker {w.index} still runs {marked(w.state)} after {limit} s")
        await asyncio.sleep(0.2)
    return time.monotonic() - t0


def all_mounts() -> set[str]:
    return {line.split(" ")[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}


def composer_events(c: Cluster, event: str, job_id: str) -> list[dict[str, Any]]:
    """The composer's JSON log lines of ``event`` for ``job_id``."""
    out = []
    for line in c.composer.log_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == event and entry.get("job_id") == job_id:
            out.append(entry)
    return out


def worker_id(w: Worker) -> str:
    """The id the worker last registered with (its log's ``registered`` line)."""
    ids = [e["worker_id"] for line in w.log_text().splitlines() if line.startswith("{")
           for e in [json.loads(line)] if e.get("event") == "registered"]
    assert ids, w.log_text()[-2000:]
    return str(ids[-1])


def host(tag: str) -> str:
    return f"rw-{tag}-{uuid.uuid4().hex[:8]}"


# -- tests --------------------------------------------------------------------------------------

async def test_four_composes_on_two_workers(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    names = [host(f"w{i}") for i in range(4)]
    ids = [await weldr_compose(c, name) for name in names]
    hostnames = dict(zip(ids, names, strict=True))
    seen: dict[str, set[int]] = {}
    states = await watch_until_done(c, ids, seen)
    assert set(states.values()) == {"FINISHED"}, (states, [w.log_text()[-3000:] for w in c.workers])
    for cid in ids:
        job = c.job(cid)
        assert job["status"] == "finished" and job["retries"] == 0, dict(job)
        assert job["owner"] not in (None, "", "local"), dict(job)
    # every build was seen running on exactly one worker, and both workers built
    assert all(len(seen.get(cid, ())) == 1 for cid in ids), seen
    assert {next(iter(v)) for v in seen.values()} == {1, 2}, seen
    owners = {c.job(cid)["owner"] for cid in ids}
    assert len(owners) == 2, owners          # the two registered worker ids own the four jobs
    for cid in ids:
        await check_image(c, cid, hostnames[cid], tmp_path)
        (tmp_path / f"{cid}-weldr").unlink()
        (tmp_path / f"{cid}-cloud").unlink()


async def test_cancel_reaches_remote_build(cluster: Cluster) -> None:
    c = cluster
    before = all_mounts()
    cid = await weldr_compose(c, host("cancel"))
    w = await running_on(c, cid)
    assert w.proc is not None and w.proc.alive()
    status, body = await c.call("weldr", "DELETE", f"/api/v1/compose/cancel/{cid}")
    assert status == 200, body
    took = await nothing_left(c, w, CANCEL_BAR)
    assert took <= CANCEL_BAR
    assert mounts_below(w.state) == [] and loops_below(w.state) == []
    assert all_mounts() - before == set(), all_mounts() - before
    assert c.job(cid)["status"] == "canceled"
    assert await weldr_state(c, cid) in DONE
    assert w.proc.alive(), w.log_text()[-3000:]


async def test_link_down_mid_build_finishes_once(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    name = host("link")
    cid = await weldr_compose(c, name)
    w = await running_on(c, cid)
    c.hosts.link_down(w.index)
    try:
        await asyncio.sleep(30)
    finally:
        c.hosts.link_up(w.index)
    states = await watch_until_done(c, [cid])
    assert states[cid] == "FINISHED", (states, w.log_text()[-3000:])
    job = c.job(cid)
    assert job["status"] == "finished" and job["error"] is None, dict(job)
    # requeued at most once for a 30 s cut (job_timeout 25 s); whichever worker delivered, one result
    assert job["retries"] in (0, 1), dict(job)
    assert len(build_jobs(c, cid)) == 1
    # one result settled it: the composer finished it once (a late result of the cut worker refused)
    assert len(composer_events(c, "job finished by a worker", cid)) == 1
    assert len(composer_events(c, "job taken by a worker", cid)) == 1 + job["retries"]
    assert job["owner"] in {worker_id(x) for x in c.workers}
    await check_image(c, cid, name, tmp_path)
    for other in c.workers:          # both idle again, nothing left behind
        await nothing_left(c, other, 120)
        assert other.proc is not None and other.proc.alive(), other.log_text()[-3000:]


async def test_sigkill_mid_build_requeued_and_cleaned(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    name = host("kill")
    before = all_mounts()
    cid = await weldr_compose(c, name)
    victim = await running_on(c, cid)
    other = next(w for w in c.workers if w is not victim)
    assert victim.proc is not None
    victim.proc.kill9()
    orphans = marked(victim.state)
    assert orphans, "the killed worker left no build process behind: nothing to clean (test did not bite)"
    # mounts that appeared during the victim's build (the store is shared: only new ones are its)
    its_mounts = all_mounts() - before
    # restarted without network: it cleans up at start, and cannot take the requeued job back
    c.hosts.link_down(victim.index)
    try:
        c.start_worker(victim)
        await nothing_left(c, victim, 120)
        assert mounts_below(victim.state) == [] and loops_below(victim.state) == []
        assert its_mounts & all_mounts() == set(), its_mounts & all_mounts()
        # the missed heartbeat requeues the job; the other worker builds it
        async with asyncio.timeout(JOB_TIMEOUT * 20):
            while not marked(other.state, cid):
                assert await weldr_state(c, cid) not in DONE, c.job(cid)
                await asyncio.sleep(POLL)
    finally:
        c.hosts.link_up(victim.index)
    states = await watch_until_done(c, [cid])
    assert states[cid] == "FINISHED", (states, other.log_text()[-3000:])
    job = c.job(cid)
    assert job["status"] == "finished" and job["retries"] == 1, dict(job)
    assert job["owner"] == worker_id(other), dict(job)
    assert len(composer_events(c, "job finished by a worker", cid)) == 1
    await check_image(c, cid, name, tmp_path)
    assert victim.proc is not None and victim.proc.alive(), victim.log_text()[-3000:]
