"""What the worker API's handlers share: the services, the base path, the caller's channel, ids."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from osbuildd.api import identity
from osbuildd.common.uuids import canonical_uuid
from osbuildd.compose import remote
from osbuildd.queue import Job, JobStatus, TokenNotFound
from osbuildd.queue.workers import WorkerStore
from osbuildd.services import Services

from .errors import JOB_NOT_FOUND, JOB_NOT_RUNNING, WorkerError

SERVICES = web.AppKey("worker_services", Services)
BASE = web.AppKey("worker_base", str)
WORKERS = web.AppKey("worker_store", WorkerStore)
CLOSING = web.AppKey("worker_closing", asyncio.Event)   # set at shutdown: long-polls answer 204
# one lock per (job types, channel): waiting workers that want the same jobs try one after another
TAKERS = web.AppKey("worker_takers", dict)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def base(request: web.Request) -> str:
    return request.app[BASE]


def workers(request: web.Request) -> WorkerStore:
    return request.app[WORKERS]


def channel(request: web.Request) -> str:
    """The job channel of the caller: ``org-<tenant>`` with JWT, else "" (as upstream)."""
    return identity.of(request).new_channel


def parse_uuid(raw: str, error_id: int, what: str = "job token") -> str:
    """``raw`` as a canonical UUID, else the WorkerError ``error_id`` (7, 8 or 17 as upstream)."""
    canonical = canonical_uuid(raw)
    if canonical is None:
        raise WorkerError(error_id, f"{what} {raw!r} is not a UUID")
    return canonical


def artifacts_tmp(services: Services, token: str | None = None) -> Path:
    """``<results_dir>/.uploads[/<token>]`` (osbuildd.compose.remote.artifacts_tmp)."""
    return remote.artifacts_tmp(services.config.results_dir, token)


async def running_job(request: web.Request, token: str) -> Job:
    """The running job of ``token``: 404 id 5 when no job has it, 400 id 6 when that job is not
    running (finished, canceled): a worker acts only on the job it holds, while it holds it."""
    try:
        job = await services(request).jobs.get_by_token(token)
    except TokenNotFound:
        raise WorkerError(JOB_NOT_FOUND, f"no job has the token {token}") from None
    if job.status != JobStatus.RUNNING:
        raise WorkerError(JOB_NOT_RUNNING, f"job {job.id} is {job.status}")
    return job
