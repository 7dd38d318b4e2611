"""Job queue semantics on a real SQLite file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from osbuildd.queue import (
    Database,
    JobError,
    JobInUse,
    JobNotPending,
    JobNotRunning,
    JobStatus,
    JobStore,
    TokenNotFound,
    errors,
)
from osbuildd.queue.db import migrations


async def test_migrations_recorded(db: Database) -> None:
    numbers = [n for n, _, _ in migrations(db.backend)]
    assert numbers[0] == 1
    assert await db.schema_version() == max(numbers)
    async with db.conn.execute("SELECT number FROM schema_migrations ORDER BY number") as cur:
        assert [r[0] for r in await cur.fetchall()] == numbers
    if db.backend != "sqlite":
        return
    async with db.conn.execute("PRAGMA journal_mode") as cur:
        assert (await cur.fetchone())[0] == "wal"
    async with db.conn.execute("PRAGMA foreign_keys") as cur:
        assert (await cur.fetchone())[0] == 1


async def test_reopen_applies_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    first = await Database.open(path)
    store = await JobStore.open(first)
    job_id = await store.enqueue("depsolve", {"a": 1})
    await first.close()
    second = await Database.open(path)
    try:
        assert (await (await JobStore.open(second)).get(job_id)).args == {"a": 1}
    finally:
        await second.close()


async def test_dependency_order_and_dynamic_args(jobs: JobStore) -> None:
    depsolve = await jobs.enqueue("depsolve", {"packages": ["bash"]})
    resolve = await jobs.enqueue("container-resolve", {})
    manifest = await jobs.enqueue("manifest-id-only", {}, [depsolve, resolve])
    build = await jobs.enqueue("osbuild:x86_64", {"targets": []}, [manifest, depsolve])
    all_types = ["depsolve", "container-resolve", "manifest-id-only", "osbuild:x86_64"]

    taken = []
    results = {depsolve: {"packages": [1]}, resolve: {"specs": []}, manifest: {"manifest": {"v": 2}}}
    while (got := await jobs.dequeue(all_types, timeout=0)) is not None:
        taken.append(got.job.id)
        if got.job.id == manifest:
            assert got.dynamic_args == [results[depsolve], results[resolve]]
        if got.job.id == build:
            assert got.dynamic_args == [results[manifest], results[depsolve]]
            assert got.job.dependencies == [manifest, depsolve]
        await jobs.finish(got.token, results.get(got.job.id, {"success": True}))
    assert taken == [depsolve, resolve, manifest, build]
    done = await jobs.get(build)
    assert done.status == JobStatus.FINISHED and done.error is None and done.result == {"success": True}
    assert done.started_at is not None and done.finished_at >= done.started_at >= done.queued_at


async def test_job_waits_for_unfinished_dependency(jobs: JobStore) -> None:
    dep = await jobs.enqueue("depsolve", {})
    await jobs.enqueue("osbuild:x86_64", {}, [dep])
    assert await jobs.dequeue(["osbuild:x86_64"], timeout=0) is None
    running = await jobs.dequeue(["depsolve"], timeout=0)
    assert await jobs.dequeue(["osbuild:x86_64"], timeout=0) is None  # dependency running, not finished
    await jobs.finish(running.token, {})
    assert (await jobs.dequeue(["osbuild:x86_64"], timeout=0)) is not None


async def test_channels(jobs: JobStore) -> None:
    a = await jobs.enqueue("depsolve", {}, channel="org-1")
    b = await jobs.enqueue("depsolve", {}, channel="")
    assert (await jobs.dequeue(["depsolve"], timeout=0)).job.id == b
    assert await jobs.dequeue(["depsolve"], ["org-2"], timeout=0) is None
    assert (await jobs.dequeue(["depsolve"], ["org-2", "org-1"], timeout=0)).job.id == a
    c = await jobs.enqueue("depsolve", {}, channel="org-9")
    assert (await jobs.dequeue(["depsolve"], None, timeout=0)).job.id == c  # None = any channel
    assert [j.id for j in await jobs.list(channel="org-1")] == [a]


async def test_dequeue_waits_without_polling(jobs: JobStore) -> None:
    waiter = asyncio.create_task(jobs.dequeue(["osbuild:aarch64"]))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiter.done()
    # an enqueue of another type does not hand it anything
    await jobs.enqueue("depsolve", {})
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiter.done()
    job_id = await jobs.enqueue("osbuild:aarch64", {})
    async with asyncio.timeout(30):
        got = await waiter
    assert got.job.id == job_id and got.job.status == JobStatus.RUNNING


async def test_dequeue_woken_by_finish_of_dependency(jobs: JobStore) -> None:
    dep = await jobs.enqueue("depsolve", {})
    child = await jobs.enqueue("osbuild:x86_64", {}, [dep])
    waiter = asyncio.create_task(jobs.dequeue(["osbuild:x86_64"]))
    by_id = asyncio.create_task(jobs.dequeue_by_id(dep))
    async with asyncio.timeout(30):
        taken = await by_id
        await jobs.finish(taken.token, {"ok": 1})
        got = await waiter
    assert got.job.id == child and got.dynamic_args == [{"ok": 1}]


async def test_dequeue_timeout_returns_none(jobs: JobStore) -> None:
    assert await jobs.dequeue(["depsolve"], timeout=0.01) is None
    with pytest.raises(ValueError):
        await jobs.dequeue([], timeout=0)


async def test_concurrent_dequeuers_never_share_a_job(jobs: JobStore) -> None:
    ids = {await jobs.enqueue("depsolve", {"n": i}) for i in range(150)}
    seen: list[str] = []

    async def worker() -> None:
        while (got := await jobs.dequeue(["depsolve"], timeout=0)) is not None:
            seen.append(got.job.id)
            await jobs.finish(got.token, {"by": id(asyncio.current_task())})

    await asyncio.gather(*(worker() for _ in range(8)))
    assert len(seen) == len(set(seen)) == 150
    assert set(seen) == ids


async def test_two_connections_never_share_a_job(tmp_path: Path) -> None:
    """Two processes' worth of connections on one file: BEGIN IMMEDIATE keeps one taker per job."""
    path = tmp_path / "two.db"
    db1, db2 = await Database.open(path), await Database.open(path)
    try:
        s1, s2 = JobStore(db1), JobStore(db2)
        ids = {await s1.enqueue("depsolve", {}) for _ in range(100)}
        seen: list[str] = []

        async def drain(store: JobStore) -> None:
            while (got := await store.dequeue(["depsolve"], timeout=0)) is not None:
                seen.append(got.job.id)

        await asyncio.gather(drain(s1), drain(s2), drain(s1), drain(s2))
        assert sorted(seen) == sorted(ids)
    finally:
        await db1.close()
        await db2.close()


