"""Build progress output: ``NullMonitor``, ``LogMonitor`` (human lines) and ``JSONSeqMonitor``.

``JSONSeqMonitor`` writes upstream osbuild's RFC 7464 records: ``0x1E`` + JSON + ``\\n`` with
``message``, ``context`` (sent in full once, then only as ``{"id"}``), ``progress`` (with the current
pipeline's stage progress nested), ``result``/``options``/``duration`` on finished modules and a
``timestamp`` on every record. Records are written whole with one ``os.write`` each. osbuildd adds
``timings`` (``{"started", "finished", "duration"}``, unix time) to the finished-module records of
stages and sources; upstream's fields are unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from osbuildd.common.redact import redact

OUTPUT_LIMIT = 31000  # upstream keeps the tail of a stage's output in result records
STEP_INTERVAL = 0.5  # at most two step-progress records a second: a 1000-package install stays small


class Origin(StrEnum):
    """Where a record comes from (upstream's ``context.origin``; stage output has ``stages/<type>``)."""

    MAIN_CLI = "osbuild.main_cli"
    MONITOR = "osbuild.monitor"


def _truncate(text: str) -> str:
    if len(text) <= OUTPUT_LIMIT:
        return text
    hidden = len(text) - OUTPUT_LIMIT
    return f"[...{hidden} bytes hidden...]" + text[-OUTPUT_LIMIT:]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BrokenPipeError:
            return  # the reader went away; the build itself carries on
        view = view[n:]


class Monitor:
    """What the executor reports; subclasses decide what gets written where."""

    def __init__(self, fd: int, total: int = 0) -> None:
        self.fd = fd
        self.total = total
        self.done = 0
        self.pipeline: tuple[str, str | None] | None = None  # (name, id)
        self.stage: tuple[str, str] | None = None  # (type, id)
        self.sub_total: int | None = None
        self.sub_done = 0
        # what the running stage or source reported of its own work (innermost progress level)
        self.step: tuple[str, int, int] | None = None  # (name, done, total)
        self._step_sent = 0.0
        self._step_last: tuple[str, int, int] | None = None

    @contextlib.contextmanager
    def aside(self, pipeline: tuple[str, str] | None = None) -> Iterator[None]:
        """Records of a source fetched while a pipeline runs (the engine overlaps the two): inside,
        the monitor is at ``pipeline`` (the source's place) or wherever the calls put it; after, it
        is back where the pipeline was, so the pipeline's records and steps carry on unchanged."""
        saved = self._place()
        if pipeline is not None:
            self.pipeline, self.stage, self.sub_total = pipeline, None, None
            self.step, self._step_last, self._step_sent = None, None, 0.0
        try:
            yield
        finally:
            self._restore(saved)

    def _place(self) -> tuple[Any, ...]:
        return (self.pipeline, self.stage, self.sub_total, self.sub_done, self.step, self._step_sent,
                self._step_last)

    def _restore(self, place: tuple[Any, ...]) -> None:
        (self.pipeline, self.stage, self.sub_total, self.sub_done, self.step, self._step_sent,
         self._step_last) = place

    # --- life cycle -----------------------------------------------------
    def begin(self, manifest_name: str) -> None: ...
    def finish(self, manifest_name: str, success: bool) -> None: ...

    def begin_source(self, stype: str, sid: str) -> None:
        self.pipeline = (f"source {stype}", sid)
        self.stage = None
        self.sub_total = None
        self._reset_step()

    def finish_source(self, stype: str, success: bool, output: str, results: list[dict[str, Any]],
                      duration: float, timings: dict[str, float] | None = None) -> None:
        self.done += 1
        self._reset_step()

    def begin_pipeline(self, name: str, pid: str | None, stages: int) -> None:
        self.pipeline = (name, pid)
        self.sub_total, self.sub_done = stages, 0
        self._reset_step()

    def finish_pipeline(self, name: str) -> None:
        self.done += 1
        self.sub_total = None

    def begin_stage(self, stype: str, sid: str) -> None:
        self.stage = (stype, sid)
        self._reset_step()

    def stage_output(self, text: str) -> None: ...

    def step_progress(self, name: str, done: int, total: int) -> None:
        """The running stage (or source) did ``done`` of ``total`` steps; ``name`` says of what.

        Reports come as often as the stage likes; a record is written at most every
        ``STEP_INTERVAL`` seconds, and always for the last step (so the end is never lost)."""
        done, total = max(0, int(done)), max(0, int(total))
        self.step = (str(name)[:200], min(done, total), total)
        now = time.monotonic()
        if self.step == self._step_last or (done < total and now - self._step_sent < STEP_INTERVAL):
            return
        self._step_sent, self._step_last = now, self.step
        self._write_step()

    def _reset_step(self) -> None:
        # a new stage or source starts with no steps, and its first report goes out at once
        self.step, self._step_last, self._step_sent = None, None, 0.0

    def flush_step(self) -> None:
        """Write a step report the rate limit held back (called on a timer while a stage runs)."""
        if self.step is not None and self.step != self._step_last:
            self._step_sent, self._step_last = time.monotonic(), self.step
            self._write_step()

    def _write_step(self) -> None: ...

    def finish_stage(self, stype: str, sid: str, success: bool, output: str, options: dict[str, Any],
                     metadata: dict[str, Any] | None, duration: float,
                     timings: dict[str, float] | None = None) -> None:
        self.sub_done += 1
        self._reset_step()

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


class NullMonitor(Monitor):
    pass


class LogMonitor(Monitor):
    """Readable progress for a terminal."""

    def _out(self, text: str) -> None:
        _write_all(self.fd, text.encode("utf-8", "replace"))

    def begin(self, manifest_name: str) -> None:
        self._out(f"starting {manifest_name}\n")

    def finish(self, manifest_name: str, success: bool) -> None:
        self._out(f"manifest {manifest_name} {'finished successfully' if success else 'failed'}\n")

    def begin_source(self, stype: str, sid: str) -> None:
        super().begin_source(stype, sid)
        self._out(f"Fetching sources: {stype}\n")

    def finish_source(self, stype: str, success: bool, output: str, results: list[dict[str, Any]],
                      duration: float, timings: dict[str, float] | None = None) -> None:
        super().finish_source(stype, success, output, results, duration, timings)
        if output:
            self._out(output if output.endswith("\n") else output + "\n")

    def begin_pipeline(self, name: str, pid: str | None, stages: int) -> None:
        super().begin_pipeline(name, pid, stages)
        self._out(f"Pipeline {name}: {pid}\n")

    def begin_stage(self, stype: str, sid: str) -> None:
        super().begin_stage(stype, sid)
        self._out(f"{stype}: {sid}\n")

    def stage_output(self, text: str) -> None:
        self._out(text)

    _line_sent = 0.0

    def _write_step(self) -> None:
        # a terminal gets a line every few seconds, not every record
        now = time.monotonic()
        if self.step and (now - self._line_sent >= 5.0 or self.step[1] == self.step[2]):
            self._line_sent = now
            name, done, total = self.step
            self._out(f"  {name} ({done}/{total})\n")

    def finish_stage(self, stype: str, sid: str, success: bool, output: str, options: dict[str, Any],
                     metadata: dict[str, Any] | None, duration: float,
                     timings: dict[str, float] | None = None) -> None:
        super().finish_stage(stype, sid, success, output, options, metadata, duration, timings)
        if not success:
            self._out(f"{stype}: failed\n")
        else:
            self._out(f"\u23f1  Duration: {duration:.2f}s\n")

    def message(self, text: str) -> None:
        self._out(text if text.endswith("\n") else text + "\n")


class JSONSeqMonitor(Monitor):
    def __init__(self, fd: int, total: int = 0) -> None:
        super().__init__(fd, total)
        self._sent: set[str] = set()
        self._ctx_id = ""

    def _place(self) -> tuple[Any, ...]:
        # "Finished pipeline" records name the context of the record before them
        return (*super()._place(), self._ctx_id)

    def _restore(self, place: tuple[Any, ...]) -> None:
        super()._restore(place[:-1])
        self._ctx_id = place[-1]

    # context: the full one is hashed (None values included, sorted keys) and sent once
    def _context(self, origin: str, with_stage: bool = True) -> dict[str, Any]:
        pname, pid = self.pipeline if self.pipeline else (None, None)
        sname, sid = self.stage if (self.stage and with_stage) else (None, None)
        full = {"origin": origin, "pipeline": {"name": pname, "id": pid, "stage": {"name": sname, "id": sid}}}
        cid = hashlib.sha256(json.dumps(full, sort_keys=True).encode()).hexdigest()
        self._ctx_id = cid
        if cid in self._sent:
            return {"id": cid}
        self._sent.add(cid)
        pipeline: dict[str, Any] = {k: v for k, v in (("name", pname), ("id", pid)) if v is not None}
        pipeline["stage"] = {k: v for k, v in (("name", sname), ("id", sid)) if v is not None}
        return {"origin": origin, "pipeline": pipeline, "id": cid}

    def _progress(self) -> dict[str, Any]:
        prog: dict[str, Any] = {"name": "pipelines/sources", "total": self.total, "done": self.done}
        inner: dict[str, Any] | None = None
        if self.step is not None:
            name, done, total = self.step
            inner = {"name": name, "total": total, "done": done}
        if self.sub_total is not None and self.pipeline:
            prog["progress"] = {"name": f"pipeline: {self.pipeline[0]}", "total": self.sub_total,
                                "done": self.sub_done}
            if inner is not None:
                prog["progress"]["progress"] = inner  # the stage's own steps, one level deeper
        elif inner is not None and self.pipeline:
            # a source has no stages: its items are the level below pipelines/sources
            prog["progress"] = inner
        return prog

    def _emit(self, message: str | None, context: dict[str, Any], **extra: object) -> None:
        rec: dict[str, Any] = {}
        if message:
            rec["message"] = message
        if "result" in extra:
            rec["result"] = extra.pop("result")
        rec["context"] = context
        rec["progress"] = self._progress()
        for k, v in extra.items():
            if v is not None and k not in ("duration", "timings"):
                rec[k] = v
        rec["timestamp"] = time.time()
        if extra.get("duration") is not None:
            rec["duration"] = extra["duration"]
        if extra.get("timings") is not None:
            rec["timings"] = extra["timings"]  # osbuildd's addition, after upstream's fields
        _write_all(self.fd, b"\x1e" + json.dumps(rec).encode() + b"\n")

    def begin(self, manifest_name: str) -> None:
        self._emit(f"starting {manifest_name}", self._context(Origin.MAIN_CLI))

    def finish(self, manifest_name: str, success: bool) -> None:
        text = f"manifest {manifest_name} {'finished successfully' if success else 'failed'}\n"
        self._emit(text, self._context(Origin.MAIN_CLI))

    def begin_source(self, stype: str, sid: str) -> None:
        super().begin_source(stype, sid)
        self._emit(f"Starting pipeline source {stype}", self._context(Origin.MONITOR))

    def finish_source(self, stype: str, success: bool, output: str, results: list[dict[str, Any]],
                      duration: float, timings: dict[str, float] | None = None) -> None:
        ctx = self._context(Origin.MONITOR)
        result = {"name": f"source {stype}", "source_type": stype, "success": success,
                  "output": _truncate(output), "results": results}
        self._emit(f"Finished module source {stype}", ctx, result=result, duration=duration, timings=timings)
        super().finish_source(stype, success, output, results, duration, timings)
        self._emit(f"Finished pipeline {stype}", {"id": self._ctx_id})

    def begin_pipeline(self, name: str, pid: str | None, stages: int) -> None:
        super().begin_pipeline(name, pid, stages)
        self.stage = None
        self._emit(f"Starting pipeline {name}", self._context(Origin.MONITOR))

    def finish_pipeline(self, name: str) -> None:
        super().finish_pipeline(name)
        self._emit(f"Finished pipeline {name}", {"id": self._ctx_id})

    def begin_stage(self, stype: str, sid: str) -> None:
        super().begin_stage(stype, sid)
        self._emit(f"Starting module {stype}", self._context(Origin.MONITOR))

    def stage_output(self, text: str) -> None:
        if self.stage:
            self._emit(text, self._context(f"stages/{self.stage[0]}"))

    def finish_stage(self, stype: str, sid: str, success: bool, output: str, options: dict[str, Any],
                     metadata: dict[str, Any] | None, duration: float,
                     timings: dict[str, float] | None = None) -> None:
        super().finish_stage(stype, sid, success, output, options, metadata, duration, timings)
        ctx = self._context(Origin.MONITOR)
        result = {"name": stype, "id": sid, "success": success, "output": _truncate(output)}
        self._emit(f"Finished module {stype}", ctx, result=result, options=redact(options),
                   metadata=metadata or None, duration=duration, timings=timings)

    def message(self, text: str) -> None:
        self._emit(text, self._context(Origin.MONITOR))

    def _write_step(self) -> None:
        # a record with progress only (no message), in the stage's or source's context
        self._emit(None, self._context(Origin.MONITOR, with_stage=self.stage is not None))


MONITORS: dict[str, type[Monitor]] = {
    "NullMonitor": NullMonitor,
    "LogMonitor": LogMonitor,
    "JSONSeqMonitor": JSONSeqMonitor,
}
