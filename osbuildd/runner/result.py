"""What one osbuild run gave, read from its ``--json`` stdout, its exit code and the monitor stream.

osbuild's stdout is empty after a crash (a crash is not a build failure); a non-zero exit with a JSON
result is a build failure (the result says which stage), not a runner error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypedDict

from . import timings
from .monitor import MonitorParser


class ResultKind(StrEnum):
    """Why a build did not succeed."""

    FAILED = "failed"           # osbuild said a stage or source failed
    CRASHED = "crashed"         # no JSON result: osbuild did not start or died
    CANCELED = "canceled"
    TIMEOUT = "timeout"         # a stage ran longer than the stage timeout
    VALIDATION = "validation"   # osbuild rejected the manifest


class StopReason(StrEnum):
    """Why the runner stopped a build that was still running."""

    CANCELED = "canceled"
    TIMEOUT = "timeout"


class FailedStage(TypedDict, total=False):
    """The failing stage (or source): its module name, id, output and osbuild's error for it."""

    name: str | None
    id: str | None
    output: str
    error: object
    pipeline: str


@dataclass
class OSBuildResult:
    """What one osbuild run gave. ``output`` is osbuild's ``--json`` result (None after a crash)."""

    success: bool
    returncode: int | None
    output: dict[str, Any] | None
    error: str | None = None                 # one line a person can act on; None on success
    kind: ResultKind | None = None
    failed_stage: FailedStage | None = None
    stderr_tail: str = ""
    progress: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    stage_results: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    log_path: Path | None = None
    # per-stage timings (runner/timings.py): the result's, else the stream's; None if nothing was timed
    timings: dict[str, Any] | None = None

    def failing_lines(self, n: int = 20) -> list[str]:
        """The last lines of what went wrong: the failing stage's output, else stderr."""
        stage_output = self.failed_stage.get("output") if self.failed_stage else None
        text = stage_output or self.stderr_tail or self.error or ""
        return text.rstrip("\n").splitlines()[-n:]


def not_started(program: str, exc: OSError, log_path: Path) -> OSBuildResult:
    return OSBuildResult(False, None, None, error=f"cannot start osbuild ({program}): {exc}",
                         kind=ResultKind.CRASHED, log_path=log_path)


def parse_output(stdout: bytes) -> dict[str, Any] | None:
    """osbuild's ``--json`` result, or None when stdout is empty or not a JSON object (a crash)."""
    if not stdout.strip():
        return None
    try:
        decoded = json.loads(stdout)
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


def failed_stage(output: dict[str, Any] | None, parser: MonitorParser) -> FailedStage | None:
    if output:
        details = (output.get("error") or {}).get("details") or {}
        st = details.get("stage") or details.get("source")
        if isinstance(st, dict):
            return {"name": st.get("type") or st.get("name"), "id": st.get("id"),
                    "output": st.get("output") or "", "error": st.get("error")}
        for pipeline, stages in (output.get("log") or {}).items():
            for st in stages or []:
                if isinstance(st, dict) and st.get("success") is False:
                    return {"name": st.get("type"), "id": st.get("id"), "pipeline": pipeline,
                            "output": st.get("output") or ""}
    if parser.failed_stage:
        r = parser.failed_stage
        return {"name": r.get("name"), "id": r.get("id"), "output": r.get("output") or ""}
    return None


@dataclass
class RunOutcome:
    """How the process ended, as the result collector needs it."""

    returncode: int | None
    stdout: bytes
    stderr_tail: str
    stopped: StopReason | None
    stage_timeout: float | None
    duration: float
    log_path: Path


def collect(run: RunOutcome, parser: MonitorParser) -> OSBuildResult:
    """The result of a run; never raises for build problems."""
    output = parse_output(run.stdout)
    res = OSBuildResult(False, run.returncode, output, stderr_tail=run.stderr_tail, metadata=parser.metadata,
                        stage_results=list(parser.stage_results.values()), duration=run.duration,
                        log_path=run.log_path, timings=timings.collect(output, parser, run.duration))
    if output is not None and isinstance(output.get("metadata"), dict):
        res.metadata = output["metadata"]
    if run.stopped == StopReason.CANCELED:
        res.kind, res.error = ResultKind.CANCELED, "build canceled"
    elif run.stopped == StopReason.TIMEOUT:
        res.kind = ResultKind.TIMEOUT
        stage = parser.progress.stage or "?"
        res.error = f"stage {stage} exceeded the stage timeout of {run.stage_timeout or 0:g}s"
        res.failed_stage = {"name": stage, "output": ""}
    elif output is None:
        tail = run.stderr_tail
        res.kind = ResultKind.CRASHED
        res.error = (f"osbuild did not return any output (exit code {run.returncode})"
                     + (f": {tail.strip().splitlines()[-1]}" if tail.strip() else ""))
    elif output.get("success") is True and run.returncode == 0:
        res.success = True
    elif output.get("type") == "https://osbuild.org/validation-error" or output.get("errors"):
        res.kind = ResultKind.VALIDATION
        msgs = [f"{'/'.join(map(str, e.get('path', [])))}: {e.get('message')}" for e in output.get("errors", [])]
        res.error = f"{output.get('title', 'manifest validation failed')}: " + "; ".join(msgs[:5])
    else:
        _failed(res, output, parser)
    progress = parser.progress.to_dict()
    res.progress = {**progress, "percent": 100.0} if res.success else progress
    return res


def _failed(res: OSBuildResult, output: dict[str, Any], parser: MonitorParser) -> None:
    res.kind = ResultKind.FAILED
    res.failed_stage = failed_stage(output, parser)
    if res.failed_stage:
        res.error = f"stage {res.failed_stage.get('name')} failed"
    else:
        err = output.get("error")
        res.error = (f"osbuild failed (exit code {res.returncode})"
                     + (f": {err.get('type')}" if isinstance(err, dict) else ""))


def result_summary(res: OSBuildResult) -> dict[str, Any]:
    """A small, JSON-able view for logs and job details."""
    out: dict[str, Any] = {"success": res.success, "returncode": res.returncode}
    if res.error:
        out["error"] = res.error
    if res.failed_stage:
        out["stage"] = res.failed_stage.get("name")
        out["output"] = "\n".join(res.failing_lines(40))
    elif res.kind == ResultKind.CRASHED and res.stderr_tail:
        out["stderr"] = "\n".join(res.stderr_tail.splitlines()[-40:])
    return out