async def test_cancel_propagates_to_pending_dependents(jobs: JobStore) -> None:
    root = await jobs.enqueue("depsolve", {})
    mid = await jobs.enqueue("manifest-id-only", {}, [root])
    leaf = await jobs.enqueue("osbuild:x86_64", {}, [mid])
    other = await jobs.enqueue("depsolve", {})
    running = await jobs.dequeue(["depsolve"], timeout=0)
    assert running.job.id == root
    event = jobs.cancel_event(root)
    assert not event.is_set()
    await jobs.cancel(root)
    assert event.is_set()
    assert await jobs.heartbeat(running.token) is True  # a worker learns it through its token
    for job_id in (root, mid, leaf):
        assert (await jobs.get(job_id)).status == JobStatus.CANCELED
    assert (await jobs.get(other)).status == JobStatus.PENDING
    await jobs.finish(running.token, {"late": True})  # finishing a canceled job changes nothing
    assert (await jobs.get(root)).status == JobStatus.CANCELED
    with pytest.raises(JobNotRunning):
        await jobs.cancel(root)
    # a job enqueued on a canceled dependency never runs
    late = await jobs.enqueue("osbuild:x86_64", {}, [mid])
    assert (await jobs.get(late)).status == JobStatus.CANCELED


async def test_failed_dependency_fails_dependents(jobs: JobStore) -> None:
    dep = await jobs.enqueue("depsolve", {})
    child = await jobs.enqueue("manifest-id-only", {}, [dep])
    grandchild = await jobs.enqueue("osbuild:x86_64", {}, [child])
    waiter = asyncio.create_task(jobs.dequeue_by_id(child))
    got = await jobs.dequeue(["depsolve"], timeout=0)
    await jobs.finish(got.token, {"job_error": {"id": errors.DNF_DEPSOLVE_ERROR, "reason": "no bash"}})
    failed = await jobs.get(dep)
    assert failed.failed and failed.error.id == errors.DNF_DEPSOLVE_ERROR
    for job_id, parent in ((child, dep), (grandchild, child)):
        job = await jobs.get(job_id)
        assert job.status == JobStatus.FINISHED
        assert job.error.id == errors.DEPENDENCY_FAILED == 26
        assert job.error.reason == "dependency failed"
        assert job.error.details["dependency"] == parent
    assert (await jobs.get(grandchild)).error.details["error"]["details"]["error"]["id"] == 20
    with pytest.raises(JobNotPending):
        async with asyncio.timeout(30):
            await waiter


