"""One job on the worker: an ``osbuild`` build, or a compute job (depsolve, search-packages).

A build runs ``osbuildd.buildjob`` in ``<state>/builds/<token>/`` while two helpers talk to the
composer: the token is polled every ``poll_interval`` (heartbeat; a cancel or a job taken away
stops the build and nothing is sent), and progress with the log's new text goes in ``partial``
updates at most once a second. The result is written to ``<state>/pending/<token>.json`` before it
is sent, so a lost connection or a restart never loses it; once the composer has it (or said the
job is no longer this worker's) the file and the build's dir go.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import structlog

from osbuildd.buildjob import BuildHooks, BuildPlaces, BuildRun, host_os
from osbuildd.common.files import write_json
from osbuildd.config import Config
from osbuildd.queue import JobError, errors

from .client import ComposerError, JobGone, WorkerClient
from .config import WorkerSettings

log = structlog.get_logger("osbuildd.worker.jobs")

WORKER_SERVER = "org.osbuild.worker.server"
LOCAL = "org.osbuild.local"
MAX_LOG_CHUNK = 1 << 20   # bytes of log text in one partial update
PARTIAL_GRACE = 5.0       # seconds a partial update in flight gets once the build is over


def token_of(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1]


# -- pending results ---------------------------------------------------------------------------

class Pending:
    """Results not yet delivered: ``<state>/pending/<token>.json``."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "pending"

    def save(self, token: str, entry: dict[str, Any]) -> None:
        """``entry``: {location, update, dir (removed once delivered), artifacts: [{location, name, path}]}."""
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json(self.dir / f"{token}.json", entry, indent=None)

    def load(self) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        if not self.dir.is_dir():
            return out
        for path in sorted(self.dir.glob("*.json")):
            try:
                entry = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                log.warning("unreadable pending result dropped", file=str(path), error=str(exc))
                path.unlink(missing_ok=True)
                continue
            out.append((path.stem, entry))
        return out

    def remove(self, token: str) -> None:
        (self.dir / f"{token}.json").unlink(missing_ok=True)


async def _put_artifacts(client: WorkerClient, entry: dict[str, Any]) -> None:
    """The artifacts of a kept result (org.osbuild.worker.server targets) PUT before the result; one
    the composer refuses (not a lost job) turns its target result into a target error."""
    update = entry["update"]
    result = update.get("result") or {}
    for art in entry.get("artifacts") or []:
        try:
            await client.put_artifact(art["location"], art["name"], Path(art["path"]))
        except JobGone:
            raise
        except ComposerError as exc:
            err = {"id": errors.UPLOADING_IMAGE, "reason": f"artifact upload to the composer failed: {exc}"}
            for tr in result.get("target_results") or []:
                if tr.get("name") in (WORKER_SERVER, LOCAL):
                    tr.pop("options", None)
                    tr["target_error"] = err
            result["success"] = False
            result["upload_status"] = "failure"
            result.setdefault("job_error", {"id": errors.TARGET_ERROR, "reason": "at least one target failed",
                                            "details": [{**err, "target": WORKER_SERVER}]})


async def _send_last_partial(client: WorkerClient, entry: dict[str, Any]) -> None:
    try:
        await client.update(entry["location"], {"partial": entry["partial"]})
    except JobGone:
        raise
    except ComposerError as exc:   # a composer without partial updates: its log comes from the result
        log.debug("last partial update refused", error=str(exc))


async def deliver(client: WorkerClient, pending: Pending, token: str, entry: dict[str, Any]) -> None:
    """Send a kept result (its artifacts first) until the composer answers; then forget it and its
    build dir."""
    try:
        if entry.get("partial"):
            await _send_last_partial(client, entry)
        await _put_artifacts(client, entry)
        await client.update(entry["location"], entry["update"])
        log.info("result delivered", token=token)
    except JobGone as exc:
        log.warning("result dropped: the job was requeued or canceled meanwhile", token=token, error=str(exc))
    except ComposerError as exc:
        log.error("result refused by the composer, dropped", token=token, error=str(exc))
    await asyncio.to_thread(pending.remove, token)
    if entry.get("dir"):
        await asyncio.to_thread(shutil.rmtree, entry["dir"], True)


# -- build inputs ------------------------------------------------------------------------------

