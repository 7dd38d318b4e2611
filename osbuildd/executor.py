"""The local executor: the daemon takes jobs from its own queue, in-process.

Depsolve and manifest jobs have workers of their own (they never wait behind a build); builds run
at most ``[builder] max_parallel`` at once. A build job is ``osbuildd.buildjob`` (shared with
``osbuildd worker``): osbuild, the artifact moved atomically from ``<state_dir>/tmp`` into
``results/<id>/``, the upload targets; here the outcome finishes the queue job.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from osbuildd import clone, sealing
from osbuildd.buildjob import BuildHooks, BuildPlaces, BuildRun, host_os
from osbuildd.compose import failure, store
from osbuildd.compose.handlers import run_depsolve, run_manifest
from osbuildd.compose.service import DEPSOLVE, MANIFEST, build_type, host_arch
from osbuildd.prefetch import Prefetcher
from osbuildd.queue import Dequeued, Job, JobError, JobNotFound, JobStatus, errors
from osbuildd.runner import cleanup_under, kill_marked
from osbuildd.runner.cleanup import kill_group, processes_marked
from osbuildd.services import Services

log = structlog.get_logger("osbuildd.executor")

# after a queue change, the prefetch scan waits this long: a build that has a free slot is taken by
# then (and fetches its own sources), so only builds that really wait get a prefetch
PREFETCH_SETTLE = 0.5


async def start_local(services: Services, *, start: bool | None = None) -> LocalExecutor:
    """The local executor on ``services``, after removing what a crashed build left behind (always:
    even when builds are left to remote workers), closed by ``services.close()`` first.

    ``start`` None (the daemon): the composer's own jobs always run here (manifest-id-only, as
    upstream's composer does them itself, and the AMI copy/share jobs); depsolve and builds (and
    the prefetch) only with ``[builder] local_executor`` (else remote workers take them).
    True: every loop whatever the config (``osbuildd build``); False: none (tests move the jobs)."""
    executor = LocalExecutor(services)
    await executor.recover()
    if start is not False:
        executor.start(builds=services.config.builder.local_executor if start is None else True)
        services.executor = executor
    return executor


Handler = Callable[[Dequeued], Awaitable[None]]


class LocalExecutor:
    def __init__(self, services: Services, *, depsolve_workers: int = 2) -> None:
        self.services = services
        self.config = services.config
        self.jobs = services.jobs
        self.db = services.db
        self.depsolve_workers = depsolve_workers
        self.max_parallel = max(1, self.config.builder.max_parallel)
        self._tasks: list[asyncio.Task[None]] = []
        self._running: dict[str, str] = {}   # build job id -> token
        self._progress: dict[str, dict[str, Any]] = {}  # build job id -> its last progress (which stage runs)
        self._closing = False
        self.prefetcher: Prefetcher | None = None   # [builder] prefetch: sources of waiting builds

    # -- lifecycle -------------------------------------------------------------------------------

    async def recover(self) -> dict[str, Any]:
        """After a crash: the queue already failed the builds ("interrupted"); here the processes,
        mounts and loop devices such a build may have left go."""
        state = self.config.state_dir
        killed: list[int] = []
        leftover = await store.leftover_pgids(self.db)
        for cid, pgid in leftover:
            marked = await asyncio.to_thread(processes_marked, state, cid)
            if marked and pgid in marked.values():
                kill_group(pgid, signal.SIGKILL)
                killed.append(pgid)
            await store.set_pgid(self.db, cid, None)
        killed += await kill_marked(state)   # anything else of ours still running
        if not leftover and not killed:
            # a clean previous stop: the store may be shared with builds of other processes,
            # whose mounts and loop devices are not ours to remove
            return {"killed": [], "unmounted": [], "detached": []}
        cleaned = await cleanup_under([self.config.store_dir, self.config.tmp_dir])
        if killed or cleaned["unmounted"] or cleaned["detached"]:
            log.warning("build leftovers removed", process_groups=sorted(set(killed)), **cleaned)
        return {"killed": sorted(set(killed)), **cleaned}

    def start(self, *, builds: bool = True) -> None:
        """The manifest and AMI copy/share loops; with ``builds`` also depsolve, builds and prefetch."""
        self._tasks.append(asyncio.create_task(self._loop([MANIFEST], self._manifest), name="manifest"))
        # AMI copies/shares wait on EC2 for minutes: a loop of their own, never behind a build
        for i in range(2):
            self._tasks.append(asyncio.create_task(self._loop(list(clone.JOB_TYPES), self._clone), name=f"aws-ec2-{i}"))
        if not builds:
            return
        for i in range(self.depsolve_workers):
            self._tasks.append(asyncio.create_task(self._loop([DEPSOLVE], self._depsolve), name=f"depsolve-{i}"))
        for i in range(self.max_parallel):
            self._tasks.append(asyncio.create_task(
                self._loop([build_type(host_arch())], self._build), name=f"build-{i}"))
        if self.config.builder.prefetch:
            self.prefetcher = Prefetcher(self.config.store_dir, self.services.log)
            self._tasks.append(asyncio.create_task(self._prefetch_loop(), name="prefetch"))

    async def close(self) -> None:
        """Stop taking jobs; running builds are stopped and end FAILED "daemon shutting down"."""
        self._closing = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        if self.prefetcher is not None:
            await self.prefetcher.close()

    async def _loop(self, types: list[str], handler: Handler) -> None:
        while not self._closing:
            dq = await self.jobs.dequeue(types, channels=None)
            if dq is None:
                continue
            try:
                await handler(dq)
            except asyncio.CancelledError:
                # builds end FAILED; depsolve/manifest stay running and are requeued at next start
                if dq.job.type.startswith("osbuild"):
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self._fail_shutdown(dq))
                raise
            except Exception as exc:  # a bug in a handler must fail the job, not the executor
                log.exception("job handler failed", job_id=dq.job.id, type=dq.job.type)
                with contextlib.suppress(Exception):
                    await self.jobs.finish(dq.token, None, JobError(
                        errors.BUILD_JOB if dq.job.type.startswith("osbuild") else errors.MANIFEST_GENERATION,
                        f"internal error: {type(exc).__name__}: {exc}"))
            finally:
                self._progress.pop(dq.job.id, None)   # kept until here: a shutdown's error names the stage

    # -- prefetch ------------------------------------------------------------------------------

    async def _prefetch_loop(self) -> None:
        """Keep one prefetch running per build that waits for a slot with its manifest known, and
        none for a build that started, was canceled or is gone. Reads the queue at each change."""
        seen: set[str] = set()   # pending builds dealt with: prefetch started, or nothing to fetch
        while not self._closing:
            changed = self.jobs.changed()
            try:
                await self._prefetch_scan(seen)
            except Exception:   # a prefetch is an optimisation: never the executor's end
                log.exception("prefetch scan failed")
            await changed.wait()
            await asyncio.sleep(PREFETCH_SETTLE)

    async def _prefetch_scan(self, seen: set[str]) -> None:
        assert self.prefetcher is not None
        pending = await self.jobs.list(status=JobStatus.PENDING, types=[build_type(host_arch())])
        ids = {j.id for j in pending}
        for cid in self.prefetcher.running() - ids:   # started, canceled or deleted meanwhile
            self.prefetcher.cancel(cid)
        seen &= ids
        for job in pending:
            if job.id in seen:
                continue
            ready, manifest = await self._known_manifest(job)
            if not ready:
                continue   # its manifest job has not finished yet: a later change says when
            seen.add(job.id)
            if manifest is not None:
                self.prefetcher.start(job.id, manifest)

    async def _known_manifest(self, job: Job) -> tuple[bool, dict[str, Any] | None]:
        """(whether the build's dependencies are settled, the manifest they produced if any)."""
        manifest = None
        for dep_id in job.dependencies:
            try:
                dep = await self.jobs.get(dep_id)
            except JobNotFound:
                return True, None
            if not dep.done:
                return False, None
            m = (dep.result or {}).get("manifest") if dep.error is None else None
            manifest = m if isinstance(m, dict) else manifest
        return True, manifest

    # -- failures ------------------------------------------------------------------------------

    def _log_path(self, job_id: str) -> Path:
        return self.config.results_dir / job_id / "logs" / "osbuild.log"

    async def _where(self, job_id: str, details: dict[str, Any]) -> dict[str, Any]:
        """``details`` with the stage that ran (from the last progress) and the log's last lines,
        for failures osbuild itself did not describe (cancel, timeout, shutdown)."""
        stage = (self._progress.get(job_id) or {}).get("stage")
        if stage and not details.get("stage"):
            details["stage"] = stage
        if not details.get("output"):
            lines = await asyncio.to_thread(failure.log_tail, self._log_path(job_id))
            if lines:
                details["output"] = "\n".join(lines)
        return details

    async def _note(self, job_id: str, error: JobError) -> None:
        """The failure block at the end of the compose's osbuild log, for anything reading the log."""
        try:
            await asyncio.to_thread(failure.append_block, self._log_path(job_id), error.to_dict())
        except OSError as exc:
            log.warning("cannot append the failure to the build log", compose_id=job_id, error=str(exc))

    async def _fail_shutdown(self, dq: Dequeued) -> None:
        details = await self._where(dq.job.id, {"kind": "shutdown"})
        err = JobError(errors.BUILD_JOB, errors.REASON_SHUTTING_DOWN, details)
        await self._note(dq.job.id, err)
        await self.jobs.finish(dq.token, None, err)

    # -- jobs ------------------------------------------------------------------------------------

    async def _depsolve(self, dq: Dequeued) -> None:
        result, error = await run_depsolve(self.config, dq.job.args)
        await self.jobs.finish(dq.token, result, error)

    async def _manifest(self, dq: Dequeued) -> None:
        result, error = await run_manifest(self.config, dq.job.args, dq.dynamic_args)
        await self.jobs.finish(dq.token, result, error)

    async def _clone(self, dq: Dequeued) -> None:
        result, error = await clone.run(self.config, dq.job, dq.dynamic_args)
        await self.jobs.finish(dq.token, result, error)

    async def _build(self, dq: Dequeued) -> None:
        job = dq.job
        if self.prefetcher is not None:   # the engine fetches what is still missing itself
            self.prefetcher.cancel(job.id)
        self._running[job.id] = dq.token

        async def on_progress(d: dict[str, Any]) -> None:
            self._progress[job.id] = d
            await self.jobs.set_progress(job.id, d)

        async def on_upload_progress(d: dict[str, Any]) -> None:
            await self.jobs.set_progress(job.id, d)

        async def on_start(pgid: int) -> None:
            await store.set_pgid(self.db, job.id, pgid)

        state = self.config.state_dir
        hooks = BuildHooks(
            progress=on_progress, upload_progress=on_upload_progress, started=on_start,
            targets=lambda args: sealing.unseal_targets(args, functools.partial(sealing.Sealer.open, state)))
        # with builds side by side, another build's mounts in the shared store are not ours to remove
        places = BuildPlaces(self.config, self.config.results_dir / job.id, self.config.store_dir,
                             cleanup_store=len(self._running) == 1)
        run = BuildRun(job.id, job.type.partition(":")[2], job.args, dq.dynamic_args[0] if dq.dynamic_args else {},
                       places, hooks, self.jobs.cancel_event(job.id), host=(host_arch(), host_os()))
        try:
            outcome = await run.run()
        finally:
            self._running.pop(job.id, None)
            with contextlib.suppress(Exception):
                await asyncio.shield(store.set_pgid(self.db, job.id, None))
        if outcome.canceled and outcome.error is not None:
            # a canceled job is settled already (the queue ignores its finish): its error, with
            # the stage and last lines, is written onto it here
            await self.jobs.record_canceled_error(job.id, outcome.error.to_dict())
            self.services.compose.refresh(job.id)
        await self.jobs.finish(dq.token, outcome.result, outcome.error)
