"""Streaming parser for osbuild's ``--monitor=JSONSeqMonitor`` output (RFC 7464 JSON text sequences).

Each record is ``0x1E`` + one JSON object + ``\\n``. The parser accepts the stream in chunks cut at any
byte (inside a record, inside a UTF-8 sequence), records of any length, contexts that are sent in full
once and afterwards only as ``{"id": ...}``, and records without a ``message``.
"""

from __future__ import annotations

import json
from typing import Any

RS = 0x1E
NL = b"\n"

# Origins whose messages are osbuild's own status lines; everything else is stage/source output.
STATUS_ORIGINS = frozenset({"osbuild.monitor", "osbuild.main_cli"})


class Progress:
    """Where the build is: ``done`` of ``total`` pipelines/sources, and the stages of the current one."""

    __slots__ = ("done", "total", "sub_done", "sub_total", "pipeline", "stage", "message", "step")

    def __init__(self, done: int = 0, total: int = 0, sub_done: int | None = None,
                 sub_total: int | None = None, pipeline: str | None = None, stage: str | None = None,
                 message: str | None = None, step: tuple[str, int, int] | None = None) -> None:
        self.done = done
        self.total = total
        self.sub_done = sub_done
        self.sub_total = sub_total
        self.pipeline = pipeline
        self.stage = stage
        self.message = message
        # the innermost level: the running stage's (or source's) own steps, (name, done, total)
        self.step = step

    @staticmethod
    def _frac(done: int | None, total: int | None) -> float:
        return min(1.0, max(0.0, (done or 0) / total)) if total else 0.0

    @property
    def percent(self) -> float:
        """What image-builder's progress bars show: each level counts as a fraction of one step of
        the level above (a stage's own steps move the bar inside that stage)."""
        if self.total <= 0:
            return 0.0
        step = self._frac(self.step[1], self.step[2]) if self.step else 0.0
        if self.sub_total:
            frac = min(1.0, ((self.sub_done or 0) + step) / self.sub_total)
        else:
            frac = step  # a source: its items are the level below pipelines/sources
        return max(0.0, min(100.0, 100.0 * (self.done + frac) / self.total))

    def to_dict(self) -> dict[str, Any]:
        """Upstream's progress shape ``{done, total, subprogress{done,total}}`` plus where we are."""
        out: dict[str, Any] = {"done": self.done, "total": self.total}
        step = None
        if self.step is not None:
            step = {"name": self.step[0], "done": self.step[1], "total": self.step[2]}
        if self.sub_total is not None:
            out["subprogress"] = {"done": self.sub_done or 0, "total": self.sub_total}
            if step is not None:
                out["subprogress"]["subprogress"] = step
        elif step is not None:
            out["subprogress"] = step
        out["percent"] = round(self.percent, 2)
        if self.pipeline:
            out["pipeline"] = self.pipeline
        if self.stage:
            out["stage"] = self.stage
        if self.message:
            out["message"] = self.message
        if step is not None:
            out["step"] = step["name"]  # what a progress line shows after the stage name
        return out

    def copy(self) -> Progress:
        return Progress(self.done, self.total, self.sub_done, self.sub_total, self.pipeline,
                        self.stage, self.message, self.step)

    def __repr__(self) -> str:
        return f"Progress({self.to_dict()!r})"


def _step(rec: object) -> tuple[str, int, int] | None:
    """The innermost progress level of a record, if it is a well-formed one."""
    if not isinstance(rec, dict):
        return None
    try:
        return (str(rec.get("name") or ""), int(rec.get("done") or 0), int(rec.get("total") or 0))
    except (TypeError, ValueError):
        return None