async def test_heartbeat_requeue_then_error_27(jobs: JobStore) -> None:
    job_id = await jobs.enqueue("osbuild:x86_64", {})
    local_id = await jobs.enqueue("osbuild:aarch64", {})
    local = await jobs.dequeue(["osbuild:aarch64"], timeout=0)  # this daemon's executor: never requeued
    tokens = []
    for attempt in range(3):
        got = await jobs.dequeue(["osbuild:x86_64"], timeout=0, owner="worker-1")
        assert got.job.id == job_id and got.job.retries == attempt
        assert await jobs.heartbeat(got.token) is False
        tokens.append(got.token)
        requeued, failed = await jobs.requeue_stale(now=time.time() + 10 * jobs.heartbeat_timeout)
        if attempt < 2:
            assert (requeued, failed) == ([job_id], [])
            assert (await jobs.get(job_id)).status == JobStatus.PENDING
            with pytest.raises(TokenNotFound):  # the old taker lost it
                await jobs.finish(got.token, {})
        else:
            assert (requeued, failed) == ([], [job_id])
    job = await jobs.get(job_id)
    assert job.status == JobStatus.FINISHED and job.retries == 2
    assert job.error == JobError(errors.JOB_MISSING_HEARTBEAT, "missing heartbeat")
    assert len(set(tokens)) == 3
    assert (await jobs.get(local_id)).status == JobStatus.RUNNING
    await jobs.finish(local.token, {})


async def test_heartbeat_watcher_runs_in_background(db: Database) -> None:
    store = await JobStore.open(db, heartbeat_timeout=0.05, max_retries=0)
    try:
        job_id = await store.enqueue("osbuild:x86_64", {})
        await store.dequeue(["osbuild:x86_64"], timeout=0, owner="worker-7")
        store.start_heartbeat_watcher(interval=0.02)
        async with asyncio.timeout(30):
            job = await store.wait_done(job_id)
        assert job.error.id == 27
    finally:
        await store.close()


