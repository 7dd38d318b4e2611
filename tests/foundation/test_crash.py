"""Crash recovery: SIGKILL a process while it writes to the database, then reopen it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from osbuildd.queue import Database, JobStatus, JobStore, errors

WRITER = Path(__file__).with_name("crash_writer.py")


async def _run_and_kill(state_dir: Path, repo_root: Path, acks_before_kill: int) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(WRITER), str(state_dir), stdout=asyncio.subprocess.PIPE, env=env)
    lines: list[str] = []
    acks = 0
    try:
        async with asyncio.timeout(120):
            while acks < acks_before_kill:
                line = await proc.stdout.readline()
                assert line, f"writer exited early with {await proc.wait()}"
                lines.append(line.decode().strip())
                acks += line.startswith(b"ack ")
    finally:
        proc.send_signal(signal.SIGKILL)  # at whatever point it is in its next transaction
        rest, _ = await proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    # complete lines already in the pipe were acknowledged too (a torn last line was not)
    lines += rest.decode().split("\n")[:-1]
    return lines


async def test_sigkill_while_writing_loses_nothing_acknowledged(tmp_path: Path, repo_root: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    lines = await _run_and_kill(state_dir, repo_root, acks_before_kill=300)
    acked = [line.split()[1] for line in lines if line.startswith("ack ")]
    done = [line.split()[1] for line in lines if line.startswith("done ")]
    running = {line.split()[1]: line.split()[2] for line in lines if line.startswith("running ")}
    assert len(acked) >= 300 and len(running) == 2
    assert (state_dir / "osbuildd.db-wal").exists()  # it really died with a live WAL

    db = await Database.open(state_dir / "osbuildd.db")
    try:
        assert await db.integrity_check() == "ok"
        jobs = await JobStore.open(db, state_dir=state_dir)
        recovered = await jobs.recover()
        for job_id in acked:
            await jobs.get(job_id)  # raises JobNotFound if an acknowledged job was lost
        for job_id in done:
            job = await jobs.get(job_id)
            assert job.status == JobStatus.FINISHED and job.result == {"packages": list(range(20))}
        # running when killed: the build failed "interrupted", the depsolve went back to the queue
        build = await jobs.get(running["osbuild:x86_64"])
        assert build.status == JobStatus.FINISHED
        assert (build.error.id, build.error.reason) == (errors.BUILD_JOB, "interrupted")
        depsolve = await jobs.get(running["depsolve"])
        assert depsolve.status == JobStatus.PENDING and depsolve.token is None
        assert recovered["failed"] == [build.id]
        # the held depsolve, plus the loop's one if the kill fell between its dequeue and finish
        assert depsolve.id in recovered["requeued"] and len(recovered["requeued"]) <= 2
        for job_id in recovered["requeued"]:
            assert (await jobs.get(job_id)).type == "depsolve"
        assert recovered["remote_kept"] == []
        assert recovered["tmp_removed"] == 1 and list((state_dir / "tmp").iterdir()) == []
        assert await jobs.list(status=JobStatus.RUNNING) == []
        # the queue still works after recovery
        again = await jobs.dequeue(["depsolve"], ["held"], timeout=0)
        assert again.job.id == depsolve.id
    finally:
        await db.close()
