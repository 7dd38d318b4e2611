"""``POST /jobs`` (a worker takes a job), ``GET /jobs/{token}`` (its heartbeat: canceled?) and
``PATCH /jobs/{token}`` (a partial update, or the result that settles the job).

``POST /jobs`` waits for a job of the asked types in the caller's channel up to ``[worker_api]
request_job_timeout`` (0: until one comes; then 204). It tries the job store once per queue change
(the store's ``changed()`` event: woken by enqueues, never polled); waiting workers that want the same
types in the same channel try one after another, each first reading whether a job is ready, so one
enqueue costs one take and reads, not a write per waiting worker. It stops waiting as soon as the
client went away, so a worker that left takes nothing; a job taken while its answer could not be
written is put back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from typing import Any

import structlog
from aiohttp import web

from osbuildd.compose import remote
from osbuildd.queue import Dequeued, JobNotRunning, JobStore, TokenNotFound
from osbuildd.queue.workers import requeue_untaken

from .context import CLOSING, TAKERS, artifacts_tmp, base, channel, parse_uuid, running_job, services
from .errors import (
    INVALID_JOB_TYPE,
    JOB_NOT_FOUND,
    JOB_NOT_RUNNING,
    MALFORMED_JOB_ID,
    MALFORMED_JOB_TOKEN,
    MALFORMED_WORKER_ID,
    WorkerError,
)
from .validation import json_body

log = structlog.get_logger("osbuildd.worker_api")
NIL = "00000000-0000-0000-0000-000000000000"
REMOTE_OWNER = "remote"     # the owner of jobs taken by a worker that did not register
DISCONNECT_CHECK = 1.0      # how often a waiting request looks whether its client is there (and the daemon)


def _types(body: dict[str, Any]) -> list[str]:
    arch = str(body["arch"])
    out: list[str] = []
    for t in body["types"]:
        if t == "manifest-id-only":   # the composer does its manifests itself (upstream)
            raise WorkerError(INVALID_JOB_TYPE, "manifest-id-only jobs are not handed to workers")
        name = f"osbuild:{arch}" if t == "osbuild" else str(t)
        if name not in out:
            out.append(name)
    if not out:
        raise WorkerError(INVALID_JOB_TYPE, "no job type asked for")
    return out


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _try_once(jobs: JobStore, types: list[str], channels: list[str], owner: str) -> Dequeued | None:
    """One dequeue attempt; a job taken by an attempt whose request was cancelled meanwhile (the
    daemon stopping) goes back to the queue."""
    attempt = asyncio.ensure_future(jobs.dequeue(types, channels=channels, timeout=0, owner=owner))
    try:
        return await asyncio.shield(attempt)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            taken = await attempt
            if taken is not None:
                await requeue_untaken(jobs, taken.token)
        raise


async def _try_in_turn(request: web.Request, types: list[str], channels: list[str], owner: str) -> Dequeued | None:
    """One attempt, in turn with the other waiters for the same jobs; only when a job is ready."""
    jobs = services(request).jobs
    takers = request.app[TAKERS]
    key = (tuple(types), tuple(channels))
    lock = takers.get(key)
    if lock is None:
        lock = takers[key] = asyncio.Lock()
    async with lock:
        if not await jobs.has_ready(types, channels):
            return None
        return await _try_once(jobs, types, channels, owner)


async def _take(request: web.Request, types: list[str], channels: list[str], owner: str) -> Dequeued | None:
    """A job taken for the caller; None on timeout, when the client went away or the daemon stops."""
    jobs = services(request).jobs
    closing = request.app[CLOSING]
    timeout = services(request).config.worker_api.request_job_timeout or None
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while True:
        changed = jobs.changed()
        dq = await _try_in_turn(request, types, channels, owner)
        if dq is not None:
            return dq
        while not changed.is_set():
            if _gone(request) or closing.is_set():
                return None
            wait = DISCONNECT_CHECK if deadline is None else min(DISCONNECT_CHECK, deadline - loop.time())
            if wait <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), wait)


async def _answer(request: web.Request, dq: Dequeued) -> dict[str, Any]:
    svc = services(request)
    b = base(request)
    args = await asyncio.to_thread(remote.worker_args, dq.job, dq.dynamic_args, svc.config.state_dir)
    await asyncio.to_thread(artifacts_tmp(svc, dq.token).mkdir, parents=True, exist_ok=True)
    out: dict[str, Any] = {
        "href": f"{b}/jobs", "id": dq.job.id, "kind": "RequestJob", "type": dq.job.type.partition(":")[0],
        "location": f"{b}/jobs/{dq.token}", "artifact_location": f"{b}/jobs/{dq.token}/artifacts/",
    }
    if args:
        out["args"] = args
    if dq.dynamic_args:
        out["dynamic_args"] = remote.worker_dynamic_args(dq.job, dq.dynamic_args)
    return out


async def request_job(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    types = _types(body)
    owner = REMOTE_OWNER
    if body.get("worker_id") is not None:
        owner = parse_uuid(str(body["worker_id"]), MALFORMED_WORKER_ID, "worker id")
    dq = await _take(request, types, [channel(request)], owner)
    if dq is None:
        return web.json_response({"href": f"{base(request)}/jobs", "id": NIL, "kind": "RequestJob"}, status=204)
    try:
        answer = await _answer(request, dq)
        if _gone(request):
            raise ConnectionResetError("the worker went away")
        resp = web.json_response(answer, status=201)
        await resp.prepare(request)
        await resp.write_eof()
    except BaseException:
        # the worker never got it: back to the queue, for the next taker
        with contextlib.suppress(Exception):
            await asyncio.shield(requeue_untaken(services(request).jobs, dq.token))
        log.warning("job handed out but not delivered: requeued", job_id=dq.job.id)
        raise
    log.info("job taken by a worker", job_id=dq.job.id, type=dq.job.type, owner=owner)
    return resp


async def get_job(request: web.Request) -> web.Response:
    token = parse_uuid(request.match_info["token"], MALFORMED_JOB_TOKEN)
    try:
        canceled = await services(request).jobs.heartbeat(token)
    except TokenNotFound:
        raise WorkerError(JOB_NOT_FOUND, f"no job has the token {token}") from None
    if canceled:   # nothing more will be uploaded for it
        await asyncio.to_thread(shutil.rmtree, artifacts_tmp(services(request), token), True)
    return web.json_response({"href": f"{base(request)}/jobs/{token}", "id": token, "kind": "JobStatus",
                              "canceled": canceled})


async def update_job(request: web.Request) -> web.Response:
    token = parse_uuid(request.match_info["token"], MALFORMED_JOB_ID)
    body = await json_body(request)
    svc = services(request)
    job = await running_job(request, token)
    try:
        if "result" in body:
            await remote.finish(svc.jobs, svc.config.results_dir, job, token, body["result"])
            refresh = getattr(svc.compose, "refresh", None)
            if refresh is not None:
                refresh(job.id)
            log.info("job finished by a worker", job_id=job.id, type=job.type)
        else:
            await remote.apply_partial(svc.jobs, svc.config.results_dir, job, body["partial"])
    except TokenNotFound:
        raise WorkerError(JOB_NOT_FOUND, f"no job has the token {token}") from None
    except JobNotRunning as exc:
        raise WorkerError(JOB_NOT_RUNNING, exc.reason) from None
    return web.json_response({"href": f"{base(request)}/jobs/{token}", "id": token, "kind": "UpdateJobResponse"})


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_post(f"{prefix}/jobs", request_job)
    app.router.add_get(f"{prefix}/jobs/{{token}}", get_job)
    app.router.add_patch(f"{prefix}/jobs/{{token}}", update_job)