class MonitorEvent:
    """One monitor record with its context resolved."""

    __slots__ = ("message", "origin", "pipeline", "pipeline_id", "stage", "stage_id", "progress",
                 "result", "metadata", "duration", "timestamp")

    def __init__(self, message: str | None, origin: str | None, pipeline: str | None,
                 pipeline_id: str | None, stage: str | None, stage_id: str | None,
                 progress: Progress | None, result: dict[str, Any] | None,
                 metadata: dict[str, Any] | None,
                 duration: float | None, timestamp: float | None) -> None:
        self.message = message
        self.origin = origin
        self.pipeline = pipeline
        self.pipeline_id = pipeline_id
        self.stage = stage
        self.stage_id = stage_id
        self.progress = progress
        self.result = result
        self.metadata = metadata
        self.duration = duration
        self.timestamp = timestamp

    @property
    def is_status(self) -> bool:
        """osbuild's own status line (as opposed to build output, upstream's ``Trace``)."""
        return self.origin in STATUS_ORIGINS

    def __repr__(self) -> str:
        return (f"MonitorEvent(origin={self.origin!r}, pipeline={self.pipeline!r}, stage={self.stage!r}, "
                f"message={(self.message or '')[:40]!r})")


# (origin, pipeline name, pipeline id, stage name, stage id) of a record
_Context = tuple[str | None, str | None, str | None, str | None, str | None]
_NO_CONTEXT: _Context = (None, None, None, None, None)


class MonitorError(ValueError):
    """A record that is not a JSON object (the stream is corrupt)."""


