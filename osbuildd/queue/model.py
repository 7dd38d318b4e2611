"""Job records: what the job store hands out. Serialisation lives here, queue logic in jobs.py."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from .dialect import SQLITE, Dialect


class Row(Protocol):
    """A database row read by column name (``sqlite3.Row``, ``asyncpg.Record``, a dict)."""

    def __getitem__(self, key: str, /) -> Any: ...


class JobStatus(StrEnum):
    PENDING = "pending"    # waiting for its dependencies to finish, or for a taker
    RUNNING = "running"    # handed to exactly one taker, who holds its token
    FINISHED = "finished"  # done; failed when ``error`` is set
    CANCELED = "canceled"  # canceled before it finished (running takers are told via the token)


@dataclass
class JobError:
    """Upstream's worker ``clienterrors.Error``: ``{"id", "reason", "details"}``."""

    id: int
    reason: str
    details: Any = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "reason": self.reason}
        if self.details is not None:
            out["details"] = self.details
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobError:
        return cls(id=int(data["id"]), reason=str(data.get("reason", "")), details=data.get("details"))


@dataclass
class Job:
    id: str
    type: str
    args: dict[str, Any]
    dependencies: list[str]
    channel: str
    status: JobStatus
    result: dict[str, Any] | None
    error: JobError | None
    queued_at: float
    started_at: float | None
    finished_at: float | None
    token: str | None
    heartbeat: float | None
    retries: int
    progress: dict[str, Any] | None
    owner: str | None = field(default=None)  # "local" for the in-process executor, else the worker

    @classmethod
    def from_row(cls, row: Row, prefix: str = "") -> Job:
        """A Job from a row selected with :func:`job_select_columns` (same ``prefix``): the public read
        interface for code that joins job rows into its own query (the compose store)."""
        return job_from_row(row, prefix)

    @property
    def failed(self) -> bool:
        return self.status == JobStatus.FINISHED and self.error is not None

    @property
    def done(self) -> bool:
        return self.status in (JobStatus.FINISHED, JobStatus.CANCELED)


@dataclass
class Dequeued:
    job: Job
    token: str
    dynamic_args: list[dict[str, Any]]  # results of the job's dependencies, in dependency order


# Column list every job read uses; dependencies come back as a JSON array in position order.
_JOB_FIELDS = ("id", "type", "args", "channel", "status", "result", "error", "queued_at", "started_at",
               "finished_at", "token", "heartbeat", "retries", "progress", "owner")


def job_columns(table: str = "jobs", prefix: str = "", dialect: Dialect = SQLITE) -> str:
    """The job columns of ``table`` (a table name or alias), each named ``prefix`` + field, so one
    query can join several job rows (e.g. a compose with its build, depsolve and manifest jobs)."""
    cols = [f"{table}.{f} AS {prefix}{f}" if prefix else f"{table}.{f}" for f in _JOB_FIELDS]
    if dialect.name == "sqlite":   # its aggregates keep the order of an ordered subquery
        cols.append("(SELECT json_group_array(dependency_id) FROM"
                    f" (SELECT dependency_id FROM job_dependencies WHERE job_id = {table}.id ORDER BY position))"
                    f" AS {prefix}deps")
    else:
        cols.append(f"(SELECT {dialect.json_array_agg('dependency_id', 'position')} FROM job_dependencies"
                    f" WHERE job_id = {table}.id) AS {prefix}deps")
    return ", ".join(cols)


def job_select_columns(alias: str, prefix: str = "", dialect: Dialect = SQLITE) -> str:
    """The public read interface to the ``jobs`` table for other owners' queries: the columns of the
    job row aliased ``alias``, named ``prefix`` + field, to be turned into a Job by
    :meth:`Job.from_row` with the same ``prefix``, in the SQL ``dialect`` of the database
    (``db.dialect``). Reading only: the job store alone writes jobs."""
    return job_columns(alias, prefix, dialect)


JOB_COLUMNS = job_columns()


@dataclass
class GraphJob:
    """One job of a graph given to :meth:`JobStore.enqueue_graph`: fresh (``status`` "pending") or
    pre-settled (Weldr ?test=1|2, depsolve/manifest done in the request) with its result, error and
    when it really ran (default: the enqueue's time). ``id`` empty: one is made up."""

    type: str
    args: dict[str, Any]
    dependencies: list[str]
    id: str = ""
    status: str = "pending"
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def job_from_row(row: Row, prefix: str = "") -> Job:
    """A Job from a row of ``job_columns(..., prefix)``."""
    def col(name: str) -> Any:
        return row[prefix + name]

    error = _loads(col("error"))
    return Job(
        id=col("id"),
        type=col("type"),
        args=_loads(col("args")) or {},
        dependencies=_loads(col("deps")) or [],
        channel=col("channel"),
        status=JobStatus(col("status")),
        result=_loads(col("result")),
        error=JobError.from_dict(error) if error else None,
        queued_at=col("queued_at"),
        started_at=col("started_at"),
        finished_at=col("finished_at"),
        token=col("token"),
        heartbeat=col("heartbeat"),
        retries=col("retries"),
        progress=_loads(col("progress")),
        owner=col("owner"),
    )
