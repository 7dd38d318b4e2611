"""The job store and scheduler, modelled on osbuild-composer's job queue.

Jobs form a DAG; a job is handed out only once all its dependencies finished, to exactly one
taker (one transaction selects it and marks it running with a fresh token). Waiters are woken by
enqueue/finish/cancel/requeue through the database's change notifications (in-process on SQLite,
``LISTEN``/``NOTIFY`` on PostgreSQL, so a change made by another daemon wakes them too), never by
polling. On PostgreSQL several daemons share the queue: takers skip rows another one has locked,
and every sweep locks the rows it settles, so no job is handed out or settled twice.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from osbuildd.log import get_logger
from osbuildd.queue import errors
from osbuildd.queue.db import JOBS_CHANNEL, Conn, Database
from osbuildd.queue.errors import JobInUse, JobNotFound, JobNotPending, JobNotRunning, TokenNotFound
from osbuildd.queue.model import (
    Dequeued,
    GraphJob,
    Job,
    JobError,
    JobStatus,
    dumps,
    job_columns,
    job_from_row,
)

log = get_logger("osbuildd.queue")

LOCAL_OWNER = "local"  # jobs taken by the in-process executor of the one daemon on an SQLite file
# Payload of a cancel notification: "cancel <id> <id> ..." (PostgreSQL caps a payload at 8000 bytes)
CANCEL_PAYLOAD_IDS = 200
# A change that wakes no waiter (a job taken, progress): only other daemons' caches move
QUIET = "quiet"
# While the notification listener is down (PostgreSQL restarting), waiters look again this often.
DISCONNECTED_RECHECK = 2.0
HEARTBEAT_TIMEOUT = 120.0  # upstream JobTimeout: 2 min without a heartbeat
WATCH_INTERVAL = 30.0  # upstream WatchHeartbeats period
MAX_RETRIES = 2  # requeues after a missing heartbeat before the job fails with error 27

# Types that only compute (no side effects outside the database): a crash or shutdown requeues them.
# Everything else (osbuild:<arch>, uploads, koji, ...) is failed instead, so it never runs twice.
REQUEUE_TYPES = frozenset({"depsolve", "manifest-id-only", "container-resolve", "ostree-resolve", "file-resolve"})


def _now() -> float:
    return time.time()


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


def node_owner(db: Database, state_dir: Path | None) -> str:
    """The owner name of this daemon's in-process executor: "local" on SQLite (one daemon per file);
    ``local:<node id>`` on PostgreSQL, the node id kept in ``<state_dir>/node-id`` so a restarted
    daemon recovers its own jobs and no other daemon's."""
    if db.backend == "sqlite":
        return LOCAL_OWNER
    if state_dir is None:
        return f"{LOCAL_OWNER}:{uuid.uuid4()}"
    path = state_dir / "node-id"
    try:
        node = path.read_text().strip()
    except FileNotFoundError:
        node = ""
    if not node:
        node = str(uuid.uuid4())
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(node + "\n")
        tmp.replace(path)
    return f"{LOCAL_OWNER}:{node}"