class MonitorParser:
    """Incremental JSONSeq parser; ``feed(chunk)`` returns the events completed by that chunk.

    It also keeps the state a consumer needs at the end: the last progress, the current
    pipeline/stage, each stage's ``result`` record and the metadata per pipeline and stage.
    """

    def __init__(self, strict: bool = False) -> None:
        self._buf = bytearray()
        self._contexts: dict[str, _Context] = {}
        self.strict = strict
        self.progress = Progress()
        self.records = 0
        self.bad_records = 0
        self.stage_results: dict[str, dict[str, Any]] = {}        # stage id -> result record
        self.stage_pipeline: dict[str, str] = {}          # stage id -> pipeline name
        self.metadata: dict[str, dict[str, Any]] = {}     # pipeline -> stage type -> metadata
        self.failed_stage: dict[str, Any] | None = None
        # each finished stage or source, as the stream timed it: the per-stage timings of a build
        # without a --json result (crash, cancel, timeout) or from an osbuild without them
        self.finished_modules: list[dict[str, Any]] = []

    def feed(self, chunk: bytes) -> list[MonitorEvent]:
        buf = self._buf
        start = len(buf)
        buf += chunk
        # only the new bytes can hold a record end
        end = buf.find(NL, start)
        if end < 0:
            return []
        events: list[MonitorEvent] = []
        pos = 0
        while end >= 0:
            ev = self._record(bytes(buf[pos:end]))
            if ev is not None:
                events.append(ev)
            pos = end + 1
            end = buf.find(NL, pos)
        del buf[:pos]
        return events

    def close(self) -> list[MonitorEvent]:
        """End of stream: a last record without its newline still counts."""
        rest = bytes(self._buf)
        self._buf.clear()
        ev = self._record(rest) if rest.strip() else None
        return [ev] if ev is not None else []

    def _record(self, raw: bytes) -> MonitorEvent | None:
        rec = self._decode(raw)
        if rec is None:
            return None
        self.records += 1
        origin, pipeline, pipeline_id, stage, stage_id = self._resolve(rec.get("context"))
        message = rec.get("message")
        pr = rec.get("progress")
        if pr:
            self._update_progress(pr, pipeline)
        if origin == "osbuild.monitor" and message:
            self._update_place(message, pipeline, stage)
        # a snapshot: events are kept and compared by consumers
        prog = self.progress.copy() if pr or origin == "osbuild.monitor" else None
        result = rec.get("result")
        metadata = rec.get("metadata")
        if result is not None:
            self._keep_result(result, metadata, pipeline, stage, stage_id)
            self._keep_timing(rec, result, pipeline, pipeline_id)
        return MonitorEvent(message, origin, pipeline, pipeline_id, stage, stage_id, prog, result,
                            metadata, rec.get("duration"), rec.get("timestamp"))

    def _decode(self, raw: bytes) -> dict[str, Any] | None:
        """The record's JSON object, or None for an empty or bad one (counted; raised when strict)."""
        # A record starts at its last RS: a writer that died mid-record leaves a prefix to drop.
        rs = raw.rfind(b"\x1e")
        if rs >= 0:
            raw = raw[rs + 1:]
        if not raw.strip():
            return None
        try:
            rec = json.loads(raw)
        except ValueError as exc:
            self.bad_records += 1
            if self.strict:
                raise MonitorError(f"bad monitor record: {exc}") from None
            return None
        if not isinstance(rec, dict):
            self.bad_records += 1
            if self.strict:
                raise MonitorError("monitor record is not an object")
            return None
        return rec

    def _resolve(self, ctx: dict[str, Any] | None) -> _Context:
        """(origin, pipeline, pipeline id, stage, stage id): a context comes in full once, then by id."""
        if not ctx:
            return _NO_CONTEXT
        cid = ctx.get("id")
        if len(ctx) > 1 or cid not in self._contexts:
            p = ctx.get("pipeline") or {}
            s = p.get("stage") or {}
            resolved: _Context = (ctx.get("origin"), p.get("name"), p.get("id"), s.get("name"), s.get("id"))
            if cid:
                self._contexts[cid] = resolved
            return resolved
        return self._contexts[cid]

    def _update_progress(self, pr: dict[str, Any], pipeline: str | None) -> None:
        cur = self.progress
        sub = pr.get("progress")
        cur.done = pr.get("done", 0)
        cur.total = pr.get("total", 0)
        cur.step = None
        if sub and not (pipeline or "").startswith("source "):
            cur.sub_done = sub.get("done", 0)
            cur.sub_total = sub.get("total", 0)
            cur.step = _step(sub.get("progress"))
        elif sub:
            # a source has no stages: the level below pipelines/sources is its items
            cur.sub_done = cur.sub_total = None
            cur.step = _step(sub)
        else:
            cur.sub_done = cur.sub_total = None

    def _update_place(self, message: str, pipeline: str | None, stage: str | None) -> None:
        cur = self.progress
        # "Starting pipeline X" carries the previous stage name (osbuild quirk): reset it.
        if message.startswith("Starting pipeline"):
            cur.pipeline = pipeline
            cur.stage = None
        elif message.startswith("Starting module"):
            cur.pipeline = pipeline
            cur.stage = stage
        cur.message = message.strip()

    def _keep_timing(self, rec: dict[str, Any], result: dict[str, Any], pipeline: str | None,
                     pipeline_id: str | None) -> None:
        duration, timestamp, timings = rec.get("duration"), rec.get("timestamp"), rec.get("timings")
        if not isinstance(duration, int | float):
            return
        self.finished_modules.append({
            "pipeline": pipeline, "pipeline_id": pipeline_id, "id": result.get("id"), "type": result.get("source_type") or result.get("name"),
            "source": "source_type" in result, "success": result.get("success") is not False,
            "duration": float(duration), "timestamp": timestamp if isinstance(timestamp, int | float) else None,
            "timings": timings if isinstance(timings, dict) else None,
            "results": result.get("results") if isinstance(result.get("results"), list) else None})

    def _keep_result(self, result: dict[str, Any], metadata: dict[str, Any] | None, pipeline: str | None,
                     stage: str | None, stage_id: str | None) -> None:
        rid = result.get("id") or stage_id or result.get("name")
        if rid:
            self.stage_results[rid] = result
            if pipeline:
                self.stage_pipeline[rid] = pipeline
        if result.get("success") is False and self.failed_stage is None:
            self.failed_stage = result
        if metadata and pipeline:
            self.metadata.setdefault(pipeline, {})[result.get("name") or stage or "?"] = metadata
