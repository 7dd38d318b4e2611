"""Run ``osbuild`` (upstream or the bundled ``osbuildd-engine``) as an asyncio subprocess.

Contract (notes/osbuild.md §1-3): manifest on stdin, ``--json`` result on stdout, JSONSeq monitor on
a pipe whose fd number ``--monitor-fd`` names, stderr kept (its tail). Progress goes to ``on_progress``
at a bounded rate, the log to ``log_dir`` while the build runs. Cancel and stage timeout: SIGTERM to the
process group, SIGKILL after a grace period, then whatever the build left mounted or attached under its
dirs is removed.

The pieces: ``command.spawn`` starts the child, ``stream`` reads its pipes, ``progress`` throttles what
reaches ``on_progress``, ``logs.BuildLog`` writes the log files, ``result.collect`` says what happened;
``_Build`` here supervises one run (watchdog, stop, shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cleanup import cleanup_under, kill_group, snapshot_under
from .command import (
    Child,
    OSBuildCommand,
    OSBuildNotFound,
    build_argv,
    cache_size_arg,
    child_env,
    resolve_osbuild,
    spawn,
)
from .logs import BuildLog
from .monitor import MonitorParser
from .progress import ProgressPublisher, ProgressSink, finished
from .result import OSBuildResult, ResultKind, RunOutcome, StopReason, collect, not_started, result_summary
from .stream import BuildEvents, LogSink, StageClock, StderrTail, feed_stdin, read_all, read_monitor

__all__ = [
    "OSBuildNotFound", "OSBuildResult", "ResultKind", "build_argv", "cache_size_arg", "resolve_osbuild",
    "result_summary", "run_osbuild",
]

DRAIN_TIMEOUT = 10.0   # how long the pipe readers get after the process is gone


async def watchdog(cancel: asyncio.Event | None, clock: StageClock, stage_timeout: float | None) -> StopReason:
    """Returns why the build must stop: canceled, or the running stage took too long."""
    while True:
        if cancel is not None and cancel.is_set():
            return StopReason.CANCELED
        if clock.overdue(stage_timeout):
            return StopReason.TIMEOUT
        if cancel is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(cancel.wait(), 0.5)
        else:
            await asyncio.sleep(0.5)


@dataclass
class _Tasks:
    stdin: asyncio.Task[None]
    monitor: asyncio.Task[None]
    stdout: asyncio.Task[bytes]
    stderr: asyncio.Task[None]
    flush: asyncio.Task[None]
    watchdog: asyncio.Task[StopReason]
    wait: asyncio.Task[int]

    def stdout_bytes(self) -> bytes:
        t = self.stdout
        return t.result() if t.done() and not t.cancelled() and not t.exception() else b""


@dataclass
class _Build:
    """One running build: the child, where its streams go, and how it was stopped."""

    child: Child
    log: BuildLog
    publisher: ProgressPublisher
    stage_timeout: float | None
    grace: float
    parser: MonitorParser = field(default_factory=MonitorParser)
    clock: StageClock = field(default_factory=StageClock)
    stderr: StderrTail = field(default_factory=StderrTail)
    stopped: StopReason | None = None
    forced: bool = False   # SIGKILL was needed

    def start(self, manifest: dict[str, Any], cancel: asyncio.Event | None, on_log: LogSink | None) -> _Tasks:
        proc = self.child.proc
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        events = BuildEvents(self.log, self.publisher, self.clock, on_log)
        return _Tasks(
            stdin=asyncio.create_task(feed_stdin(proc.stdin, manifest)),
            monitor=asyncio.create_task(read_monitor(self.child.monitor_fd, self.parser, events.handle)),
            stdout=asyncio.create_task(read_all(proc.stdout)),
            stderr=asyncio.create_task(self.stderr.read(proc.stderr)),
            flush=asyncio.create_task(self.publisher.flush_loop()),
            watchdog=asyncio.create_task(watchdog(cancel, self.clock, self.stage_timeout)),
            wait=asyncio.create_task(proc.wait()))

    async def supervise(self, tasks: _Tasks, cleanup_paths: Sequence[Path], keep: set[str]) -> None:
        """Until the process is gone and its pipes are read; the caller's cancellation kills it."""
        try:
            done, _ = await asyncio.wait({tasks.wait, tasks.watchdog}, return_when=asyncio.FIRST_COMPLETED)
            if tasks.watchdog in done and tasks.wait not in done:
                await self._stop(tasks.watchdog.result(), tasks.wait)
        except asyncio.CancelledError:
            # the caller went away (daemon shutdown): never leave the build running
            kill_group(self.child.pgid, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(tasks.wait), self.grace)
            except TimeoutError:
                kill_group(self.child.pgid, signal.SIGKILL)
            raise
        finally:
            await self._shutdown(tasks, cleanup_paths, keep)

    async def _stop(self, why: StopReason, wait: asyncio.Task[int]) -> None:
        self.stopped = why
        text = "canceled" if why == StopReason.CANCELED else f"stage timeout ({self.stage_timeout:g}s) exceeded"
        await self.log.note(f"osbuildd: {text}, stopping osbuild (SIGTERM)")
        kill_group(self.child.pgid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(wait), self.grace)
        except TimeoutError:
            self.forced = True
            await self.log.note("osbuildd: osbuild did not stop in time, SIGKILL")
            kill_group(self.child.pgid, signal.SIGKILL)
            await wait

    async def _shutdown(self, tasks: _Tasks, cleanup_paths: Sequence[Path], keep: set[str]) -> None:
        tasks.watchdog.cancel()
        tasks.flush.cancel()
        # children left in the group (the leader is gone) must not outlive the build
        kill_group(self.child.pgid, signal.SIGKILL)
        for t in (tasks.stdin, tasks.stdout, tasks.stderr, tasks.monitor):
            try:
                await asyncio.wait_for(asyncio.shield(t), DRAIN_TIMEOUT)
            except (TimeoutError, asyncio.CancelledError):
                t.cancel()
            except Exception:  # noqa: BLE001 - pipe errors after a kill are expected
                pass
        rc = self.child.proc.returncode
        if self.stopped or self.forced or rc is None or rc < 0:
            await cleanup_under(cleanup_paths, keep=keep)
        await self.log.close()

    def outcome(self, tasks: _Tasks, started: float) -> RunOutcome:
        return RunOutcome(self.child.proc.returncode, tasks.stdout_bytes(), self.stderr.text(), self.stopped,
                          self.stage_timeout, time.monotonic() - started, self.log.path)


