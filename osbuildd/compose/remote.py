"""The composer's side of a job a remote worker runs (the worker API's handlers call these; no HTTP here).

- ``worker_args``: the arguments handed to the worker. For an ``osbuild:<arch>`` job the target
  credentials are unsealed into the targets (``sealed`` removed), ``pipeline_names`` filled from the
  manifest job's result when the build job has none, and ``org.osbuild.local`` targets replaced by
  one ``org.osbuild.worker.server`` target (one is added when the job has no target at all), so the
  artifact always comes back to ``<results_dir>/.uploads/<token>/`` for local download.
- ``apply_partial``: a running build's progress (kept as the local executor keeps it) and log text
  appended to ``results/<id>/logs/osbuild.log`` / ``logs/stages/<stage-id>.log`` only at the offset
  the file has (a resend or a gap is ignored).
- ``finish``: the worker's result settles the job. For builds: the uploaded artifact moved into
  ``results/<id>/<filename>``, ``result.json``, ``manifest.json`` and (unless streamed) the osbuild
  log written, the worker.server target result turned into the local form the Weldr and Cloud APIs
  read (``options.artifact_path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import structlog

from osbuildd import sealing
from osbuildd.common.files import write_json
from osbuildd.compose import failure
from osbuildd.errors import ErrorKind, ServiceError
from osbuildd.queue import Job, JobError, JobNotFound, JobStore, errors

log = structlog.get_logger("osbuildd.remote")

WORKER_SERVER = "org.osbuild.worker.server"
LOCAL_TARGET = "org.osbuild.local"
_STAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class BadUpdate(ServiceError):
    """A worker's partial or result the composer cannot use (the API answers 400 id 10)."""

    kind = ErrorKind.INVALID
    error_id = "BadUpdate"


def is_build(job: Job) -> bool:
    return job.type.startswith("osbuild:")


UPLOADS = ".uploads"   # a dot name: never a compose id (a UUID), so no result directory collides


def artifacts_tmp(results_dir: Path, token: str | None = None) -> Path:
    """``<results_dir>/.uploads[/<token>]``: a running remote job's uploads. Under the results root
    so every daemon sharing ``[results] dir`` reaches them (a worker may upload through one daemon and
    finish through another) and the final move is a rename on one file system; not under
    ``<state_dir>/tmp``, which the daemon empties at start while remote jobs survive restarts."""
    path = results_dir / UPLOADS
    return path / token if token is not None else path


def legacy_artifacts_tmp(state_dir: Path) -> Path:
    """Where uploads were staged before ``[results] dir`` existed (removed at start if present)."""
    return state_dir / "artifacts" / "tmp"


# -- the arguments a worker gets ----------------------------------------------------------------

def _worker_server_target(args: dict[str, Any], mres: dict[str, Any], like: dict[str, Any] | None) -> dict[str, Any]:
    if like is not None:
        return {**like, "name": WORKER_SERVER, "options": {}}
    exports = mres.get("exports") or []
    export = args.get("export") or (exports[-1] if exports else "")
    filename = args.get("filename") or mres.get("filename") or ""
    return {"uuid": str(uuid.uuid4()), "name": WORKER_SERVER, "image_name": filename, "created": None,
            "status": "WAITING", "options": {},
            "osbuild_artifact": {"export_filename": filename, "export_name": export}}