def build_inputs(args: dict[str, Any], dynamic_args: list[Any]) -> dict[str, Any]:
    """The manifest result the build job reads (manifest, exports, filename, ...), from the
    job's args as upstream's OSBuildJob has them, with dynamic_args[0] (the manifest job's result,
    upstream's ``data`` or osbuildd's ``manifest``) for what the args lack."""
    dyn = dynamic_args[0] if dynamic_args and isinstance(dynamic_args[0], dict) else {}
    manifest = args.get("manifest") or dyn.get("data") or dyn.get("manifest")
    exports: list[str] = []
    filename = ""
    for t in args.get("targets") or []:
        art = t.get("osbuild_artifact") or {}
        if art.get("export_name") and art["export_name"] not in exports:
            exports.append(art["export_name"])
        filename = filename or art.get("export_filename") or ""
    if not exports:
        exports = list(args.get("exports") or ([args["export"]] if args.get("export") else []) or dyn.get("exports") or [])
    return {
        "manifest": manifest, "exports": exports,
        "checkpoints": list(args.get("checkpoints") or dyn.get("checkpoints") or []),
        "filename": filename or args.get("filename") or dyn.get("filename") or "",
        "pipeline_names": args.get("pipeline_names") or dyn.get("pipeline_names"),
    }


# -- partial updates ---------------------------------------------------------------------------

class LogFollower:
    """New text of one log file since the last update: ``offset`` counts the UTF-8 bytes the
    composer has been sent (its file's size), ``pos`` the bytes read here."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pos = 0
        self.offset = 0

    def read(self) -> tuple[int, str] | None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                raw = f.read(MAX_LOG_CHUNK)
        except OSError:
            return None
        if not raw:
            return None
        cut = len(raw)
        for back in range(4):   # never split a UTF-8 sequence at the chunk's end
            try:
                text = raw[:cut - back].decode("utf-8")
                cut -= back
                break
            except UnicodeDecodeError:
                continue
        else:
            text = raw.decode("utf-8", "replace")
        if not text:
            return None
        return cut, text

    def sent(self, cut: int, text: str) -> None:
        self.pos += cut
        self.offset += len(text.encode("utf-8"))


class Partials:
    """The partial updates of one build: progress when it changed, the logs' new text."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.main = LogFollower(logs / "osbuild.log")
        self.stages: dict[str, LogFollower] = {}
        self.progress: dict[str, Any] | None = None
        self._sent_progress: dict[str, Any] | None = None

    def collect(self) -> tuple[dict[str, Any], list[tuple[LogFollower, int, str]]]:
        """(the partial body, what to mark sent once the composer has it); blocking (reads files)."""
        partial: dict[str, Any] = {}
        marks: list[tuple[LogFollower, int, str]] = []
        if self.progress is not None and self.progress != self._sent_progress:
            partial["progress"] = self.progress
        got = self.main.read()
        if got:
            partial["log"] = {"offset": self.main.offset, "text": got[1]}
            marks.append((self.main, *got))
        stages_dir = self.logs / "stages"
        if stages_dir.is_dir():
            for path in sorted(stages_dir.glob("*.log")):
                follower = self.stages.setdefault(path.stem, LogFollower(path))
                got = follower.read()
                if got:
                    partial.setdefault("stage_logs", {})[path.stem] = {"offset": follower.offset, "text": got[1]}
                    marks.append((follower, *got))
        return partial, marks

    def mark(self, partial: dict[str, Any], marks: list[tuple[LogFollower, int, str]]) -> None:
        if "progress" in partial:
            self._sent_progress = partial["progress"]
        for follower, cut, text in marks:
            follower.sent(cut, text)


# -- the jobs ----------------------------------------------------------------------------------

