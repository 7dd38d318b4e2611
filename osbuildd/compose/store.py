"""SQL of the compose service: a compose and its job graph are written in one transaction.

The same SQL runs on SQLite and PostgreSQL (``db.dialect`` for what differs). Every write of
``composes``/``compose_groups`` also notifies ``DATA_CHANNEL`` in its transaction: the caches of every
daemon on a shared PostgreSQL key on the data version, which moves on each notification received."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from osbuildd.queue import Database, GraphJob, Job, JobStore, job_select_columns
from osbuildd.queue.db import DATA_CHANNEL
from osbuildd.queue.dialect import Dialect

__all__ = ["COMPOSE_COLUMNS", "ComposeRows", "GraphJob", "counts", "delete_row", "fetch_rows", "fetch_unsettled",
           "fetch_with_jobs", "group_mark", "group_rows", "insert_graph", "insert_graphs", "leftover_pgids", "set_pgid"]


# the DATA_CHANNEL payload of compose writes (readers only need "something changed")
NOTIFY_PAYLOAD = "composes"

COMPOSE_COLUMNS = ("id, depsolve_job, manifest_job, request, blueprint_name, blueprint_version, image_type,"
                   " distro, arch, origin, channel, created, size, image_filename, fake, build_pgid")


async def insert_graph(db: Database, jobs: JobStore, graph: list[GraphJob], compose: dict[str, Any],
                       channel: str) -> list[str]:
    """Enqueue ``graph`` (dependencies before dependents) with the job store and insert the
    ``composes`` row, in ONE transaction: a crash can leave neither a half graph nor a compose
    without its jobs. The job store wakes its dequeuers once it committed."""
    return (await insert_graphs(db, jobs, [(graph, compose)], channel))[0]


async def insert_graphs(db: Database, jobs: JobStore, composes: Sequence[tuple[list[GraphJob], dict[str, Any]]],
                        channel: str, *, group: bool = False) -> list[list[str]]:
    """Several composes (each a graph and its ``composes`` row) in ONE transaction; ``group``: they
    are one Cloud compose of several images, recorded in ``compose_groups`` under the first one's id.
    All of them are stored, or none. Returns each graph's job ids."""
    out = []
    async with db.transaction() as conn:
        for graph, compose in composes:
            out.append(await jobs.enqueue_graph(conn, graph, channel))
            row = dict(compose)
            row.setdefault("created", time.time())
            cols = ", ".join(row)
            await conn.execute(f"INSERT INTO composes ({cols}) VALUES ({', '.join('?' * len(row))})",
                               [json.dumps(v) if isinstance(v, dict | list) else v for v in row.values()])
        if group:
            gid = composes[0][1]["id"]
            await conn.executemany("INSERT INTO compose_groups (id, position, compose_id) VALUES (?, ?, ?)",
                                   [(gid, i, c["id"]) for i, (_, c) in enumerate(composes)])
        await db.notify(DATA_CHANNEL, NOTIFY_PAYLOAD)
    return out


async def group_rows(db: Database) -> list[tuple[str, int, str]]:
    """Every (group id, position, compose id) of ``compose_groups``, by group and position."""
    async with db.conn.execute("SELECT id, position, compose_id FROM compose_groups ORDER BY id, position") as cur:
        return [(str(r[0]), int(r[1]), str(r[2])) for r in await cur.fetchall()]


async def group_mark(db: Database) -> tuple[int, int, int]:
    """(rows, highest rowid, sum of rowids) of ``compose_groups``: moves whenever a row comes or goes
    (rowids only grow: no set of rows added and removed keeps all three)."""
    rowid = db.dialect.rowid
    async with db.conn.execute(
            f"SELECT count(*), coalesce(max({rowid}), 0), coalesce(sum({rowid}), 0) FROM compose_groups") as cur:
        row = await cur.fetchone()
    return int(row[0]), int(row[1]), int(row[2])


