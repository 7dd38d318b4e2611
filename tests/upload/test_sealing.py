"""Sealed upload credentials (osbuildd/sealing.py): the key file, sealing target options, and the job
store dropping ``args.sealed`` on every path that settles a job (real SQLite, no build)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from osbuildd import sealing
from osbuildd.queue import Database, JobError, JobStore

SECRET = "sealing-test-Secret-4711"
TARGETS = [
    {"name": "org.osbuild.aws.s3", "uuid": "u0", "image_name": "img",
     "options": {"region": "us-east-1", "bucket": "b", "key": "obj",
                 "accessKeyID": "AKIASEALTEST", "secretAccessKey": SECRET, "sessionToken": SECRET + "-tok"}},
    {"name": "org.osbuild.worker.server", "uuid": "u1", "image_name": "", "options": {}},
    {"name": "org.osbuild.gcp", "uuid": "u2", "image_name": "g",
     "options": {"bucket": "gb", "object": "o", "credentials": "eyJ" + SECRET}},
]


def test_key_file_created_once_owner_only(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        a = sealing.Sealer.open(tmp_path)
    finally:
        os.umask(old)
    key = tmp_path / sealing.KEY_NAME
    assert key.stat().st_mode & 0o777 == 0o600
    content = key.read_bytes()
    b = sealing.Sealer.open(tmp_path)
    assert key.read_bytes() == content           # not replaced by the second open
    assert b.unseal(a.seal({"x": 1})) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == [sealing.KEY_NAME]   # no temp file left


def test_key_file_race_one_winner(tmp_path: Path, repo_root: Path) -> None:
    """Processes that open the sealer at the same time all end up with the same key."""
    code = ("import sys; from pathlib import Path; from osbuildd import sealing;"
            "print(sealing.Sealer.open(Path(sys.argv[1])).seal('hi'))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=repo_root, text=True,
                              stdout=subprocess.PIPE) for _ in range(6)]
    tokens = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    s = sealing.Sealer.open(tmp_path)
    assert [s.unseal(t) for t in tokens] == ["hi"] * 6


def test_foreign_or_broken_key(tmp_path: Path) -> None:
    token = sealing.Sealer.open(tmp_path / "a").seal({"k": "v"})
    with pytest.raises(sealing.SealError, match="cannot be opened"):
        sealing.Sealer.open(tmp_path / "b").unseal(token)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / sealing.KEY_NAME).write_text("not a key\n")
    with pytest.raises(sealing.SealError, match="not a Fernet key"):
        sealing.Sealer.open(tmp_path / "c")


def test_seal_and_unseal_targets(tmp_path: Path) -> None:
    sealer = sealing.Sealer.open(tmp_path)
    args = sealing.seal_targets({"targets": json.loads(json.dumps(TARGETS)), "filename": "x"}, sealer)
    stored = json.dumps(args)
    assert SECRET not in stored and "AKIASEALTEST" not in stored and "eyJ" not in stored
    assert args["targets"][0]["options"] == {"region": "us-east-1", "bucket": "b"}   # secrets dropped
    assert args["targets"][1]["options"] == {}
    assert args["targets"][2]["options"] == {"bucket": "gb", "object": "o"}
    opened = sealing.unseal_targets(args, lambda: sealer)
    assert opened == TARGETS
    assert SECRET not in json.dumps(args)           # unsealing left the args alone
    # nothing secret: nothing sealed, the sealer is never asked for
    plain = sealing.seal_targets({"targets": [TARGETS[1]]}, sealer)
    assert sealing.SEALED not in plain
    assert sealing.unseal_targets(plain, lambda: pytest.fail("no sealer needed")) == [TARGETS[1]]


# -- the job store drops args.sealed whenever a job settles ------------------------------------

@pytest.fixture
async def store(tmp_path: Path):
    db = await Database.open(tmp_path / "osbuildd.db")
    jobs = await JobStore.open(db, state_dir=tmp_path)
    yield jobs
    await jobs.close()
    await db.close()


def sealed_args() -> dict:
    return {"targets": [{"name": "org.osbuild.aws.s3", "options": {}}], "sealed": "gAAAA-token"}


async def raw_args(jobs: JobStore, job_id: str) -> dict:
    async with jobs.db.conn.execute("SELECT args FROM jobs WHERE id = ?", (job_id,)) as cur:
        return json.loads((await cur.fetchone())[0])


async def test_sealed_kept_while_pending_and_running(store: JobStore) -> None:
    jid = await store.enqueue("osbuild:x86_64", sealed_args())
    assert "sealed" in await raw_args(store, jid)
    dq = await store.dequeue(["osbuild:x86_64"], timeout=0)
    assert dq is not None and dq.job.args["sealed"] == "gAAAA-token"   # the taker gets it
    assert "sealed" in await raw_args(store, jid)


@pytest.mark.parametrize("end", ["finished", "failed", "canceled-running", "canceled-pending",
                                 "dependency-failed", "dependency-canceled", "interrupted", "shutdown",
                                 "heartbeat", "enqueued-after-failure"])
async def test_sealed_dropped_when_the_job_ends(store: JobStore, end: str) -> None:
    kind = "osbuild:x86_64"
    if end == "enqueued-after-failure":
        dep = await store.enqueue("depsolve", {})
        dq = await store.dequeue(["depsolve"], timeout=0)
        await store.finish(dq.token, None, JobError(20, "depsolve failed"))
        jid = await store.enqueue(kind, sealed_args(), [dep])
    elif end.startswith("dependency-"):
        dep = await store.enqueue("depsolve", {})
        jid = await store.enqueue(kind, sealed_args(), [dep])
        if end == "dependency-failed":
            dq = await store.dequeue(["depsolve"], timeout=0)
            await store.finish(dq.token, None, JobError(20, "depsolve failed"))
        else:
            await store.cancel(dep)
    else:
        jid = await store.enqueue(kind, sealed_args())
        if end == "canceled-pending":
            await store.cancel(jid)
        else:
            owner = "worker-1" if end == "heartbeat" else "local"
            dq = await store.dequeue([kind], timeout=0, owner=owner)
            if end == "finished":
                await store.finish(dq.token, {"success": True})
            elif end == "failed":
                await store.finish(dq.token, None, JobError(10, "osbuild build failed"))
            elif end == "canceled-running":
                await store.cancel(jid)
            elif end == "interrupted":
                await store.recover()          # crash recovery at the next start
            elif end == "shutdown":
                await store.release_running("daemon shutting down")
            elif end == "heartbeat":
                store.max_retries = 0
                await store.requeue_stale(now=dq.job.started_at + store.heartbeat_timeout + 1)
    job = await store.get(jid)
    assert job.done, job.status
    args = await raw_args(store, jid)
    assert "sealed" not in args
    assert args["targets"] == [{"name": "org.osbuild.aws.s3", "options": {}}]   # the rest stays


async def test_other_jobs_untouched(store: JobStore) -> None:
    a = await store.enqueue("osbuild:x86_64", sealed_args())
    b = await store.enqueue("osbuild:x86_64", sealed_args())
    dq = await store.dequeue(["osbuild:x86_64"], timeout=0)
    assert dq.job.id == a
    await store.finish(dq.token, {"success": True})
    assert "sealed" not in await raw_args(store, a)
    assert "sealed" in await raw_args(store, b)
    await asyncio.sleep(0)
