"""The build job (``osbuild:<arch>``), shared by the local executor and ``osbuildd worker``.

One run: osbuild builds the manifest into a scratch dir under ``tmp_dir``, the artifact moves into
the job's results dir, the upload targets run, and the outcome is upstream's OSBuildJobResult JSON
plus the job error. Where things go (state, store, results), how progress, logs and the non-upload
targets are reported, and where the upload credentials come from are the caller's (``BuildPlaces``,
``BuildHooks``); what happens to the outcome (finishing a queue job, or a PATCH to the composer) too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from osbuildd import sealing
from osbuildd.common.files import write_json
from osbuildd.common.redact import is_secret_key
from osbuildd.compose import failure
from osbuildd.compose.model import LOCAL_TARGETS
from osbuildd.config import Config
from osbuildd.queue import JobError, errors
from osbuildd.runner import OSBuildResult, Progress, run_osbuild

log = structlog.get_logger("osbuildd.buildjob")

ProgressHook = Callable[[dict[str, Any]], Awaitable[None]]
# a non-upload target (org.osbuild.local, org.osbuild.worker.server) -> its target result
LocalTargetHook = Callable[[dict[str, Any], Path], Awaitable[dict[str, Any]]]


@dataclass
class BuildPlaces:
    """Where one build runs: ``config`` gives osbuild, the state and tmp dirs, the cache size and
    the stage timeout; ``results`` is the job's own dir (manifest.json, logs/, the artifact,
    result.json)."""

    config: Config
    results: Path
    store: Path
    cleanup_store: bool = True   # False while other builds share the store (their mounts are theirs)

    @property
    def log_path(self) -> Path:
        return self.results / "logs" / "osbuild.log"


def _local_result(target: dict[str, Any], artifact: Path) -> dict[str, Any]:
    return {"name": target["name"], "options": {"artifact_path": str(artifact)}}


async def _no_progress(_progress: dict[str, Any]) -> None:
    return None


@dataclass
class BuildHooks:
    progress: ProgressHook = _no_progress          # osbuild's progress (Progress.to_dict())
    upload_progress: ProgressHook = _no_progress   # while the targets upload, once a second
    started: Callable[[int], Awaitable[None]] | None = None   # osbuild's process group
    local_target: LocalTargetHook | None = None    # default: the artifact stays where it is
    # the job's targets with their credentials (blocking; raises sealing.SealError)
    targets: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None
    credentials: Callable[[], Any] | None = None   # upload.Credentials (blocking)


@dataclass
class BuildOutcome:
    result: dict[str, Any]
    error: JobError | None
    canceled: bool = False
    artifact: Path | None = None
    last_progress: dict[str, Any] = field(default_factory=dict)


def _mkdirs(*paths: Path) -> None:
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)


class BuildRun:
    """One build job run; :meth:`run` never raises for build problems (the outcome says)."""

    def __init__(self, job_id: str, arch: str, args: dict[str, Any], mres: dict[str, Any],
                 places: BuildPlaces, hooks: BuildHooks | None = None, cancel: asyncio.Event | None = None,
                 host: tuple[str, str] = ("", "")) -> None:
        self.job_id, self.arch, self.args, self.mres = job_id, arch, args, mres
        self.places, self.hooks, self.cancel = places, hooks or BuildHooks(), cancel
        self.host_arch, self.host_os = host
        self.last_progress: dict[str, Any] = {}
        self.blog = log.bind(compose_id=job_id)

    # -- failures ------------------------------------------------------------------------------

    async def where(self, details: dict[str, Any]) -> dict[str, Any]:
        """``details`` with the stage that ran (from the last progress) and the log's last lines,
        for failures osbuild itself did not describe (cancel, timeout, shutdown)."""
        stage = self.last_progress.get("stage")
        if stage and not details.get("stage"):
            details["stage"] = stage
        if not details.get("output"):
            lines = await asyncio.to_thread(failure.log_tail, self.places.log_path)
            if lines:
                details["output"] = "\n".join(lines)
        return details

    async def note(self, error: JobError) -> None:
        """The failure block at the end of the osbuild log, for anything reading the log."""
        try:
            await asyncio.to_thread(failure.append_block, self.places.log_path, error.to_dict())
        except OSError as exc:
            log.warning("cannot append the failure to the build log", compose_id=self.job_id, error=str(exc))

    # -- the run ---------------------------------------------------------------------------------

    async def run(self) -> BuildOutcome:
        manifest = self.mres.get("manifest")
        if not manifest:
            return BuildOutcome({"success": False}, JobError(errors.EMPTY_MANIFEST, "the manifest job gave no manifest"))
        cfg, results = self.places.config, self.places.results
        await asyncio.to_thread(_mkdirs, results / "logs", cfg.tmp_dir)
        await asyncio.to_thread(write_json, results / "manifest.json", manifest)
        outdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=f"build-{self.job_id}-", dir=cfg.tmp_dir))

        async def on_progress(p: Progress) -> None:
            self.last_progress = d = p.to_dict()
            await self.hooks.progress(d)

        cleanup = [outdir] + ([self.places.store] if self.places.cleanup_store else [])
        self.blog.info("build started", exports=self.mres.get("exports"))
        try:
            res = await run_osbuild(
                manifest, osbuild=cfg.builder.osbuild, store=self.places.store, outdir=outdir,
                exports=self.mres.get("exports") or [], checkpoints=self.mres.get("checkpoints") or [],
                cache_max_size=cfg.builder.cache_max_size, stage_timeout=cfg.builder.stage_timeout or None,
                on_progress=on_progress, log_dir=results / "logs", cancel=self.cancel, on_start=self.hooks.started,
                state_dir=cfg.state_dir, job_id=self.job_id, cleanup_paths=cleanup)
            outcome = await self._finish(res, outdir)
        finally:
            # settled only once its scratch dir is gone: a finished build leaves nothing under tmp/
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, outdir, True))
        outcome.last_progress = self.last_progress
        return outcome

    def _base_result(self, res: OSBuildResult) -> dict[str, Any]:
        result: dict[str, Any] = {
            "success": res.success, "osbuild_output": res.output, "target_results": [],
            "pipeline_names": self.mres.get("pipeline_names"), "arch": self.host_arch, "host_os": self.host_os,
        }
        if res.timings is not None:   # per-stage timings (osbuildd's addition), also of failed builds
            result["timings"] = res.timings
        return result

    async def _failed(self, res: OSBuildResult, result: dict[str, Any]) -> BuildOutcome:
        details: dict[str, Any] = {"kind": res.kind, "returncode": res.returncode}
        if res.failed_stage:
            details["stage"] = res.failed_stage.get("name")
            details["output"] = "\n".join(res.failing_lines(40))
        if res.kind == "crashed":
            details["stderr"] = "\n".join(res.stderr_tail.splitlines()[-40:])
        if res.kind == "timeout":
            details["timeout"] = f"{self.places.config.builder.stage_timeout:g}s per stage ([builder] stage_timeout)"
            details.pop("output", None)   # osbuild said nothing: the log's last lines instead
            details = await self.where(details)
        err = JobError(errors.BUILD_JOB, res.error or "osbuild build failed", details)
        result["job_error"] = err.to_dict()
        self.blog.warning("build failed", error=res.error, stage=details.get("stage"))
        await self.note(err)
        await asyncio.to_thread(write_json, self.places.results / "result.json", result)
        return BuildOutcome(result, err)

    async def _canceled(self, result: dict[str, Any]) -> BuildOutcome:
        """The error of a canceled build, with the stage and last lines, noted in the log and in
        result.json; the caller records it (a canceled queue job is settled already)."""
        self.blog.info("build canceled")
        details = await self.where({"kind": "canceled"})
        err = JobError(errors.BUILD_JOB, failure.CANCELED_BY_USER, details)
        await self.note(err)
        await asyncio.to_thread(write_json, self.places.results / "result.json",
                                {**result, "canceled": True, "job_error": err.to_dict()})
        return BuildOutcome(result, err, canceled=True)

    async def _finish(self, res: OSBuildResult, outdir: Path) -> BuildOutcome:
        """The build job's outcome, its artifact moved into results/ and uploaded."""
        result = self._base_result(res)
        if res.kind == "canceled":
            return await self._canceled(result)
        if not res.success:
            return await self._failed(res, result)
        filename: str = self.mres.get("filename") or self.args.get("filename") or ""
        exports = self.mres.get("exports") or []
        src = outdir / exports[-1] / filename if exports else outdir / filename
        dst = self.places.results / filename
        try:
            # same file system (state_dir): the artifact appears complete or not at all
            await asyncio.to_thread(os.replace, src, dst)
            await asyncio.to_thread(os.chmod, dst, 0o600)   # results are the owner's only
        except OSError as exc:
            err = JobError(errors.BUILD_JOB, f"artifact {filename} missing from export: {exc.strerror}")
            result["success"] = False
            result["job_error"] = err.to_dict()
            await self.note(err)
            return BuildOutcome(result, err)
        try:   # credentials in memory only, for the uploads
            targets = await asyncio.to_thread(self._targets)
            seal_error = None
        except sealing.SealError as exc:
            targets, seal_error = self.args.get("targets") or [], str(exc)
            self.blog.error("sealed upload credentials unusable", error=seal_error)
        target_results, target_error = await self._upload(targets, dst, seal_error)
        result["target_results"] = target_results
        result["upload_status"] = "failure" if target_error else "success"
        error = None
        if target_error:
            error = JobError(errors.TARGET_ERROR, "at least one target failed", target_error)
            result["job_error"] = error.to_dict()
            await self.note(error)
        await asyncio.to_thread(write_json, self.places.results / "result.json", result)
        self.blog.info("build finished", artifact=str(dst), seconds=round(res.duration, 1))
        return BuildOutcome(result, error, artifact=dst)

    def _targets(self) -> list[dict[str, Any]]:
        if self.hooks.targets is not None:
            return self.hooks.targets(self.args)
        return list(self.args.get("targets") or [])

    async def _upload(self, targets: list[dict[str, Any]], artifact: Path,
                      seal_error: str | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        """Run the upload targets concurrently (osbuildd.upload); local targets go to the hook."""
        out: list[dict[str, Any]] = []
        remote = [t for t in targets if t.get("name") not in LOCAL_TARGETS]
        for t in targets:
            if t.get("name") in LOCAL_TARGETS:
                hook = self.hooks.local_target
                out.append(await hook(t, artifact) if hook is not None else _local_result(t, artifact))
        if not remote:
            return out, None
        if seal_error is not None:   # no credentials: every remote target fails, saying why
            failed = [{"id": errors.INVALID_CONFIG, "reason": seal_error} for _ in remote]
            return (out + [{"name": t["name"], "target_error": e} for t, e in zip(remote, failed, strict=True)],
                    [{**e, "target": t["name"]} for t, e in zip(remote, failed, strict=True)])
        done = await self._upload_remote(remote, artifact)
        if not any("target_error" in d for d in done):
            return out + done, None
        # a provider's message that quotes a credential of the request never shows it (only the
        # errors are scrubbed: a successful target's presigned URL must stay whole)
        secrets = secret_values([t.get("options") or {} for t in remote])
        for d in done:
            if "target_error" in d:
                d["target_error"] = failure.scrub(d["target_error"], secrets)
        # upstream's list of target errors, each naming its target (an osbuildd extra key)
        return out + done, [{**d["target_error"], "target": d["name"]} for d in done if "target_error" in d]

    async def _upload_remote(self, remote: list[dict[str, Any]], artifact: Path) -> list[dict[str, Any]]:
        from osbuildd import upload
        from osbuildd.compose.model import UploadTarget
        load = self.hooks.credentials or (lambda: upload.Credentials.load(self.places.config))
        creds = await asyncio.to_thread(load)
        # the build job's type is upstream's "osbuild:<arch>": the arch the image was built for
        image = upload.Artifact(artifact, export_filename=artifact.name, arch=self.arch)
        sent = [0] * len(remote)
        size = (await asyncio.to_thread(artifact.stat)).st_size

        def progress(index: int, n: int) -> None:
            sent[index] = n

        async def report() -> None:   # upload progress: at once (the status says "uploading"), then each second
            while True:
                await self.hooks.upload_progress({
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
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reporter
        return [r.to_dict() for r in results]


def secret_values(options: list[dict[str, Any]]) -> tuple[str, ...]:
    out: list[str] = []
    for opts in options:
        for k, v in opts.items():
            if isinstance(v, dict):
                out += secret_values([v])
            elif isinstance(v, str) and len(v) >= 4 and is_secret_key(k):
                out.append(v)
    return tuple(out)


def _read_host_os() -> str:
    try:
        data = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        return f"{data.get('ID', '').strip(chr(34))}-{data.get('VERSION_ID', '').strip(chr(34))}"
    except OSError:
        return ""


_HOST_OS = _read_host_os()   # read once at import, never on the event loop


def host_os() -> str:
    return _HOST_OS