def worker_dynamic_args(job: Job, dynamic_args: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The dependencies' results as a remote worker gets them: a build's manifest result also under
    upstream's ManifestJobByIDResult keys (``data``: the manifest, ``info``), so an upstream
    osbuild-worker finds it where it looks."""
    if not is_build(job) or not dynamic_args or not isinstance(dynamic_args[0], dict):
        return dynamic_args
    first = dynamic_args[0]
    if "manifest" not in first or "data" in first:
        return dynamic_args
    info = first.get("manifest_info") or {}
    upstream = {"data": first["manifest"], "info": {**info, "pipeline_names": first.get("pipeline_names")},
                "error": ""}
    return [{**first, **upstream}, *dynamic_args[1:]]


def worker_args(job: Job, dynamic_args: list[dict[str, Any]], state_dir: Path) -> dict[str, Any]:
    """The job's arguments as a remote worker gets them (blocking: may read the sealing key)."""
    args = copy.deepcopy(job.args)
    if not is_build(job):
        return args
    try:
        targets = sealing.unseal_targets(args, functools.partial(sealing.Sealer.open, state_dir))
    except sealing.SealError as exc:   # the uploads fail on the worker, saying no credentials
        log.error("sealed upload credentials unusable", job_id=job.id, error=str(exc))
        targets = copy.deepcopy(args.get("targets") or [])
    args.pop(sealing.SEALED, None)
    mres = dynamic_args[0] if dynamic_args and isinstance(dynamic_args[0], dict) else {}
    if not args.get("pipeline_names") and mres.get("pipeline_names"):
        args["pipeline_names"] = mres["pipeline_names"]
    out: list[dict[str, Any]] = []
    for t in targets:
        if t.get("name") == LOCAL_TARGET:
            if not any(x.get("name") == WORKER_SERVER for x in out):
                out.append(_worker_server_target(args, mres, t))
        else:
            out.append(t)
    if not out:
        out.append(_worker_server_target(args, mres, None))
    args["targets"] = out
    return args


# -- partial updates ----------------------------------------------------------------------------

def _append_at(path: Path, offset: Any, text: Any) -> bool:
    """Append ``text`` to ``path`` if ``offset`` is its current size; whether it was appended."""
    if not isinstance(offset, int) or isinstance(offset, bool) or not isinstance(text, str):
        raise BadUpdate("a log entry needs an integer offset and a text")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        if f.tell() != offset:
            return False
        f.write(text.encode("utf-8", errors="replace"))
    return True


def _log_entries(logs: Path, partial: dict[str, Any]) -> list[tuple[Path, dict[str, Any]]]:
    entries: list[tuple[Path, dict[str, Any]]] = []
    if partial.get("log") is not None:
        if not isinstance(partial["log"], dict):
            raise BadUpdate("partial.log must be an object {offset, text}")
        entries.append((logs / "osbuild.log", partial["log"]))
    stage_logs = partial.get("stage_logs")
    if stage_logs is not None:
        if not isinstance(stage_logs, dict):
            raise BadUpdate("partial.stage_logs must be an object of stage id -> {offset, text}")
        for sid, entry in stage_logs.items():
            if not _STAGE_ID.fullmatch(sid) or not isinstance(entry, dict):
                raise BadUpdate(f"partial.stage_logs: {sid!r} is not a stage id with an {{offset, text}}")
            entries.append((logs / "stages" / f"{sid}.log", entry))
    return entries


def _append_all(entries: list[tuple[Path, dict[str, Any]]]) -> None:
    for path, entry in entries:
        _append_at(path, entry.get("offset"), entry.get("text"))


async def apply_partial(jobs: JobStore, results_dir: Path, job: Job, partial: Any) -> None:
    """A running job's partial update: progress, log text (see the module's doc)."""
    if not isinstance(partial, dict):
        raise BadUpdate("partial must be an object")
    progress = partial.get("progress")
    if progress is not None and not isinstance(progress, dict):
        raise BadUpdate("partial.progress must be an object")
    entries = _log_entries(results_dir / job.id / "logs", partial)
    if progress is not None:
        await jobs.set_progress(job.id, progress)
    if entries:
        await asyncio.to_thread(_append_all, entries)


# -- the result ---------------------------------------------------------------------------------

def _log_text(osbuild_output: Any) -> str:
    """osbuild's --json result's per-pipeline stage output as one log text."""
    logs = osbuild_output.get("log") if isinstance(osbuild_output, dict) else None
    if not isinstance(logs, dict):
        return ""
    out: list[str] = []
    for pipeline, stages in logs.items():
        out.append(f"Pipeline {pipeline}\n")
        for st in stages if isinstance(stages, list) else []:
            if not isinstance(st, dict):
                continue
            out.append(f"Stage {st.get('type', '')} ({st.get('id', '')})\n")
            text = str(st.get("output") or "")
            out.append(text if text.endswith("\n") or not text else text + "\n")
    return "".join(out)


def _move_artifact(tmp: Path, names: list[str], dst: Path) -> str | None:
    """Move the first of ``names`` present under ``tmp`` to ``dst`` (same file system, mode 600);
    the name moved, or None."""
    for name in names:
        src = tmp / name
        if name and src.is_file():
            os.replace(src, dst)
            os.chmod(dst, 0o600)
            return name
    return None


def _settle_build(results_dir: Path, job: Job, token: str, result: dict[str, Any],
                  manifest: dict[str, Any] | None) -> JobError | None:
    """Files of a finished remote build (blocking); ``result`` is rewritten in place; the error the
    composer adds (a missing artifact), if any."""
    results = results_dir / job.id
    logs = results / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if manifest is not None:
        write_json(results / "manifest.json", manifest)
    log_path = logs / "osbuild.log"
    if not log_path.exists() or log_path.stat().st_size == 0:
        text = _log_text(result.get("osbuild_output"))
        if text:
            log_path.write_text(text)
    error: JobError | None = None
    filename = str(job.args.get("filename") or "")
    tmp = artifacts_tmp(results_dir, token)
    target_results = result.get("target_results")
    for tr in target_results if isinstance(target_results, list) else []:
        if not isinstance(tr, dict) or tr.get("name") != WORKER_SERVER or "target_error" in tr:
            continue
        raw_options = tr.get("options")
        options: dict[str, Any] = raw_options if isinstance(raw_options, dict) else {}
        rel = str(options.get("artifact_relative_path") or "")
        names = [os.path.basename(rel), filename]
        moved = _move_artifact(tmp, names, results / (filename or os.path.basename(rel)))
        if moved is None:
            error = JobError(errors.BUILD_JOB, f"the artifact {rel or filename!r} was not uploaded")
            continue
        dst = results / (filename or moved)
        tr["options"] = {**options, "artifact_path": str(dst), "artifact_relative_path": rel or moved}
    if error is not None and result.get("success"):
        result["success"] = False
        result["job_error"] = error.to_dict()
    else:
        error = None
    job_error = result.get("job_error")
    if isinstance(job_error, dict):
        with contextlib.suppress(OSError):
            failure.append_block(log_path, job_error)
    write_json(results / "result.json", result)
    return error


async def _manifest_of(jobs: JobStore, job: Job) -> dict[str, Any] | None:
    for dep_id in job.dependencies:
        with contextlib.suppress(JobNotFound):
            m = ((await jobs.get(dep_id)).result or {}).get("manifest")
            if isinstance(m, dict):
                return m
    return None


async def finish(jobs: JobStore, results_dir: Path, job: Job, token: str, result: Any) -> None:
    """Settle the running ``job`` with the worker's ``result`` (see the module's doc); raises the job
    store's JobNotRunning / TokenNotFound as ``JobStore.finish``."""
    if not isinstance(result, dict):
        raise BadUpdate("result must be an object")
    error = None
    if is_build(job):
        manifest = await _manifest_of(jobs, job)
        error = await asyncio.to_thread(_settle_build, results_dir, job, token, result, manifest)
    await jobs.finish(token, result, error)
    await asyncio.to_thread(shutil.rmtree, artifacts_tmp(results_dir, token), True)
