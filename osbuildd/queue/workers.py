"""Remote workers (upstream's worker table): the one owner of the ``workers`` table (migration 0007).

A worker registers (``register``), refreshes its heartbeat (``status``) and is forgotten once silent
for longer than the worker heartbeat timeout (``drop_silent``, run periodically by the worker API).
Jobs are not tied to rows here: the job store's own heartbeat watcher requeues a job whose token
went silent, whichever worker held it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from osbuildd.errors import ErrorKind, ServiceError
from osbuildd.queue.db import Database
from osbuildd.queue.jobs import JobStore


class WorkerNotFound(ServiceError):
    kind = ErrorKind.NOT_FOUND
    error_id = "WorkerNotFound"


@dataclass(frozen=True)
class Worker:
    id: str
    channel: str
    arch: str
    registered_at: float
    heartbeat: float


class WorkerStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def register(self, arch: str, channel: str = "") -> str:
        """A new worker's id."""
        worker_id, now = str(uuid.uuid4()), time.time()
        await self.db.write(
            "INSERT INTO workers (id, channel, arch, registered_at, heartbeat) VALUES (?, ?, ?, ?, ?)",
            (worker_id, channel, arch, now, now))
        return worker_id

    async def status(self, worker_id: str) -> None:
        """Refresh the worker's heartbeat; WorkerNotFound if it is unknown (or was dropped)."""
        rows = await self.db.write("UPDATE workers SET heartbeat = ? WHERE id = ? RETURNING id",
                                   (time.time(), worker_id))
        if not rows:
            raise WorkerNotFound(f"worker {worker_id} does not exist")

    async def get(self, worker_id: str) -> Worker:
        async with self.db.conn.execute(
                "SELECT id, channel, arch, registered_at, heartbeat FROM workers WHERE id = ?", (worker_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise WorkerNotFound(f"worker {worker_id} does not exist")
        return Worker(row["id"], row["channel"], row["arch"], row["registered_at"], row["heartbeat"])

    async def all(self) -> list[Worker]:
        async with self.db.conn.execute(
                "SELECT id, channel, arch, registered_at, heartbeat FROM workers ORDER BY registered_at") as cur:
            rows = await cur.fetchall()
        return [Worker(r["id"], r["channel"], r["arch"], r["registered_at"], r["heartbeat"]) for r in rows]

    async def drop_silent(self, silent_for: float, now: float | None = None) -> list[str]:
        """Delete workers whose last heartbeat is older than ``silent_for`` seconds; their ids."""
        limit = (now if now is not None else time.time()) - silent_for
        rows = await self.db.write("DELETE FROM workers WHERE heartbeat < ? RETURNING id", (limit,))
        return [r[0] for r in rows]


async def requeue_untaken(jobs: JobStore, token: str) -> bool:
    """Put a job a remote worker was handed but never received (its POST /jobs answer could not be
    written) back to pending, without counting a retry. Whether it was still running under ``token``."""
    return await jobs.requeue(token)
