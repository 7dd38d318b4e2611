"""JobStore.enqueue_graph: a job graph written in the caller's transaction (with whatever the caller
writes beside it), dequeuers woken only once that transaction commits, nothing left by a rollback."""

from __future__ import annotations

import asyncio

import pytest

from osbuildd.queue import Database, GraphJob, JobNotFound, JobStatus, JobStore


async def test_graph_commits_and_wakes_a_waiting_dequeue(db: Database) -> None:
    jobs = JobStore(db)
    waiter = asyncio.create_task(jobs.dequeue(["b"], channels=["chan"], timeout=10))
    await asyncio.sleep(0)   # the dequeue tried once and waits
    dep = GraphJob("a", {"x": 1}, [], status="finished", result={"r": 1})
    dep.id = "dep-1"
    build = GraphJob("b", {"y": 2}, ["dep-1"])
    async with db.transaction() as conn:
        ids = await jobs.enqueue_graph(conn, [dep, build], "chan")
        assert not waiter.done()
    got = await asyncio.wait_for(waiter, 5)
    assert got is not None and got.job.id == ids[1] == build.id and ids[0] == "dep-1"
    assert got.dynamic_args == [{"r": 1}] and got.job.channel == "chan"
    first = await jobs.get("dep-1")
    assert first.status == JobStatus.FINISHED and first.result == {"r": 1} and first.started_at is not None


async def test_rollback_leaves_no_jobs(db: Database) -> None:
    jobs = JobStore(db)
    g = GraphJob("b", {}, [])
    with pytest.raises(RuntimeError, match="caller failed"):
        async with db.transaction() as conn:
            await jobs.enqueue_graph(conn, [g], "")
            raise RuntimeError("caller failed")
    with pytest.raises(JobNotFound):
        await jobs.get(g.id)
    assert await jobs.dequeue(["b"], channels=None, timeout=0) is None


async def test_after_commit_needs_a_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError, match="outside a transaction"):
        db.after_commit(lambda: None)