async def fetch_rows(db: Database, where: str = "TRUE", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    async with db.conn.execute(
            f"SELECT {COMPOSE_COLUMNS} FROM composes WHERE {where} ORDER BY created, id", params) as cur:
        return [dict(r) for r in await cur.fetchall()]


_WITH_JOBS: dict[str, str] = {}


def _with_jobs(dialect: Dialect) -> str:
    """The compose-with-jobs SELECT in ``dialect``. The build job's id is the compose id;
    depsolve/manifest are NULL for fake composes (LEFT JOIN)."""
    sql = _WITH_JOBS.get(dialect.name)
    if sql is None:
        sql = _WITH_JOBS[dialect.name] = (
            "SELECT " + ", ".join(f"c.{col.strip()}" for col in COMPOSE_COLUMNS.split(",")) + ", "
            + ", ".join(job_select_columns(t, f"{t}_", dialect) for t in ("b", "d", "m"))
            + " FROM composes c JOIN jobs b ON b.id = c.id"
            " LEFT JOIN jobs d ON d.id = c.depsolve_job LEFT JOIN jobs m ON m.id = c.manifest_job")
    return sql


@dataclass
class ComposeRows:
    """A compose row with its jobs: ``build`` (the osbuild job), ``depsolve``/``manifest`` or None."""
    row: dict[str, Any]
    build: Job
    depsolve: Job | None
    manifest: Job | None


async def fetch_with_jobs(db: Database, where: str = "TRUE", params: tuple[Any, ...] = ()) -> list[ComposeRows]:
    """Composes (``where`` on the ``composes`` table, alias ``c``) with their jobs, in ONE query
    instead of a job lookup per compose. A compose whose build job is gone is left out."""
    async with db.conn.execute(f"{_with_jobs(db.dialect)} WHERE {where} ORDER BY c.created, c.id", params) as cur:
        rows = await cur.fetchall()
    cols = [col.strip() for col in COMPOSE_COLUMNS.split(",")]
    return [ComposeRows({k: r[k] for k in cols}, Job.from_row(r, "b_"),
                        Job.from_row(r, "d_") if r["d_id"] is not None else None,
                        Job.from_row(r, "m_") if r["m_id"] is not None else None) for r in rows]


# a set of ids as ONE parameter (one prepared statement whatever its size): SQLite's json_each over
# a JSON array, a text[] on PostgreSQL (which has no json_each of a text parameter)
_ID_SET: dict[str, tuple[str, Callable[[list[str]], Any]]] = {
    "sqlite": ("SELECT value FROM json_each(?)", json.dumps),
    "postgresql": ("SELECT unnest(CAST(? AS text[]))", list),
}


async def fetch_unsettled(db: Database, ids: list[str]) -> list[ComposeRows]:
    """Composes whose build job is pending or running, plus the ones named in ``ids`` (whatever their
    state): the part of a listing the compose service cannot answer from its cache."""
    # a subquery of ids, not an OR across the join: both halves use an index (jobs.status, the ids)
    ids_sql, param = _ID_SET[db.dialect.name]
    return await fetch_with_jobs(db, "c.id IN (SELECT id FROM jobs WHERE status IN ('pending', 'running')"
                                 f" UNION {ids_sql})", (param(ids),))


# The highest jobs.seq ever given: SQLite's AUTOINCREMENT keeps it in sqlite_sequence, PostgreSQL in
# the identity column's sequence (values burned by rolled-back inserts count too: a "changed?" figure
# only, an extra full read at worst).
_SEQ_MAX = {
    "sqlite": "coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0)",
    "postgresql": "coalesce(pg_sequence_last_value(pg_get_serial_sequence('jobs', 'seq')::regclass), 0)",
}


async def counts(db: Database) -> tuple[int, int]:
    """(composes rows, job rows ever deleted): two cheap figures that move when rows appear or go."""
    async with db.conn.execute(
            f"SELECT (SELECT count(*) FROM composes), {_SEQ_MAX[db.dialect.name]}"
            " - (SELECT count(*) FROM jobs)") as cur:
        row = await cur.fetchone()
    return int(row[0]), int(row[1])


async def set_pgid(db: Database, compose_id: str, pgid: int | None) -> None:
    # no notification: no listing or status reads build_pgid (only this host's executor does)
    async with db.transaction() as conn:
        await conn.execute("UPDATE composes SET build_pgid = ? WHERE id = ?", (pgid, compose_id))


async def leftover_pgids(db: Database) -> list[tuple[str, int]]:
    async with db.conn.execute(
            "SELECT id, build_pgid FROM composes WHERE build_pgid IS NOT NULL") as cur:
        return [(r[0], int(r[1])) for r in await cur.fetchall()]


async def delete_row(db: Database, compose_id: str) -> None:
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM composes WHERE id = ?", (compose_id,))
        await db.notify(DATA_CHANNEL, NOTIFY_PAYLOAD)
