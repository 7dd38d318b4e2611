"""SQL of the compose service: a compose and its job graph are written in one transaction."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from osbuildd.queue.model import Job, dumps, job_columns, job_from_row


@dataclass
class GraphJob:
    type: str
    args: dict
    dependencies: list[str]
    id: str = ""
    # a pre-settled job (Weldr ?test=1|2, depsolve/manifest done in the request): status, result,
    # error, and when it really ran (default: the insert's time)
    status: str = "pending"
    result: dict | None = None
    error: dict | None = None
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None


COMPOSE_COLUMNS = ("id, depsolve_job, manifest_job, request, blueprint_name, blueprint_version, image_type,"
                   " distro, arch, origin, channel, created, size, image_filename, fake, build_pgid")


async def insert_graph(db: Any, jobs: list[GraphJob], compose: dict[str, Any], channel: str) -> list[str]:
    """Insert ``jobs`` (dependencies before dependents) and the ``composes`` row in ONE transaction.

    The job store's ``enqueue`` commits each job on its own; a crash between two of them would leave
    a half graph without a compose. The rows written here are the ones ``JobStore.enqueue`` writes
    for fresh jobs (whose dependencies are all new, so none can have failed yet).
    """
    now = time.time()
    for j in jobs:
        j.id = j.id or str(uuid.uuid4())
    by_id = {j.id: j for j in jobs}
    async with db.transaction() as conn:
        for j in jobs:
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
        row = dict(compose)
        row.setdefault("created", now)
        cols = ", ".join(row)
        await conn.execute(f"INSERT INTO composes ({cols}) VALUES ({', '.join('?' * len(row))})",
                           [json.dumps(v) if isinstance(v, dict | list) else v for v in row.values()])
    return [j.id for j in jobs]


async def fetch_rows(db: Any, where: str = "1", params: tuple = ()) -> list[dict[str, Any]]:
    async with db.conn.execute(
            f"SELECT {COMPOSE_COLUMNS} FROM composes WHERE {where} ORDER BY created, id", params) as cur:
        return [dict(r) for r in await cur.fetchall()]


# The build job's id is the compose id; depsolve/manifest are NULL for fake composes (LEFT JOIN).
_WITH_JOBS = (
    "SELECT " + ", ".join(f"c.{col.strip()}" for col in COMPOSE_COLUMNS.split(",")) + ", "
    + job_columns("b", "b_") + ", " + job_columns("d", "d_") + ", " + job_columns("m", "m_")
    + " FROM composes c JOIN jobs b ON b.id = c.id"
    " LEFT JOIN jobs d ON d.id = c.depsolve_job LEFT JOIN jobs m ON m.id = c.manifest_job")


@dataclass
class ComposeRows:
    """A compose row with its jobs: ``build`` (the osbuild job), ``depsolve``/``manifest`` or None."""
    row: dict[str, Any]
    build: Job
    depsolve: Job | None
    manifest: Job | None


async def fetch_with_jobs(db: Any, where: str = "1", params: tuple = ()) -> list[ComposeRows]:
    """Composes (``where`` on the ``composes`` table, alias ``c``) with their jobs, in ONE query
    instead of a job lookup per compose. A compose whose build job is gone is left out."""
    async with db.conn.execute(f"{_WITH_JOBS} WHERE {where} ORDER BY c.created, c.id", params) as cur:
        rows = await cur.fetchall()
    cols = [col.strip() for col in COMPOSE_COLUMNS.split(",")]
    return [ComposeRows({k: r[k] for k in cols}, job_from_row(r, "b_"),
                        job_from_row(r, "d_") if r["d_id"] is not None else None,
                        job_from_row(r, "m_") if r["m_id"] is not None else None) for r in rows]


async def fetch_unsettled(db: Any, ids: list[str]) -> list[ComposeRows]:
    """Composes whose build job is pending or running, plus the ones named in ``ids`` (whatever their
    state): the part of a listing the compose service cannot answer from its cache."""
    # a subquery of ids, not an OR across the join: both halves use an index (jobs.status, json_each)
    return await fetch_with_jobs(db, "c.id IN (SELECT id FROM jobs WHERE status IN ('pending', 'running')"
                                 " UNION SELECT value FROM json_each(?))", (json.dumps(ids),))


async def counts(db: Any) -> tuple[int, int]:
    """(composes rows, job rows ever deleted): two cheap figures that move when rows appear or go.
    ``sqlite_sequence`` keeps the highest ``jobs.seq`` ever given (AUTOINCREMENT)."""
    async with db.conn.execute(
            "SELECT (SELECT count(*) FROM composes),"
            " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0)"
            " - (SELECT count(*) FROM jobs)") as cur:
        row = await cur.fetchone()
    return int(row[0]), int(row[1])


async def set_pgid(db: Any, compose_id: str, pgid: int | None) -> None:
    async with db.transaction() as conn:
        await conn.execute("UPDATE composes SET build_pgid = ? WHERE id = ?", (pgid, compose_id))


async def leftover_pgids(db: Any) -> list[tuple[str, int]]:
    async with db.conn.execute(
            "SELECT id, build_pgid FROM composes WHERE build_pgid IS NOT NULL") as cur:
        return [(r[0], int(r[1])) for r in await cur.fetchall()]


async def delete_row(db: Any, compose_id: str) -> None:
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM composes WHERE id = ?", (compose_id,))