class BuildJob:
    """One ``osbuild`` job taken from the composer."""

    def __init__(self, settings: WorkerSettings, config: Config, client: WorkerClient, pending: Pending,
                 job: dict[str, Any], credentials: Any = None) -> None:
        self.settings, self.config, self.client, self.pending = settings, config, client, pending
        self.job = job
        self.location: str = job["location"]
        self.token = token_of(self.location)
        self.job_id = str(job.get("id") or self.token)
        self.dir = settings.state_dir / "builds" / self.token
        self.cancel = asyncio.Event()
        self.gone = ""   # why the job is no longer ours (canceled, requeued): nothing is sent
        self.partials = Partials(self.dir / "logs")
        self.credentials = credentials
        self.artifacts: list[dict[str, Any]] = []
        self.blog = log.bind(job_id=self.job_id, token=self.token)

    async def _lose(self, why: str) -> None:
        if not self.gone:
            self.gone = why
            self.blog.info("stopping the build", reason=why)
        self.cancel.set()

    async def _watch(self) -> None:
        """The heartbeat: GET the token every poll interval; a cancel or a lost job stops the build."""
        while not self.cancel.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cancel.wait(), self.settings.poll_interval)
                return
            try:
                if await self.client.job_canceled(self.location):
                    await self._lose("canceled")
            except JobGone as exc:
                await self._lose(f"job gone: {exc}")
            except ComposerError as exc:
                self.blog.warning("job status check failed", error=str(exc))

    async def _send_partials(self) -> None:
        try:
            partial, marks = await asyncio.to_thread(self.partials.collect)
            if partial:
                await self.client.update(self.location, {"partial": partial})
                self.partials.mark(partial, marks)
        except JobGone as exc:
            await self._lose(f"job gone: {exc}")
        except ComposerError as exc:   # an older composer without partial updates: progress stays local
            self.blog.debug("partial update refused", error=str(exc))

    async def _partial_loop(self) -> None:
        while not self.cancel.is_set():
            await self._send_partials()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cancel.wait(), self.settings.partial_interval)

    async def _artifact_target(self, target: dict[str, Any], artifact: Path) -> dict[str, Any]:
        """org.osbuild.worker.server (and org.osbuild.local): the artifact goes to the composer with
        the result (PUT first, see deliver), kept until then."""
        self.artifacts.append({"location": self.job.get("artifact_location") or f"{self.location}/artifacts/",
                               "name": artifact.name, "path": str(artifact)})
        return {"name": target.get("name", WORKER_SERVER), "options": {"artifact_relative_path": artifact.name}}

    async def run(self) -> None:
        args = self.job.get("args") or {}
        mres = build_inputs(args, self.job.get("dynamic_args") or [])

        async def on_progress(d: dict[str, Any]) -> None:
            self.partials.progress = d

        hooks = BuildHooks(progress=on_progress, upload_progress=on_progress, local_target=self._artifact_target,
                           targets=lambda a: list(a.get("targets") or []), credentials=self.credentials)
        places = BuildPlaces(self.config, self.dir, self.settings.store_dir)
        run = BuildRun(self.job_id, self.settings.arch, args, mres, places, hooks, self.cancel,
                       host=(self.settings.arch, host_os()))
        helpers = [asyncio.create_task(self._watch()), asyncio.create_task(self._partial_loop())]
        self.blog.info("build job taken", exports=mres.get("exports"))
        try:
            outcome = await run.run()
        except asyncio.CancelledError:   # the worker stops: the build is over, nothing is sent
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, self.dir, True))
            raise
        finally:
            # the helpers end: a partial update in flight may finish (its offsets stay in step with
            # the composer's files), but a composer that is away is not waited for
            self.cancel.set()
            await asyncio.wait(helpers, timeout=PARTIAL_GRACE)
            for t in helpers:
                t.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        if self.gone or outcome.canceled:
            self.blog.info("build stopped, no result sent", reason=self.gone or "canceled")
            await asyncio.to_thread(shutil.rmtree, self.dir, True)
            return
        result = dict(outcome.result)
        if outcome.error is not None:
            result["job_error"] = outcome.error.to_dict()
        # the log's last text goes before the result (a resend is ignored by its offset)
        last, _ = await asyncio.to_thread(self.partials.collect)
        last.pop("progress", None)
        entry: dict[str, Any] = {"location": self.location, "update": {"result": result}, "dir": str(self.dir),
                                 "artifacts": self.artifacts if outcome.artifact is not None else [],
                                 "partial": last or None}
        await asyncio.to_thread(self.pending.save, self.token, entry)
        beat = asyncio.create_task(self._heartbeat())   # an artifact upload may take longer than job_timeout
        try:
            await deliver(self.client, self.pending, self.token, entry)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            with contextlib.suppress(ComposerError):
                await self.client.job_canceled(self.location)


async def run_compute(config: Config, job: dict[str, Any]) -> dict[str, Any]:
    """A depsolve or search-packages job -> its result (with job_error on failure)."""
    from osbuildd.compose.handlers import run_depsolve, run_search
    kind = str(job.get("type") or "")
    args = job.get("args") or {}
    error: JobError | None
    if kind == "depsolve":
        result, error = await run_depsolve(config, args)
    elif kind == "search-packages":
        result, error = await run_search(config, args)
    else:
        result, error = {}, JobError(errors.INVALID_CONFIG, f"unsupported job type {kind!r}")
    out = dict(result)
    if error is not None:
        out["job_error"] = error.to_dict()
    return out