def _make_dirs(*dirs: Path) -> None:
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)


async def run_osbuild(manifest: dict[str, Any], *, osbuild: str | Sequence[str], store: Path, outdir: Path,
                      exports: list[str], checkpoints: list[str], cache_max_size: str,
                      stage_timeout: float | None, on_progress: ProgressSink | None, log_dir: Path,
                      cancel: asyncio.Event | None = None, on_log: LogSink | None = None,
                      on_start: Callable[[int], Awaitable[None]] | None = None,
                      state_dir: Path | None = None, job_id: str | None = None,
                      cleanup_paths: Sequence[Path] = (), grace: float = 10.0,
                      progress_interval: float = 0.5,
                      env: dict[str, str] | None = None) -> OSBuildResult:
    """Build ``manifest``; never raises for build problems, the result says what happened."""
    command = OSBuildCommand.make(resolve_osbuild(osbuild, manifest), store=store, outdir=outdir,
                                  exports=exports, checkpoints=checkpoints, cache_max_size=cache_max_size)
    store, outdir = Path(store), Path(outdir)
    await asyncio.to_thread(_make_dirs, store, outdir)
    log = BuildLog(log_dir)
    await log.write([])  # the log file exists from the start, for readers that poll it
    child_environ = child_env(env, state_dir or store.parent, job_id)
    # what already exists under the cleanup paths belongs to someone else (a concurrent build)
    keep = await asyncio.to_thread(snapshot_under, cleanup_paths) if cleanup_paths else set()
    started = time.monotonic()
    try:
        child = await spawn(command, child_environ)
    except OSError as exc:
        await log.note(f"osbuildd: cannot start {command.program}: {exc}")
        await log.close()
        return not_started(command.program, exc, log.path)
    if on_start is not None:
        await on_start(child.pgid)
    build = _Build(child, log, ProgressPublisher(on_progress, progress_interval), stage_timeout, grace)
    tasks = build.start(manifest, cancel, on_log)
    await build.supervise(tasks, cleanup_paths, keep)
    res = collect(build.outcome(tasks, started), build.parser)
    if res.success:
        await build.publisher.offer(finished(build.parser.progress), force=True)
    return res