async def test_progress_list_delete(jobs: JobStore, tmp_path: Path) -> None:
    dep = await jobs.enqueue("depsolve", {})
    shared = await jobs.enqueue("depsolve", {})
    build = await jobs.enqueue("osbuild:x86_64", {}, [dep, shared])
    other = await jobs.enqueue("osbuild:aarch64", {}, [shared])
    await jobs.set_progress(build, {"done": 1, "total": 3})
    assert (await jobs.get(build)).progress == {"done": 1, "total": 3}
    assert {j.id for j in await jobs.list(types=["osbuild:*"])} == {build, other}
    assert {j.id for j in await jobs.list(status=JobStatus.PENDING, types=["depsolve"])} == {dep, shared}
    with pytest.raises(JobInUse):
        await jobs.delete(dep)
    results = tmp_path / "state" / "results" / build
    results.mkdir(parents=True)
    (results / "disk.qcow2").write_bytes(b"x")
    await jobs.delete(build)
    assert not results.exists()
    remaining = {j.id for j in await jobs.list()}
    assert remaining == {shared, other}  # dep went with build, shared is still needed by other


async def test_finish_errors(jobs: JobStore) -> None:
    with pytest.raises(TokenNotFound):
        await jobs.finish("no-such-token", {})
    job_id = await jobs.enqueue("depsolve", {})
    got = await jobs.dequeue(["depsolve"], timeout=0)
    await jobs.finish(got.token, None, JobError(errors.DNF_REPO_ERROR, "repo down", {"repo": "main"}))
    with pytest.raises(JobNotRunning):
        await jobs.finish(got.token, {})
    assert (await jobs.get(job_id)).error.details == {"repo": "main"}
    assert errors.status_code(errors.DNF_REPO_ERROR) == "5xx"
    assert errors.status_code(errors.DNF_DEPSOLVE_ERROR) == "4xx"


async def test_release_running_on_shutdown(jobs: JobStore) -> None:
    dep = await jobs.enqueue("depsolve", {})
    build = await jobs.enqueue("osbuild:x86_64", {})
    await jobs.dequeue(["depsolve"], timeout=0)
    await jobs.dequeue(["osbuild:x86_64"], timeout=0)
    out = await jobs.release_running(errors.REASON_SHUTTING_DOWN, owner=jobs.local_owner)
    assert out == {"requeued": [dep], "failed": [build]}
    assert (await jobs.get(dep)).status == JobStatus.PENDING
    job = await jobs.get(build)
    assert job.error.id == errors.BUILD_JOB and job.error.reason == "daemon shutting down"


async def test_cancelled_tasks_never_leave_a_transaction_open(jobs: JobStore, db: Database) -> None:
    """Tasks cancelled at any await inside dequeue/enqueue (the executor at shutdown) must not leave
    the shared connection inside a transaction."""
    for i in range(40):
        await jobs.enqueue("depsolve", {"i": i})

    async def churn() -> None:
        while True:
            got = await jobs.dequeue(["depsolve"], timeout=0)
            if got is not None:
                await jobs.finish(got.token, {})
            await jobs.enqueue("depsolve", {})

    for steps in range(1, 60):
        task = asyncio.create_task(churn())
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not db.conn.in_transaction
    async with db.transaction() as conn:
        await conn.execute("SELECT 1")
    assert await db.integrity_check() == "ok"


async def test_recover_keeps_remote_workers_jobs(jobs: JobStore) -> None:
    local = await jobs.enqueue("osbuild:x86_64", {})
    remote = await jobs.enqueue("osbuild:aarch64", {})
    await jobs.dequeue(["osbuild:x86_64"], timeout=0)
    taken = await jobs.dequeue(["osbuild:aarch64"], timeout=0, owner="worker-3")
    await jobs.db.write("UPDATE jobs SET heartbeat = 0 WHERE id = ?", (remote,))  # long downtime
    out = await jobs.recover()
    assert out["failed"] == [local] and out["remote_kept"] == [remote]
    assert (await jobs.get(local)).error.reason == "interrupted"
    # the worker comes back with its token; its heartbeat clock restarted at recovery
    assert await jobs.requeue_stale() == ([], [])
    await jobs.finish(taken.token, {"success": True})
    assert (await jobs.get(remote)).status == JobStatus.FINISHED
