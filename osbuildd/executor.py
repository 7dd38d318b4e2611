"""The local executor: the daemon takes jobs from its own queue, in-process.

Depsolve and manifest jobs have workers of their own (they never wait behind a build); builds run
at most ``[builder] max_parallel`` at once. A build job runs osbuild, moves the artifact atomically
from ``<state_dir>/tmp`` into ``results/<id>/``, runs the upload targets, and finishes the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from osbuildd import clone, sealing
from osbuildd.common.redact import is_secret_key
from osbuildd.compose import failure, store
from osbuildd.compose.handlers import run_depsolve, run_manifest
from osbuildd.compose.model import LOCAL_TARGETS
from osbuildd.compose.service import DEPSOLVE, MANIFEST, build_type, host_arch
from osbuildd.prefetch import Prefetcher
from osbuildd.queue import Dequeued, Job, JobError, JobNotFound, JobStatus, errors
from osbuildd.runner import OSBuildResult, Progress, cleanup_under, kill_marked, run_osbuild
from osbuildd.runner.cleanup import kill_group, processes_marked
from osbuildd.services import Services

log = structlog.get_logger("osbuildd.executor")

# after a queue change, the prefetch scan waits this long: a build that has a free slot is taken by
# then (and fetches its own sources), so only builds that really wait get a prefetch
PREFETCH_SETTLE = 0.5


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


async def start_local(services: Services, *, start: bool | None = None) -> LocalExecutor:
    """The local executor on ``services``, after removing what a crashed build left behind (always:
    even when builds are left to remote workers). Started, and closed by ``services.close()`` first,
    when ``start`` (default: ``[builder] local_executor``) says so."""
    executor = LocalExecutor(services)
    await executor.recover()
    if services.config.builder.local_executor if start is None else start:
        executor.start()
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

    def start(self) -> None:
        for i in range(self.depsolve_workers):
            self._tasks.append(asyncio.create_task(self._loop([DEPSOLVE], self._depsolve), name=f"depsolve-{i}"))
        self._tasks.append(asyncio.create_task(self._loop([MANIFEST], self._manifest), name="manifest"))
        # AMI copies/shares wait on EC2 for minutes: a loop of their own, never behind a build
        for i in range(2):
            self._tasks.append(asyncio.create_task(self._loop(list(clone.JOB_TYPES), self._clone), name=f"aws-ec2-{i}"))
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

    async def _fail_canceled(self, job_id: str, result: dict[str, Any]) -> None:
        """A canceled job is settled already (the queue ignores its finish): its error, with the
        stage and last lines, is written onto it here."""
        details = await self._where(job_id, {"kind": "canceled"})
        err = JobError(errors.BUILD_JOB, failure.CANCELED_BY_USER, details)
        await self._note(job_id, err)
        await self.jobs.record_canceled_error(job_id, err.to_dict())
        self.services.compose.refresh(job_id)
        await asyncio.to_thread(_write_json, self.config.results_dir / job_id / "result.json",
                                {**result, "canceled": True, "job_error": err.to_dict()})

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
        blog = log.bind(compose_id=job.id)
        mres = dq.dynamic_args[0] if dq.dynamic_args else {}
        manifest = mres.get("manifest")
        if not manifest:
            await self.jobs.finish(dq.token, {"success": False}, JobError(
                errors.EMPTY_MANIFEST, "the manifest job gave no manifest"))
            return
        results = self.config.results_dir / job.id
        logs = results / "logs"
        await asyncio.to_thread(_mkdirs, logs, self.config.tmp_dir)
        await asyncio.to_thread(_write_json, results / "manifest.json", manifest)
        outdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=f"build-{job.id}-",
                                              dir=self.config.tmp_dir))
        cancel = self.jobs.cancel_event(job.id)
        self._running[job.id] = dq.token

        async def on_progress(p: Progress) -> None:
            self._progress[job.id] = d = p.to_dict()
            await self.jobs.set_progress(job.id, d)

        async def on_start(pgid: int) -> None:
            await store.set_pgid(self.db, job.id, pgid)

        # with builds side by side, another build's mounts in the shared store are not ours to remove
        cleanup = [outdir] + ([self.config.store_dir] if len(self._running) == 1 else [])
        stage_timeout = self.config.builder.stage_timeout or None
        blog.info("build started", exports=mres.get("exports"))
        try:
            res = await run_osbuild(
                manifest, osbuild=self.config.builder.osbuild, store=self.config.store_dir, outdir=outdir,
                exports=mres.get("exports") or [], checkpoints=mres.get("checkpoints") or [],
                cache_max_size=self.config.builder.cache_max_size, stage_timeout=stage_timeout,
                on_progress=on_progress, log_dir=logs, cancel=cancel, on_start=on_start,
                state_dir=self.config.state_dir, job_id=job.id, cleanup_paths=cleanup)
            outcome = await self._finish_build(dq, mres, res, outdir, results, blog)
        finally:
            self._running.pop(job.id, None)
            with contextlib.suppress(Exception):
                await asyncio.shield(store.set_pgid(self.db, job.id, None))
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, outdir, True))
        # settled only once its scratch dir is gone: a finished compose leaves nothing under tmp/
        await self.jobs.finish(dq.token, *outcome)

    async def _finish_build(self, dq: Dequeued, mres: dict[str, Any], res: OSBuildResult, outdir: Path,
                            results: Path, blog: structlog.typing.FilteringBoundLogger) -> tuple[dict[str, Any], JobError | None]:
        """The build job's (result, error), its artifact moved into results/ and uploaded."""
        job = dq.job
        pipeline_names = mres.get("pipeline_names")
        result: dict[str, Any] = {
            "success": res.success, "osbuild_output": res.output, "target_results": [],
            "pipeline_names": pipeline_names, "arch": host_arch(), "host_os": _host_os(),
        }
        if res.timings is not None:   # per-stage timings (osbuildd's addition), also of failed builds
            result["timings"] = res.timings
        if res.kind == "canceled":
            blog.info("build canceled")
            await self._fail_canceled(job.id, result)
            return result, JobError(errors.BUILD_JOB, failure.CANCELED_BY_USER)
        if not res.success:
            details: dict[str, Any] = {"kind": res.kind, "returncode": res.returncode}
            if res.failed_stage:
                details["stage"] = res.failed_stage.get("name")
                details["output"] = "\n".join(res.failing_lines(40))
            if res.kind == "crashed":
                details["stderr"] = "\n".join(res.stderr_tail.splitlines()[-40:])
            if res.kind == "timeout":
                details["timeout"] = f"{self.config.builder.stage_timeout:g}s per stage ([builder] stage_timeout)"
                details.pop("output", None)   # osbuild said nothing: the log's last lines instead
                details = await self._where(job.id, details)
            err = JobError(errors.BUILD_JOB, res.error or "osbuild build failed", details)
            result["job_error"] = err.to_dict()
            blog.warning("build failed", error=res.error, stage=details.get("stage"))
            await self._note(job.id, err)
            await asyncio.to_thread(_write_json, results / "result.json", result)
            return result, err
        filename: str = mres.get("filename") or job.args.get("filename") or ""
        exports = mres.get("exports") or []
        src = outdir / exports[-1] / filename if exports else outdir / filename
        dst = results / filename
        try:
            # same file system (state_dir): the artifact appears complete or not at all
            await asyncio.to_thread(os.replace, src, dst)
            await asyncio.to_thread(os.chmod, dst, 0o600)   # results are the owner's only
        except OSError as exc:
            err = JobError(errors.BUILD_JOB, f"artifact {filename} missing from export: {exc.strerror}")
            result["success"] = False
            result["job_error"] = err.to_dict()
            await self._note(job.id, err)
            return result, err
        try:   # credentials unsealed in memory only, for the uploads
            targets = await asyncio.to_thread(sealing.unseal_targets, job.args,
                                              functools.partial(sealing.Sealer.open, self.config.state_dir))
            seal_error = None
        except sealing.SealError as exc:
            targets, seal_error = job.args.get("targets") or [], str(exc)
            blog.error("sealed upload credentials unusable", error=seal_error)
        target_results, target_error = await self._upload(job, targets, dst, seal_error)
        result["target_results"] = target_results
        result["upload_status"] = "failure" if target_error else "success"
        error = None
        if target_error:
            error = JobError(errors.TARGET_ERROR, "at least one target failed", target_error)
            result["job_error"] = error.to_dict()
            await self._note(job.id, error)
        await asyncio.to_thread(_write_json, results / "result.json", result)
        blog.info("build finished", artifact=str(dst), seconds=round(res.duration, 1))
        return result, error

    async def _upload(self, job: Job, targets: list[dict[str, Any]], artifact: Path,
                      seal_error: str | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        """Run the upload targets concurrently (osbuildd.upload); local targets keep the artifact."""
        out: list[dict[str, Any]] = []
        remote = [t for t in targets if t.get("name") not in LOCAL_TARGETS]
        for t in targets:
            if t.get("name") in LOCAL_TARGETS:
                out.append({"name": t["name"], "options": {"artifact_path": str(artifact)}})
        if not remote:
            return out, None
        if seal_error is not None:   # no credentials: every remote target fails, saying why
            failed = [{"id": errors.INVALID_CONFIG, "reason": seal_error} for _ in remote]
            return (out + [{"name": t["name"], "target_error": e} for t, e in zip(remote, failed, strict=True)],
                    [{**e, "target": t["name"]} for t, e in zip(remote, failed, strict=True)])
        from osbuildd import upload
        from osbuildd.compose.model import UploadTarget
        creds = await asyncio.to_thread(upload.Credentials.load, self.config)
        # the build job's type is upstream's "osbuild:<arch>": the arch the image was built for
        image = upload.Artifact(artifact, export_filename=artifact.name, arch=job.type.partition(":")[2])
        sent = [0] * len(remote)
        size = (await asyncio.to_thread(artifact.stat)).st_size

        def progress(index: int, n: int) -> None:
            sent[index] = n

        async def report() -> None:   # upload progress into the job: at once (the status says "uploading"), then each second
            while True:
                await self.jobs.set_progress(job.id, {
                    "done": 1, "total": 1, "percent": 100.0, "message": "uploading",
                    "uploads": [{"name": t["name"], "sent": sent[i], "size": size} for i, t in enumerate(remote)]})
                await asyncio.sleep(1.0)

        reporter = asyncio.create_task(report())
        try:
            results = await upload.upload_all(
                [UploadTarget(t["name"], t.get("image_name", ""), t.get("options") or {}) for t in remote],
                image, creds, progress)
        finally:
            reporter.cancel()
        if upload.target_error(results) is None:
            return out + [r.to_dict() for r in results], None
        # a provider's message that quotes a credential of the request never shows it (only the
        # errors are scrubbed: a successful target's presigned URL must stay whole)
        secrets = _secret_values([t.get("options") or {} for t in remote])
        done = [r.to_dict() for r in results]
        for d in done:
            if "target_error" in d:
                d["target_error"] = failure.scrub(d["target_error"], secrets)
        # upstream's list of target errors, each naming its target (an osbuildd extra key)
        return out + done, [{**d["target_error"], "target": d["name"]} for d in done if "target_error" in d]


def _secret_values(options: list[dict[str, Any]]) -> tuple[str, ...]:
    out: list[str] = []
    for opts in options:
        for k, v in opts.items():
            if isinstance(v, dict):
                out += _secret_values([v])
            elif isinstance(v, str) and len(v) >= 4 and is_secret_key(k):
                out.append(v)
    return tuple(out)


def _mkdirs(*paths: Path) -> None:
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)


def _read_host_os() -> str:
    try:
        data = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        return f"{data.get('ID', '').strip(chr(34))}-{data.get('VERSION_ID', '').strip(chr(34))}"
    except OSError:
        return ""


_HOST_OS = _read_host_os()   # read once at import, never on the event loop


def _host_os() -> str:
    return _HOST_OS
