"""Several daemons on one PostgreSQL database: each ``PGDatabase`` here stands for one daemon (its own
pool, listener and state dir), and the job queue must behave as one queue across them."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from osbuildd.queue import JobError, JobNotRunning, JobStatus, JobStore, errors
from osbuildd.queue.db import JOBS_CHANNEL
from osbuildd.queue.db_pg import PGDatabase

# How long a change made through one daemon may take to reach another's waiter: generous on a
# loaded 2-core machine, and still well under the waits the tests would otherwise hang in.
WAKE = 5.0


async def _daemon(url: str, name: str, tmp_path: Path, pool_size: int = 6) -> tuple[PGDatabase, JobStore]:
    db = await PGDatabase.open(url, pool_size=pool_size, application_name=f"osbuildd-{name}")
    store = await JobStore.open(db, state_dir=tmp_path / name)
    return db, store


@pytest.fixture
async def two(pg_url: str, tmp_path: Path) -> AsyncIterator[tuple[JobStore, JobStore]]:
    """Daemons a and b on the test's database."""
    db_a, a = await _daemon(pg_url, "a", tmp_path)
    db_b, b = await _daemon(pg_url, "b", tmp_path)
    yield a, b
    for store in (a, b):
        await store.close()
        await store.db.close()


async def _admin(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(url, server_settings={"application_name": "test-admin"})


async def _until(check: Any, within: float, what: str) -> None:
    """Poll ``check()`` (sync or async) until true; fail with ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        got = check()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)


async def test_takers_on_two_daemons_take_each_job_once(two: tuple[JobStore, JobStore]) -> None:
    a, b = two
    total = 2000
    types = ["depsolve", "osbuild:x86_64"]
    tokens: dict[str, list[str]] = collections.defaultdict(list)
    finished = 0
    all_done = asyncio.Event()

    async def taker(store: JobStore) -> int:
        nonlocal finished
        taken = 0
        while not all_done.is_set():
            got = await store.dequeue(types, timeout=0.5)
            if got is None:
                continue
            tokens[got.job.id].append(got.token)
            taken += 1
            await store.finish(got.token, {"by": store.local_owner})
            finished += 1
            if finished == total:
                all_done.set()
        return taken

    async def producer(store: JobStore, n: int) -> list[str]:
        return [await store.enqueue(types[i % 2], {"i": i}) for i in range(n)]

    takers = [asyncio.create_task(taker(s)) for s in (a, b) for _ in range(4)]
    async with asyncio.timeout(50):
        ids_a, ids_b = await asyncio.gather(producer(a, total // 2), producer(b, total // 2))
        await all_done.wait()
        counts = await asyncio.gather(*takers)   # every taker comes back: none is stuck
    enqueued = set(ids_a) | set(ids_b)
    assert len(enqueued) == total
    assert set(tokens) == enqueued
    twice = {job_id: t for job_id, t in tokens.items() if len(t) != 1}
    assert not twice, f"jobs taken more than once: {list(twice.items())[:5]}"
    assert sum(counts) == total
    assert sum(counts[:4]) > 0 and sum(counts[4:]) > 0   # both daemons took work
    rows = await a.db.conn.execute_fetchall("SELECT status, count(*) FROM jobs GROUP BY status")
    assert {r[0]: r[1] for r in rows} == {"finished": total}


async def test_enqueue_racing_the_dependency_finish(two: tuple[JobStore, JobStore]) -> None:
    a, b = two
    for i in range(300):
        dep = await a.enqueue("depsolve", {"i": i})
        running = await a.dequeue(["depsolve"], timeout=0)
        assert running is not None and running.job.id == dep
        failing = i % 5 == 4
        error = JobError(errors.BUILD_JOB, "boom") if failing else None
        finish = a.finish(running.token, {"i": i}, error)
        enqueue = b.enqueue("osbuild:x86_64", {"i": i}, [dep])
        # both orders of the two statements in flight, issued at the same moment
        if i % 2:
            _, dependent = await asyncio.gather(finish, enqueue)
        else:
            dependent, _ = await asyncio.gather(enqueue, finish)
        rows = await a.db.conn.execute_fetchall(
            "SELECT status, waiting_for, error FROM jobs WHERE id = ?", (dependent,))
        status, waiting_for, dep_error = rows[0]
        if failing:
            assert status == JobStatus.FINISHED and dep_error is not None, (i, status, waiting_for)
            assert (await b.get(dependent)).error.id == errors.DEPENDENCY_FAILED  # type: ignore[union-attr]
            continue
        assert (status, waiting_for) == ("pending", 0), f"round {i}: dependent stuck"
        taken = await b.dequeue(["osbuild:x86_64"], timeout=0)
        assert taken is not None and taken.job.id == dependent
        assert taken.dynamic_args == [{"i": i}]
        await b.finish(taken.token, {})


async def test_waiter_on_one_daemon_woken_by_enqueue_on_another(two: tuple[JobStore, JobStore]) -> None:
    a, b = two
    waiter = asyncio.create_task(b.dequeue(["depsolve"], timeout=60))
    await asyncio.sleep(0.3)   # b has looked, found nothing and waits
    assert not waiter.done()
    job_id = await a.enqueue("depsolve", {})
    got = await asyncio.wait_for(waiter, WAKE)
    assert got is not None and got.job.id == job_id
    assert got.job.owner == b.local_owner != a.local_owner


async def test_cancel_reaches_the_daemon_running_the_job(two: tuple[JobStore, JobStore]) -> None:
    a, b = two
    job_id = await a.enqueue("osbuild:x86_64", {})
    running = await b.dequeue(["osbuild:x86_64"], timeout=0)
    assert running is not None and running.job.owner == b.local_owner
    canceled = b.cancel_event(job_id)
    await a.cancel(job_id)
    await asyncio.wait_for(canceled.wait(), WAKE)
    assert (await b.get(job_id)).status == JobStatus.CANCELED
    await b.finish(running.token, {"late": True})   # the build's own finish after a cancel: a no-op
    assert (await a.get(job_id)).status == JobStatus.CANCELED


async def test_listener_reconnects_after_its_connection_is_killed(
        two: tuple[JobStore, JobStore], pg_url: str) -> None:
    a, b = two
    assert isinstance(b.db, PGDatabase)
    payloads: list[str] = []
    unsubscribe = b.db.subscribe(JOBS_CHANNEL, payloads.append)
    admin = await _admin(pg_url)
    try:
        find = ("SELECT pid FROM pg_stat_activity WHERE application_name = 'osbuildd-b:listen'"
                " AND datname = current_database()")
        old = await admin.fetchval(find)
        assert old is not None
        killed = await admin.fetchval(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name LIKE '%:listen' AND application_name LIKE 'osbuildd-b%'"
            " AND datname = current_database()")
        assert killed

        async def back() -> bool:
            pid = await admin.fetchval(find)
            return pid is not None and pid != old and b.db.connected

        await _until(back, 15, "store b's listener reconnected")
    finally:
        await admin.close()
    # every subscriber heard "" once: notifications sent while it was down are lost, so look again
    await _until(lambda: "" in payloads, WAKE, "the reconnect wake-up")
    unsubscribe()
    assert b.db.connected   # notifications again, not the disconnected recheck
    waiter = asyncio.create_task(b.dequeue(["depsolve"], timeout=60))
    await asyncio.sleep(0.3)
    assert not waiter.done()
    job_id = await a.enqueue("depsolve", {})
    got = await asyncio.wait_for(waiter, WAKE)
    assert got is not None and got.job.id == job_id


async def _leaders(url: str, key: str) -> list[tuple[int, str]]:
    admin = await _admin(url)
    try:
        rows = await admin.fetch(
            "SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()"
            " AND a.application_name LIKE '%:leader'"
            " AND l.objid::bigint = (hashtext($1)::bigint & 4294967295)", key)
        return [(r[0], r[1]) for r in rows]
    finally:
        await admin.close()


async def _terminate(url: str, pid: int) -> None:
    admin = await _admin(url)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_one_leader_and_failover(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    dbs = [await PGDatabase.open(pg_url, pool_size=2, application_name=f"osbuildd-l{i}") for i in range(3)]
    leaderships = [db.leadership("watchdog") for db in dbs]
    try:
        for lead in leaderships:
            await lead.start()

        def one() -> bool:
            return sum(lead.leading for lead in leaderships) == 1

        await _until(one, 7, "exactly one leader")
        first = next(i for i, lead in enumerate(leaderships) if lead.leading)
        holders = await _leaders(pg_url, "osbuildd:leader:watchdog")
        assert [name for _, name in holders] == [f"osbuildd-l{first}:leader"]

        # the leader's daemon loses its database for good: its connection is killed and it cannot
        # connect again, so one of the others must take over
        async def unreachable() -> bool:
            raise OSError("unreachable")

        monkeypatch.setattr(leaderships[first], "_try", unreachable)
        await _terminate(pg_url, holders[0][0])
        await _until(lambda: not leaderships[first].leading, WAKE, "the old leader noticed")
        await _until(one, 12, "exactly one other leader")
        second = next(i for i, lead in enumerate(leaderships) if lead.leading)
        assert second != first
        assert [name for _, name in await _leaders(pg_url, "osbuildd:leader:watchdog")] \
            == [f"osbuildd-l{second}:leader"]

        # a leader whose connection drops but which can reconnect: still exactly one leader after
        holders = await _leaders(pg_url, "osbuildd:leader:watchdog")
        await _terminate(pg_url, holders[0][0])
        await asyncio.sleep(0.5)
        await _until(one, 12, "exactly one leader after a dropped connection")
        assert len(await _leaders(pg_url, "osbuildd:leader:watchdog")) == 1
    finally:
        for lead in leaderships:
            await lead.close()
        for db in dbs:
            await db.close()


async def test_dead_daemons_local_jobs_settled_by_another(pg_url: str, tmp_path: Path) -> None:
    db_a, a = await _daemon(pg_url, "a", tmp_path)
    db_b, b = await _daemon(pg_url, "b", tmp_path)
    try:
        assert a.local_owner.startswith("local:") and b.local_owner.startswith("local:")
        assert a.local_owner != b.local_owner
        build_a = await a.enqueue("osbuild:x86_64", {})
        dep_a = await a.enqueue("depsolve", {})
        taken_a = [await a.dequeue(["osbuild:x86_64"], timeout=0), await a.dequeue(["depsolve"], timeout=0)]
        assert [t.job.id for t in taken_a if t] == [build_a, dep_a]
        build_b = await b.enqueue("osbuild:x86_64", {})
        dep_b = await b.enqueue("depsolve", {})
        taken_b = [await b.dequeue(["osbuild:x86_64"], timeout=0), await b.dequeue(["depsolve"], timeout=0)]
        assert [t.job.id for t in taken_b if t] == [build_b, dep_b]
        # a dies: no finish, no more heartbeats
        await a.close()
        await db_a.close()
        requeued, failed = await b.requeue_stale(now=time.time() + 100 * b.heartbeat_timeout)
        assert requeued == [dep_a] and failed == [build_a]
        build = await b.get(build_a)
        assert build.status == JobStatus.FINISHED and build.error is not None
        assert (build.error.id, build.error.reason) == (errors.BUILD_JOB, errors.REASON_INTERRUPTED)
        dep = await b.get(dep_a)
        assert dep.status == JobStatus.PENDING and dep.owner is None and dep.retries == 0
        for own in (build_b, dep_b):
            job = await b.get(own)
            assert job.status == JobStatus.RUNNING and job.owner == b.local_owner
        again = await b.dequeue(["depsolve"], timeout=0)
        assert again is not None and again.job.id == dep_a
    finally:
        await b.close()
        await db_b.close()


async def test_repeated_finish_through_another_daemon(two: tuple[JobStore, JobStore]) -> None:
    a, b = two
    job_id = await a.enqueue("depsolve", {})
    got = await a.dequeue(["depsolve"], timeout=0)
    assert got is not None
    result = {"packages": [{"name": "bash"}]}
    await a.finish(got.token, result)
    await b.finish(got.token, result)   # a worker whose answer was lost, retrying elsewhere
    done = await b.get(job_id)
    assert done.status == JobStatus.FINISHED and done.result == result
    with pytest.raises(JobNotRunning):
        await b.finish(got.token, {"packages": []})
    with pytest.raises(JobNotRunning):
        await a.finish(got.token, result, JobError(errors.BUILD_JOB, "late"))
    assert (await a.get(job_id)).result == result


async def test_two_dependencies_finished_at_once_on_two_daemons(two: tuple[JobStore, JobStore]) -> None:
    a, b = two
    for i in range(150):
        left = await a.enqueue("depsolve", {"i": i})
        right = await b.enqueue("container-resolve", {"i": i})
        join = await a.enqueue("manifest-id-only", {}, [left, right])
        took_left = await a.dequeue(["depsolve"], timeout=0)
        took_right = await b.dequeue(["container-resolve"], timeout=0)
        assert took_left is not None and took_right is not None
        # both decrement the join's waiting_for at the same moment, from two daemons
        await asyncio.gather(a.finish(took_left.token, {"l": i}), b.finish(took_right.token, {"r": i}))
        rows = await a.db.conn.execute_fetchall("SELECT status, waiting_for FROM jobs WHERE id = ?", (join,))
        assert tuple(rows[0]) == ("pending", 0), f"round {i}: join stuck"
        taken = await b.dequeue(["manifest-id-only"], timeout=0)
        assert taken is not None and taken.job.id == join
        assert taken.dynamic_args == [{"l": i}, {"r": i}]
        await b.finish(taken.token, {})


async def test_enqueue_racing_a_cancel_of_the_dependency(two: tuple[JobStore, JobStore]) -> None:
    a, b = two
    for i in range(150):
        dep = await a.enqueue("depsolve", {"i": i})
        if i % 2:
            assert await a.dequeue(["depsolve"], timeout=0) is not None   # running, not only pending
        _, dependent = await asyncio.gather(a.cancel(dep), b.enqueue("osbuild:x86_64", {}, [dep]))
        # canceled with its dependency, whichever committed first: never left pending behind it
        assert (await b.get(dependent)).status == JobStatus.CANCELED, f"round {i}"


async def test_two_sweepers_settle_a_dead_nodes_jobs_once(pg_url: str, tmp_path: Path) -> None:
    db_c, c = await _daemon(pg_url, "c", tmp_path)
    ids = [await c.enqueue("depsolve" if n % 2 else "osbuild:x86_64", {"n": n}) for n in range(60)]
    for _ in ids:
        assert await c.dequeue(["depsolve", "osbuild:x86_64"], timeout=0) is not None
    await c.close()
    await db_c.close()   # c died with all of them running
    db_a, a = await _daemon(pg_url, "a", tmp_path)
    db_b, b = await _daemon(pg_url, "b", tmp_path)
    try:
        later = time.time() + 100 * a.heartbeat_timeout
        (req_a, fail_a), (req_b, fail_b) = await asyncio.gather(a.requeue_stale(now=later),
                                                                b.requeue_stale(now=later))
        settled = req_a + fail_a + req_b + fail_b
        assert sorted(settled) == sorted(ids), "a job settled twice or not at all"
        assert sorted(req_a + req_b) == sorted(ids[1::2]) and sorted(fail_a + fail_b) == sorted(ids[0::2])
        rows = await a.db.conn.execute_fetchall("SELECT status, retries, count(*) FROM jobs GROUP BY 1, 2")
        assert sorted(tuple(r) for r in rows) == [("finished", 0, 30), ("pending", 0, 30)]
    finally:
        for store in (a, b):
            await store.close()
            await store.db.close()