class JobStore:
    def __init__(self, db: Database, *, state_dir: Path | None = None, results_dir: Path | None = None,
                 heartbeat_timeout: float = HEARTBEAT_TIMEOUT, max_retries: int = MAX_RETRIES) -> None:
        self.db = db
        self.state_dir = state_dir
        self.results_dir = results_dir or (state_dir / "results" if state_dir else None)
        self._columns = job_columns(dialect=db.dialect)
        self.heartbeat_timeout = heartbeat_timeout
        self.max_retries = max_retries
        self._wakeup = asyncio.Event()
        self._cancel_events: dict[str, asyncio.Event] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._local_beat: asyncio.Task[None] | None = None
        self.local_owner = node_owner(db, state_dir)
        self._unsubscribe = db.subscribe(JOBS_CHANNEL, self._on_change)

    @classmethod
    async def open(cls, db: Database, *, state_dir: str | Path | None = None, results_dir: Path | None = None,
                   heartbeat_timeout: float = HEARTBEAT_TIMEOUT, max_retries: int = MAX_RETRIES) -> JobStore:
        return cls(db, state_dir=Path(state_dir) if state_dir else None, results_dir=results_dir,
                   heartbeat_timeout=heartbeat_timeout, max_retries=max_retries)

    async def close(self) -> None:
        self._unsubscribe()
        for task in (self._watcher, self._local_beat):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._watcher = self._local_beat = None

    # -- waking waiters -------------------------------------------------------------------------

    async def _changed(self, kind: str = "change") -> None:
        """Tell every daemon on the database (this one too) once the caller's transaction commits."""
        await self.db.notify(JOBS_CHANNEL, kind)

    def _on_change(self, payload: str) -> None:
        if payload == QUIET:
            return
        if payload.startswith("cancel "):
            for job_id in payload.split()[1:]:
                event = self._cancel_events.get(job_id)
                if event is not None:
                    event.set()
        self._notify()

    def _notify(self) -> None:
        # Swap before setting: a waiter that captured the old event before its failed attempt is
        # woken even if the change committed between its attempt and its wait.
        event, self._wakeup = self._wakeup, asyncio.Event()
        event.set()

    def changed(self) -> asyncio.Event:
        """Set at the queue's next change (enqueue, finish, cancel, requeue): take it, read the
        queue, then wait on it, and no change between the read and the wait is missed."""
        return self._wakeup

    async def _wait(self, event: asyncio.Event, deadline: float | None) -> bool:
        """Wait for ``event`` until ``deadline`` (loop time); False on timeout. While the database
        cannot deliver notifications, return after a short while anyway so the caller looks again."""
        remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
        if remaining is not None and remaining <= 0:
            return False
        if not self.db.connected:
            remaining = DISCONNECTED_RECHECK if remaining is None else min(remaining, DISCONNECTED_RECHECK)
        if remaining is None:
            await event.wait()
            return True
        try:
            await asyncio.wait_for(event.wait(), remaining)
        except TimeoutError:
            return deadline is None or asyncio.get_running_loop().time() < deadline
        return True

    @staticmethod
    def _deadline(timeout: float | None) -> float | None:
        return None if timeout is None else asyncio.get_running_loop().time() + timeout

    # -- reads ----------------------------------------------------------------------------------

    async def _fetch(self, conn: Conn, where: str, params: Sequence[Any]) -> list[Job]:
        async with conn.execute(f"SELECT {self._columns} FROM jobs WHERE {where} ORDER BY seq", params) as cur:
            return [job_from_row(row) for row in await cur.fetchall()]

    async def get(self, job_id: str) -> Job:
        jobs = await self._fetch(self.db.conn, "id = ?", (job_id,))
        if not jobs:
            raise JobNotFound(job_id)
        return jobs[0]

    async def get_by_token(self, token: str) -> Job:
        jobs = await self._fetch(self.db.conn, "token = ?", (token,))
        if not jobs:
            raise TokenNotFound(token)
        return jobs[0]

    async def list(self, *, status: JobStatus | str | Iterable[JobStatus | str] | None = None,
                   channel: str | None = None, types: Sequence[str] | None = None) -> builtins.list[Job]:
        """Jobs in queue order. ``types`` entries ending in ``*`` match a prefix (``osbuild:*``)."""
        clauses: builtins.list[str] = []
        params: builtins.list[Any] = []
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            clauses.append(f"status IN ({_placeholders(len(wanted))})")
            params += [str(JobStatus(s)) for s in wanted]
        if channel is not None:
            clauses.append("channel = ?")
            params.append(channel)
        if types is not None:
            ors = []
            for t in types:
                if t.endswith("*"):
                    ors.append("substr(type, 1, ?) = ?")
                    params += [len(t) - 1, t[:-1]]
                else:
                    ors.append("type = ?")
                    params.append(t)
            clauses.append("(" + (" OR ".join(ors) or "FALSE") + ")")   # booleans PostgreSQL reads too
        return await self._fetch(self.db.conn, " AND ".join(clauses) or "TRUE", params)

    async def has_ready(self, types: Sequence[str], channels: Sequence[str] | None = ("",)) -> bool:
        """Whether a pending job of ``types`` (in ``channels``; None: any) is ready to be taken: a read,
        so many waiting takers can look after each queue change without queueing writes."""
        sql = (f"SELECT 1 FROM jobs WHERE status = 'pending' AND waiting_for = 0"
               f" AND type IN ({_placeholders(len(types))})")
        params: builtins.list[Any] = list(types)
        if channels is not None:
            sql += f" AND channel IN ({_placeholders(len(channels))})"
            params += list(channels)
        async with self.db.conn.execute(sql + " LIMIT 1", params) as cur:
            return await cur.fetchone() is not None

    async def counts(self) -> dict[tuple[str, str, str], int]:
        """Pending and running jobs by (type, channel, status): one GROUP BY, for /metrics."""
        async with self.db.conn.execute(
            "SELECT type, channel, status, COUNT(*) FROM jobs WHERE status IN ('pending', 'running')"
            " GROUP BY type, channel, status"
        ) as cur:
            return {(row[0], row[1], row[2]): int(row[3]) for row in await cur.fetchall()}

    async def dependents(self, job_id: str) -> builtins.list[str]:
        """Ids of the jobs that depend on ``job_id``."""
        async with self.db.conn.execute(
            "SELECT DISTINCT job_id FROM job_dependencies WHERE dependency_id = ?", (job_id,)
        ) as cur:
            return [row[0] for row in await cur.fetchall()]

    async def wait_done(self, job_id: str) -> Job:
        """The job once it is finished or canceled (bound it with ``asyncio.timeout``)."""
        while True:
            event = self._wakeup
            job = await self.get(job_id)
            if job.done:
                return job
            await self._wait(event, None)

    # -- enqueue --------------------------------------------------------------------------------

    async def enqueue(self, type: str, args: dict[str, Any], dependencies: Sequence[str] = (), channel: str = "") -> str:
        if not type:
            raise ValueError("job type must not be empty")
        job_id = str(uuid.uuid4())
        now = _now()
        async with self.db.transaction() as conn:
            waiting = 0
            failed_dep: tuple[str, Any] | None = None
            canceled_dep = False
            for dep in dependencies:
                # FOR SHARE: a daemon finishing ``dep`` now waits for this insert (or this read waits
                # for its commit), so the new edge is never missed by the finisher's decrement
                async with conn.execute("SELECT status, error FROM jobs WHERE id = ?" + self.db.dialect.for_share,
                                        (dep,)) as cur:
                    row = await cur.fetchone()
                if row is None:
                    raise JobNotFound(dep)
                if row["status"] in (JobStatus.PENDING, JobStatus.RUNNING):
                    waiting += 1
                elif row["status"] == JobStatus.CANCELED:
                    canceled_dep = True
                elif row["error"] is not None and failed_dep is None:
                    failed_dep = (dep, row["error"])
            # A job whose dependency already failed or was canceled would never run: settle it now.
            status, error, finished = JobStatus.PENDING, None, None
            if canceled_dep:
                status, finished = JobStatus.CANCELED, now
            elif failed_dep:
                status, finished = JobStatus.FINISHED, now
                error = self._dependency_error(failed_dep[0], failed_dep[1])
            await conn.execute(
                "INSERT INTO jobs (id, type, args, channel, status, waiting_for, error, queued_at, finished_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, type, dumps(args or {}), channel, str(status), waiting, error, now, finished),
            )
            if dependencies:
                await conn.executemany(
                    "INSERT INTO job_dependencies (job_id, position, dependency_id) VALUES (?, ?, ?)",
                    [(job_id, i, dep) for i, dep in enumerate(dependencies)],
                )
            await self._changed()
        return job_id

    async def enqueue_graph(self, conn: Conn, graph: Sequence[GraphJob],
                            channel: str = "") -> builtins.list[str]:
        """Enqueue a job graph (``graph`` lists dependencies before dependents, each dependency one of
        ``graph``) inside the caller's transaction ``conn`` (opened with ``self.db.transaction()``),
        so what the caller writes beside it (a ``composes`` row) commits with the jobs or not at all.
        Jobs may be pre-settled (see GraphJob). Dequeuers are woken once the transaction commits.
        Returns the job ids (made up for jobs without one)."""
        now = _now()
        for j in graph:
            j.id = j.id or str(uuid.uuid4())
        by_id = {j.id: j for j in graph}
        for j in graph:
            # all dependencies are new: none can have failed yet, only be pending or pre-settled
            waiting = sum(1 for d in j.dependencies if by_id[d].status == "pending")
            finished = (j.finished_at or now) if j.status != "pending" else None
            started = (j.started_at or finished) if j.status != "pending" else None
            await conn.execute(
                "INSERT INTO jobs (id, type, args, channel, status, waiting_for, result, error, queued_at,"
                " started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (j.id, j.type, dumps(j.args), channel, j.status, waiting, dumps(j.result), dumps(j.error),
                 j.queued_at or now, started, finished))
            await conn.executemany(
                "INSERT INTO job_dependencies (job_id, position, dependency_id) VALUES (?, ?, ?)",
                [(j.id, i, d) for i, d in enumerate(j.dependencies)])
        await self._changed()
        return [j.id for j in graph]

    @staticmethod
    def _dependency_error(dep_id: str, dep_error_json: str | None) -> str | None:
        dep_error = None if dep_error_json is None else json.loads(dep_error_json)
        return dumps(JobError(errors.DEPENDENCY_FAILED, errors.REASON_DEPENDENCY_FAILED,
                              {"dependency": dep_id, "error": dep_error}).to_dict())

    # -- dequeue --------------------------------------------------------------------------------

    async def dequeue(self, types: Sequence[str], channels: Sequence[str] | None = ("",),
                      timeout: float | None = None,  # noqa: ASYNC109 - contract: None on timeout
                      *, owner: str | None = None) -> Dequeued | None:
        """The oldest ready pending job of one of ``types`` in one of ``channels`` (None: any channel).

        Waits until one is ready; ``timeout`` None waits forever, 0 tries once; None on timeout.
        ``owner`` (default: this daemon's executor) names the taker; a remote worker's jobs are
        watched for heartbeats.
        """
        owner = owner or self.local_owner
        if not types:
            raise ValueError("dequeue needs at least one job type")
        if channels is not None and not channels:
            raise ValueError("dequeue needs at least one channel (or None for any)")
        deadline = self._deadline(timeout)
        # Select and take in ONE statement: atomic, and a single round trip to the database thread.
        select = (f"SELECT seq FROM jobs WHERE status = 'pending' AND waiting_for = 0"
                  f" AND type IN ({_placeholders(len(types))})")
        params: builtins.list[Any] = list(types)
        if channels is not None:
            select += f" AND channel IN ({_placeholders(len(channels))})"
            params += list(channels)
        take = ("UPDATE jobs SET status = 'running', token = ?, owner = ?, started_at = ?, heartbeat = ?"
                f" WHERE seq = ({select} ORDER BY seq LIMIT 1{self.db.dialect.skip_locked})"
                " AND status = 'pending' RETURNING id")
        while True:
            event = self._wakeup
            token, now = str(uuid.uuid4()), _now()
            # "taken": other daemons' listings change, but no waiter has anything new to take
            rows = await self.db.write(take, [token, owner, now, now, *params], notify=(JOBS_CHANNEL, QUIET))
            if rows:
                return await self._dequeued(self.db.conn, rows[0][0], token)
            if not await self._wait(event, deadline):
                return None

    async def dequeue_by_id(self, job_id: str, *, owner: str | None = None) -> Dequeued:
        """Take one particular job (composer does its own manifest job), waiting for its dependencies
        (bound it with ``asyncio.timeout``).

        Raises JobNotFound, JobNotPending (already taken, finished, canceled or failed because a
        dependency failed).
        """
        owner = owner or self.local_owner
        while True:
            event = self._wakeup
            async with self.db.transaction() as conn:
                async with conn.execute("SELECT status, waiting_for FROM jobs WHERE id = ?"
                                        + self.db.dialect.for_update, (job_id,)) as cur:
                    row = await cur.fetchone()
                if row is None:
                    raise JobNotFound(job_id)
                if row["status"] != JobStatus.PENDING:
                    raise JobNotPending(f"job {job_id} is {row['status']}")
                ready = row["waiting_for"] == 0
                if ready:
                    taken = await self._take(conn, job_id, owner)
                    await self._changed(QUIET)
            if ready:
                return taken
            await self._wait(event, None)

    async def _take(self, conn: Conn, job_id: str, owner: str) -> Dequeued:
        token = str(uuid.uuid4())
        now = _now()
        cur = await conn.execute(
            "UPDATE jobs SET status = 'running', token = ?, owner = ?, started_at = ?, heartbeat = ?"
            " WHERE id = ? AND status = 'pending'",
            (token, owner, now, now, job_id),
        )
        if cur.rowcount != 1:  # cannot happen inside the transaction; guards the one-taker rule
            raise JobNotPending(f"job {job_id} was taken meanwhile")
        return await self._dequeued(conn, job_id, token)

    async def _dequeued(self, conn: Conn, job_id: str, token: str) -> Dequeued:
        """The taken job with its dynamic args (dependency results, in dependency order), one query."""
        if self.db.dialect.name == "sqlite":
            dynamic_sql = ("(SELECT json_group_array(json(r)) FROM"
                           "  (SELECT j.result AS r FROM job_dependencies d JOIN jobs j ON j.id = d.dependency_id"
                           "   WHERE d.job_id = jobs.id ORDER BY d.position))")
        else:   # the results' text joined as it is: nothing parsed (JSON may hold \u0000)
            dynamic_sql = ("(SELECT coalesce('[' || string_agg(coalesce(j.result, 'null'), ','"
                           " ORDER BY d.position) || ']', '[]') FROM job_dependencies d"
                           " JOIN jobs j ON j.id = d.dependency_id WHERE d.job_id = jobs.id)")
        async with conn.execute(
            f"SELECT {self._columns}, {dynamic_sql} AS dynamic FROM jobs WHERE id = ?", (job_id,)
        ) as cur:
            row = await cur.fetchone()
        assert row is not None   # taken inside this transaction (or just now by the writer): it exists
        dynamic = [r if r is not None else {} for r in json.loads(row["dynamic"])]
        return Dequeued(job=job_from_row(row), token=token, dynamic_args=dynamic)

    # -- running jobs ---------------------------------------------------------------------------

    async def finish(self, token: str, result: dict[str, Any] | None, error: JobError | None = None) -> None:
        """Finish the job of ``token``. A ``job_error`` inside ``result`` counts as ``error`` (upstream
        results carry it). Finishing a job canceled meanwhile is a no-op."""
        if error is None and isinstance(result, dict) and isinstance(result.get("job_error"), dict) \
                and "id" in result["job_error"]:
            error = JobError.from_dict(result["job_error"])
        result_text, error_text = dumps(result), dumps(error.to_dict()) if error else None
        async with self.db.transaction() as conn:
            rows = await conn.execute_fetchall(
                "UPDATE jobs SET status = 'finished', result = ?, error = ?, finished_at = ?"
                " WHERE token = ? AND status = 'running' RETURNING id",
                (result_text, error_text, _now(), token))
            if rows:
                job_id = builtins.list(rows)[0][0]
                await self._release_dependents(conn, job_id, error)
                await self._changed()
            else:
                async with conn.execute("SELECT id, status, result, error FROM jobs WHERE token = ?",
                                        (token,)) as cur:
                    row = await cur.fetchone()
                if row is None:
                    raise TokenNotFound(token)
                # the same finish again (a worker whose answer was lost, through another daemon)
                repeated = (row["status"] == JobStatus.FINISHED and row["result"] == result_text
                            and row["error"] == error_text)
                if row["status"] != JobStatus.CANCELED and not repeated:
                    raise JobNotRunning(f"job {row['id']} is {row['status']}")
                job_id = row["id"]  # canceled meanwhile, or already recorded: nothing to write
        self._cancel_events.pop(job_id, None)

    async def _settle(self, conn: Conn, job_id: str, result: dict[str, Any] | None,
                      error: JobError | None) -> None:
        """Mark a job finished and release or fail its dependents (inside a transaction)."""
        await conn.execute(
            "UPDATE jobs SET status = 'finished', result = ?, error = ?, finished_at = ? WHERE id = ?",
            (dumps(result), dumps(error.to_dict()) if error else None, _now(), job_id),
        )
        await self._release_dependents(conn, job_id, error)

    async def _release_dependents(self, conn: Conn, job_id: str, error: JobError | None) -> None:
        """After ``job_id`` finished: one step closer to ready for its dependents, or failed with it."""
        if error is None:
            # One decrement per dependency edge (a job may list the same dependency twice).
            await conn.execute(
                "UPDATE jobs SET waiting_for = waiting_for - (SELECT count(*) FROM job_dependencies d"
                "  WHERE d.job_id = jobs.id AND d.dependency_id = ?)"
                " WHERE status = 'pending' AND id IN"
                "  (SELECT job_id FROM job_dependencies WHERE dependency_id = ?)",
                (job_id, job_id),
            )
        else:
            await self._cascade(conn, job_id, "fail", dumps(error.to_dict()))

    async def _cascade(self, conn: Conn, root: str, how: str, root_error: str | None) -> builtins.list[str]:
        """Fail (upstream error 26) or cancel every pending job that depends, transitively, on ``root``."""
        done: builtins.list[str] = []
        frontier = [(root, root_error)]
        now = _now()
        while frontier:
            parent, parent_error = frontier.pop()
            async with conn.execute(
                "SELECT DISTINCT j.id FROM job_dependencies d JOIN jobs j ON j.id = d.job_id"
                " WHERE d.dependency_id = ? AND j.status = 'pending'", (parent,)
            ) as cur:
                children = [r[0] for r in await cur.fetchall()]
            for child in children:
                if how == "cancel":
                    await conn.execute(
                        "UPDATE jobs SET status = 'canceled', finished_at = ? WHERE id = ?", (now, child))
                    frontier.append((child, None))
                else:
                    error = self._dependency_error(parent, parent_error)
                    await conn.execute(
                        "UPDATE jobs SET status = 'finished', error = ?, finished_at = ? WHERE id = ?",
                        (error, now, child))
                    frontier.append((child, error))
                done.append(child)
        return done

    async def cancel(self, job_id: str) -> None:
        """Cancel a pending or running job and, transitively, its pending dependents.

        A running job's taker learns it from :meth:`cancel_event` (local) or :meth:`heartbeat` (workers).
        """
        async with self.db.transaction() as conn:
            # locked first: a dependent enqueued meanwhile (FOR SHARE on this row) is seen by the cascade
            async with conn.execute("SELECT status FROM jobs WHERE id = ?" + self.db.dialect.for_update,
                                    (job_id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise JobNotFound(job_id)
            if row["status"] not in (JobStatus.PENDING, JobStatus.RUNNING):
                raise JobNotRunning(f"job {job_id} is {row['status']}")
            await conn.execute(
                "UPDATE jobs SET status = 'canceled', finished_at = ? WHERE id = ?", (_now(), job_id))
            canceled = [job_id, *await self._cascade(conn, job_id, "cancel", None)]
            # the daemon whose executor runs one of them learns it from the payload
            await self._changed("cancel " + " ".join(canceled[:CANCEL_PAYLOAD_IDS]))
        for jid in canceled:
            self.cancel_event(jid).set()

    def cancel_event(self, job_id: str) -> asyncio.Event:
        """Set when the job is canceled; the local executor waits on it while the job runs."""
        return self._cancel_events.setdefault(job_id, asyncio.Event())

    async def heartbeat(self, token: str) -> bool:
        """Record that the taker of ``token`` is alive; returns whether the job was canceled."""
        rows = await self.db.write(
            "UPDATE jobs SET heartbeat = ? WHERE token = ? AND status = 'running' RETURNING id", (_now(), token))
        if rows:
            return False
        async with self.db.conn.execute("SELECT status FROM jobs WHERE token = ?", (token,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise TokenNotFound(token)
        return bool(row["status"] == JobStatus.CANCELED)

    async def set_progress(self, job_id: str, progress: dict[str, Any]) -> None:
        rows = await self.db.write("UPDATE jobs SET progress = ? WHERE id = ? RETURNING id",
                                   (dumps(progress), job_id), notify=(JOBS_CHANNEL, QUIET))
        if not rows:
            raise JobNotFound(job_id)

    async def record_canceled_error(self, job_id: str, error: dict[str, Any]) -> bool:
        """Write ``error`` onto a canceled job (a cancel settles it without one: the local executor
        adds the stage and last lines once the build stopped); returns whether it was written."""
        rows = await self.db.write(
            "UPDATE jobs SET error = ? WHERE id = ? AND status = 'canceled' RETURNING id",
            (json.dumps(error), job_id), notify=(JOBS_CHANNEL, QUIET))
        return bool(rows)

    # -- heartbeat watcher, shutdown, crash recovery ----------------------------------------------

    async def requeue_stale(self, now: float | None = None) -> tuple[builtins.list[str], builtins.list[str]]:
        """Requeue running worker jobs whose heartbeat is older than the timeout; after
        ``max_retries`` requeues fail them with error 27. Returns (requeued, failed) ids."""
        limit = (now if now is not None else _now()) - self.heartbeat_timeout
        requeued: builtins.list[str] = []
        failed: builtins.list[str] = []
        async with self.db.transaction() as conn:
            # locked, and skipped when another sweep or a finish holds them: settled once
            async with conn.execute(
                "SELECT id, type, retries, owner FROM jobs WHERE status = 'running' AND heartbeat < ?"
                " AND (owner IS NULL OR owner != ?) ORDER BY seq" + self.db.dialect.skip_locked,
                (limit, self.local_owner)   # this daemon's executor is alive: it is sweeping
            ) as cur:
                stale = await cur.fetchall()
            for row in stale:
                if (row["owner"] or "").startswith(LOCAL_OWNER + ":"):
                    # another daemon's executor went silent (that daemon died): as its own
                    # restart would, requeue what only computes and fail builds, never rerun them
                    if row["type"] in REQUEUE_TYPES:
                        await self._requeue(conn, row["id"], retry=False)
                        requeued.append(row["id"])
                    else:
                        await self._settle(conn, row["id"], None, JobError(
                            errors.BUILD_JOB, errors.REASON_INTERRUPTED, {"type": row["type"]}))
                        failed.append(row["id"])
                elif row["retries"] >= self.max_retries:
                    await self._settle(conn, row["id"], None,
                                       JobError(errors.JOB_MISSING_HEARTBEAT, errors.REASON_MISSING_HEARTBEAT))
                    failed.append(row["id"])
                else:
                    await self._requeue(conn, row["id"], retry=True)
                    requeued.append(row["id"])
            if stale:
                await self._changed()
        if stale:
            for job_id in failed:
                self._cancel_events.pop(job_id, None)
            log.warning("stale jobs", requeued=requeued, failed=failed)
        return requeued, failed

    async def requeue(self, token: str) -> bool:
        """Put the running job of ``token`` back to pending without counting a retry (a taker that
        never received it: the worker API could not deliver its answer). Whether it was running."""
        rows = await self.db.write(
            "UPDATE jobs SET status = 'pending', token = NULL, owner = NULL, started_at = NULL,"
            " heartbeat = NULL, progress = NULL WHERE token = ? AND status = 'running' RETURNING id", (token,),
            notify=(JOBS_CHANNEL, "change"))
        return bool(rows)

    @staticmethod
    async def _requeue(conn: Conn, job_id: str, *, retry: bool) -> None:
        await conn.execute(
            "UPDATE jobs SET status = 'pending', token = NULL, owner = NULL, started_at = NULL,"
            " heartbeat = NULL, progress = NULL, retries = retries + ? WHERE id = ?",
            (1 if retry else 0, job_id),
        )

    def start_heartbeat_watcher(self, interval: float = WATCH_INTERVAL,
                                leading: Callable[[], bool] = lambda: True) -> None:
        """Sweep for silent takers every ``interval`` while ``leading()`` (on a shared database one
        daemon at a time sweeps). On a shared database this daemon's executor heartbeats its own
        running jobs too, so the sweeping daemon can tell when it died."""
        async def watch() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    if leading():
                        await self.requeue_stale()
                except Exception:  # keep watching: one failed sweep must not stop the next
                    log.exception("heartbeat watcher sweep failed")

        if self._watcher is None:
            self._watcher = asyncio.create_task(watch(), name="osbuildd-heartbeat-watcher")
        if self._local_beat is None and self.local_owner != LOCAL_OWNER:
            self._local_beat = asyncio.create_task(self._beat_local(interval), name="osbuildd-local-heartbeat")

    async def _beat_local(self, interval: float) -> None:
        while True:
            try:
                await self.db.write("UPDATE jobs SET heartbeat = ? WHERE owner = ? AND status = 'running'"
                                    " RETURNING id", (_now(), self.local_owner))
            except Exception:
                log.exception("local heartbeat failed")
            await asyncio.sleep(interval)

    async def release_running(self, reason: str, *, owner: str | None = None) -> dict[str, builtins.list[str]]:
        """Settle running jobs (of ``owner``, or all): compute-only types are requeued, the others
        (builds, uploads) fail with error 10 and ``reason``. Used at shutdown and crash recovery."""
        out: dict[str, builtins.list[str]] = {"requeued": [], "failed": []}
        where = "status = 'running'" + (" AND owner = ?" if owner is not None else "")
        async with self.db.transaction() as conn:
            async with conn.execute(f"SELECT id, type FROM jobs WHERE {where} ORDER BY seq"
                                    + self.db.dialect.skip_locked,
                                    (owner,) if owner is not None else ()) as cur:
                rows = await cur.fetchall()
            for row in rows:
                if row["type"] in REQUEUE_TYPES:
                    await self._requeue(conn, row["id"], retry=False)
                    out["requeued"].append(row["id"])
                else:
                    await self._settle(conn, row["id"], None,
                                       JobError(errors.BUILD_JOB, reason, {"type": row["type"]}))
                    out["failed"].append(row["id"])
            if rows:
                await self._changed()
        if rows:
            for job_id in out["failed"]:
                self._cancel_events.pop(job_id, None)
        return out

    async def recover(self) -> dict[str, Any]:
        """Crash recovery at start: settle jobs the in-process executor was running when the process
        died (reason "interrupted"; remote workers' jobs keep running) and remove half-written files
        under ``<state_dir>/tmp``. Nothing else."""
        out: dict[str, Any] = await self.release_running(errors.REASON_INTERRUPTED, owner=self.local_owner)
        # Jobs of remote workers were not interrupted: the workers still run them and report back with
        # their tokens. Their heartbeat clock restarts now, so downtime does not count against them.
        rows = await self.db.write(
            "UPDATE jobs SET heartbeat = ? WHERE status = 'running' AND owner IS DISTINCT FROM ?"
            " AND owner NOT LIKE 'local:%' RETURNING id", (_now(), self.local_owner))
        out["remote_kept"] = [r[0] for r in rows]
        removed = 0
        if self.state_dir is not None:
            removed = await asyncio.to_thread(_empty_dir, self.state_dir / "tmp")
        out["tmp_removed"] = removed
        if out["requeued"] or out["failed"] or removed:
            log.warning("crash recovery", **out)
        return out

    # -- delete ---------------------------------------------------------------------------------

    async def delete(self, job_id: str) -> None:
        """Delete a job that is not running and nothing depends on, with its artifacts
        (``<state_dir>/results/<id>``), and its dependencies no other job needs (as upstream)."""
        deleted: builtins.list[str] = []
        async with self.db.transaction() as conn:
            async with conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise JobNotFound(job_id)
            if row["status"] == JobStatus.RUNNING:
                raise JobInUse(f"job {job_id} is running")
            async with conn.execute(
                "SELECT 1 FROM job_dependencies WHERE dependency_id = ? LIMIT 1", (job_id,)) as cur:
                if await cur.fetchone():
                    raise JobInUse(f"other jobs depend on job {job_id}")
            todo = [job_id]
            while todo:
                current = todo.pop()
                async with conn.execute(
                    "SELECT DISTINCT dependency_id FROM job_dependencies WHERE job_id = ?", (current,)) as cur:
                    deps = [r[0] for r in await cur.fetchall()]
                await conn.execute("DELETE FROM jobs WHERE id = ?", (current,))
                deleted.append(current)
                for dep in deps:
                    async with conn.execute(
                        "SELECT (SELECT count(*) FROM job_dependencies WHERE dependency_id = ?),"
                        " (SELECT status FROM jobs WHERE id = ?)", (dep, dep)) as cur:
                        users, status = await cur.fetchone() or (0, None)
                    if users == 0 and status is not None and status != JobStatus.RUNNING:
                        todo.append(dep)
        for jid in deleted:
            self._cancel_events.pop(jid, None)
        if self.results_dir is not None:
            results = self.results_dir
            await asyncio.to_thread(_remove_all, [results / jid for jid in deleted])


def _remove_all(paths: builtins.list[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def _empty_dir(path: Path) -> int:
    """Remove everything inside ``path`` (not ``path`` itself); returns how many entries went."""
    if not path.is_dir():
        return 0
    count = 0
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        count += 1
    return count
