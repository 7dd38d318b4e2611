"""The worker process: its state dir, start-up cleanup, registration and the job loops.

Loop 1 takes ``osbuild`` jobs for the worker's architecture, one at a time; loop 2 the compute
jobs (depsolve, search-packages). Both long-poll ``POST /jobs`` and ask again at once after a 204.
``POST /workers/{id}/status`` goes every minute (a composer that forgot the worker, error 18, gets
a new registration). SIGTERM/SIGINT: no more jobs, a running build is stopped (its job is requeued
by the composer once its heartbeat stops), exit 0. Results not yet delivered stay in
``<state>/pending`` and go out at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from osbuildd import statedir
from osbuildd.config import BuilderConfig, Config
from osbuildd.runner import cleanup_under, dead_scratch_dirs, kill_marked

from .client import UNKNOWN_WORKER, ComposerError, Stopped, Untrusted, WorkerClient
from .config import WorkerSettings
from .jobs import BuildJob, Pending, deliver, run_compute, token_of

log = structlog.get_logger("osbuildd.worker")

BUILD_TYPES = ["osbuild"]
COMPUTE_TYPES = ["depsolve", "search-packages"]
ERROR_PAUSE = 5.0   # after the composer refused a job request


class Fatal(Exception):
    """The worker cannot go on (refused registration, TLS trust): one line, exit 1."""


def worker_config(settings: WorkerSettings) -> Config:
    """osbuildd's Config for the shared build job and the depsolve handlers: the worker's state dir
    (cache/, tmp/), its osbuild."""
    return Config(state_dir=settings.state_dir, builder=BuilderConfig(osbuild=settings.osbuild, local_executor=False))


async def recover(settings: WorkerSettings, pending: Pending) -> dict[str, Any]:
    """What a killed worker left: its engine processes, the mounts and loop devices under its
    store's dead build dirs and its tmp dir, tmp files, and build dirs whose result is not waiting for
    delivery. In a --store outside the state dir only what no running engine holds: it may be shared."""
    state = settings.state_dir
    killed = await kill_marked(state)
    store = settings.store_dir
    if store.is_relative_to(state):   # its own store: nobody else's builds can be in it
        roots = [store]
    else:                             # --store, maybe shared: only what no running engine holds
        roots = await asyncio.to_thread(dead_scratch_dirs, store)
    cleaned = await cleanup_under([*roots, state / "tmp", state / "builds"])
    keep = {entry.get("dir") for _, entry in await asyncio.to_thread(pending.load)}

    def sweep() -> list[str]:
        gone: list[str] = []
        for parent in (state / "tmp", state / "builds"):
            if not parent.is_dir():
                continue
            for child in parent.iterdir():
                if str(child) in keep:
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
                gone.append(child.name)
        return gone

    removed = await asyncio.to_thread(sweep)
    if killed or cleaned["unmounted"] or cleaned["detached"] or removed:
        log.warning("leftovers of a previous run removed", process_groups=killed, removed=removed, **cleaned)
    return {"killed": killed, "removed": removed, **cleaned}


class Worker:
    def __init__(self, settings: WorkerSettings, client: WorkerClient, stop: asyncio.Event) -> None:
        self.settings = settings
        self.client = client
        self.stop = stop
        self.config = worker_config(settings)
        self.pending = Pending(settings.state_dir)
        self.worker_id = ""
        self._deliveries: set[asyncio.Task[None]] = set()

    def credentials(self) -> Any:
        from osbuildd import upload
        return upload.Credentials.load(None, worker_config=self.settings.config_file)

    async def register(self) -> None:
        try:
            self.worker_id = await self.client.register(self.settings.arch)
        except ComposerError as exc:
            raise Fatal(f"registration refused: {exc}") from None
        log.info("registered", worker_id=self.worker_id, composer=self.client.root, arch=self.settings.arch)

    async def status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.status_interval)
            try:
                await self.client.worker_status(self.worker_id)
            except ComposerError as exc:
                if exc.error_id != UNKNOWN_WORKER:
                    log.warning("worker status refused", error=str(exc))
                    continue
                log.warning("the composer forgot this worker: registering again", worker_id=self.worker_id)
                with contextlib.suppress(Fatal):
                    await self.register()

    async def _loop(self, types: list[str], handle: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        while not self.stop.is_set():
            try:
                job = await self.client.request_job(types, self.settings.arch, self.worker_id or None)
            except ComposerError as exc:
                log.error("job request refused", types=types, error=str(exc))
                await asyncio.sleep(ERROR_PAUSE)
                continue
            if job is None:
                continue
            try:
                await handle(job)
            except (Stopped, asyncio.CancelledError):
                raise
            except Exception:   # a bug in one job must not end the worker
                log.exception("job failed in the worker", job_id=job.get("id"), type=job.get("type"))

    async def build(self, job: dict[str, Any]) -> None:
        await BuildJob(self.settings, self.config, self.client, self.pending, job, self.credentials).run()

    async def compute(self, job: dict[str, Any]) -> None:
        log.info("compute job taken", job_id=job.get("id"), type=job.get("type"))
        result = await run_compute(self.config, job)
        location = job["location"]
        entry: dict[str, Any] = {"location": location, "update": {"result": result}, "dir": None}
        await asyncio.to_thread(self.pending.save, token_of(location), entry)
        await deliver(self.client, self.pending, token_of(location), entry)

    def deliver_pending(self) -> None:
        for token, entry in self.pending.load():
            log.info("delivering a result kept from before", token=token)
            task = asyncio.create_task(deliver(self.client, self.pending, token, entry))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def run(self) -> None:
        await recover(self.settings, self.pending)
        self.deliver_pending()
        await self.register()
        tasks = [asyncio.create_task(self.status_loop(), name="status"),
                 asyncio.create_task(self._loop(BUILD_TYPES, self.build), name="build"),
                 asyncio.create_task(self._loop(COMPUTE_TYPES, self.compute), name="compute")]
        stopper = asyncio.create_task(self.stop.wait())
        try:
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stopper and not t.cancelled() and t.exception() is not None:
                    exc = t.exception()
                    if not isinstance(exc, Stopped):
                        raise exc  # type: ignore[misc]
        finally:
            log.info("stopping")
            for t in [*tasks, stopper, *self._deliveries]:
                t.cancel()
            for t in [*tasks, stopper, *list(self._deliveries)]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t


async def serve(settings: WorkerSettings, tls: ssl.SSLContext | None) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with WorkerClient(settings, stop, tls) as client:
        worker = Worker(settings, client, stop)
        try:
            await worker.run()
        except Stopped:
            pass
        except Untrusted as exc:
            raise Fatal(f"composer certificate not trusted: {exc}") from None
    return 0


def run(settings: WorkerSettings, tls: ssl.SSLContext | None) -> int:
    """Hold the state dir (StateDirBusy when another process does) and run until SIGTERM."""
    lock = statedir.acquire(settings.state_dir)
    try:
        for sub in ("tmp", "builds", "pending"):
            Path(settings.state_dir / sub).mkdir(parents=True, exist_ok=True)
        return asyncio.run(serve(settings, tls))
    finally:
        lock.release()
