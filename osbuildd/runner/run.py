"""Run ``osbuild`` (upstream or the bundled ``osbuildd-engine``) as an asyncio subprocess.

Contract (notes/osbuild.md §1-3): manifest on stdin, ``--json`` result on stdout, JSONSeq monitor on
a pipe at fd 3, stderr kept (its tail). Progress goes to ``on_progress`` at a bounded rate, the log to
``log_dir`` while the build runs. Cancel and stage timeout: SIGTERM to the process group, SIGKILL after
a grace period, then whatever the build left mounted or attached under its dirs is removed.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osbuildd.common import datasizes

from . import engines
from .cleanup import JOB_MARKER, MARKER, cleanup_under, kill_group, marker_value, snapshot_under
from .logs import BuildLog
from .monitor import MonitorEvent, MonitorParser, Progress

MONITOR_FD = 3
STDERR_TAIL = 16 * 1024
READ_SIZE = 256 * 1024


class OSBuildNotFound(RuntimeError):
    """No osbuild binary can be run (a configuration error, said loudly)."""


@dataclass
class OSBuildResult:
    """What one osbuild run gave. ``output`` is osbuild's ``--json`` result (None after a crash)."""

    success: bool
    returncode: int | None
    output: dict | None
    error: str | None = None           # one line a person can act on; None on success
    kind: str | None = None            # "failed" | "crashed" | "canceled" | "timeout" | "validation"
    failed_stage: dict | None = None   # {name/type, id, output} of the failing stage
    stderr_tail: str = ""
    progress: dict | None = None
    metadata: dict = field(default_factory=dict)
    stage_results: list[dict] = field(default_factory=list)
    duration: float = 0.0
    log_path: Path | None = None

    def failing_lines(self, n: int = 20) -> list[str]:
        """The last lines of what went wrong: the failing stage's output, else stderr."""
        text = (self.failed_stage or {}).get("output") or self.stderr_tail or self.error or ""
        return text.rstrip("\n").splitlines()[-n:]


def resolve_osbuild(setting: str | Sequence[str] = "auto", manifest: dict | None = None) -> list[str]:
    """``[builder] osbuild``: a path is used as is; "auto" picks per manifest (engines.choose): the
    bundled engine for ``org.osbuildd.*`` stages, upstream osbuild on PATH for stages the bundled
    engine lacks. Raises NoEngine when neither can run ``manifest``."""
    if not isinstance(setting, str):
        return list(setting)
    if setting and setting != "auto":
        path = shutil.which(setting)
        if not path:
            raise OSBuildNotFound(f"[builder] osbuild = {setting!r}: no such executable")
        return [path]
    upstream = shutil.which("osbuild")
    which = engines.choose(manifest, bool(upstream)) if manifest is not None else (
        "upstream" if upstream else "bundled")
    if which == "upstream" and upstream:
        return [upstream]
    engine = Path(sys.executable).parent / "osbuildd-engine"
    if engine.exists():
        return [str(engine)]
    return [sys.executable, "-m", "osbuildd.engine.cli"]


def cache_size_arg(value: str | int) -> str:
    """``--cache-max-size`` in a form every engine takes: upstream osbuild knows only kB..TiB and
    bare bytes, so ``"20Gi"`` (valid in our config) goes as ``21474836480``."""
    limit = datasizes.parse_limit(value)
    return "unlimited" if limit is None else str(limit)


def build_argv(osbuild: Sequence[str], *, store: Path, outdir: Path, exports: Sequence[str],
               checkpoints: Sequence[str], cache_max_size: str) -> list[str]:
    argv = [*osbuild, "--store", str(store), "--output-directory", str(outdir)]
    if cache_max_size:
        argv += ["--cache-max-size", cache_size_arg(cache_max_size)]
    for e in exports:
        argv += ["--export", e]
    for c in checkpoints:
        argv += ["--checkpoint", c]
    argv += ["--monitor=JSONSeqMonitor", f"--monitor-fd={MONITOR_FD}", "--json", "-"]
    return argv


def _failed_stage(output: dict | None, parser: MonitorParser) -> dict | None:
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


async def run_osbuild(manifest: dict, *, osbuild: str | Sequence[str], store: Path, outdir: Path,
                      exports: list[str], checkpoints: list[str], cache_max_size: str,
                      stage_timeout: float | None,
                      on_progress: Callable[[Progress], Awaitable[None]] | None, log_dir: Path,
                      cancel: asyncio.Event | None = None,
                      on_log: Callable[[MonitorEvent], None] | None = None,
                      on_start: Callable[[int], Awaitable[None]] | None = None,
                      state_dir: Path | None = None, job_id: str | None = None,
                      cleanup_paths: Sequence[Path] = (), grace: float = 10.0,
                      progress_interval: float = 0.5,
                      env: dict[str, str] | None = None) -> OSBuildResult:
    """Build ``manifest``; never raises for build problems, the result says what happened."""
    argv = build_argv(resolve_osbuild(osbuild, manifest), store=store, outdir=outdir, exports=exports,
                      checkpoints=checkpoints, cache_max_size=cache_max_size)
    store, outdir = Path(store), Path(outdir)
    await asyncio.to_thread(lambda: (store.mkdir(parents=True, exist_ok=True),
                                     outdir.mkdir(parents=True, exist_ok=True)))
    log = BuildLog(log_dir)
    await log.write([])  # the log file exists from the start, for readers that poll it
    child_env = dict(os.environ if env is None else env)
    # markers that let recovery find this build's processes after a daemon crash
    child_env[MARKER] = marker_value(state_dir or store.parent)
    if job_id:
        child_env[JOB_MARKER] = job_id

    # what already exists under the cleanup paths belongs to someone else (a concurrent build)
    before = await asyncio.to_thread(snapshot_under, cleanup_paths) if cleanup_paths else set()
    rfd, wfd = os.pipe()

    def _at_fd3() -> None:  # in the child, before exec: the monitor pipe becomes fd 3
        os.dup2(wfd, MONITOR_FD, inheritable=True)
        # umask 022: trees and images get the usual modes whatever the daemon's (owner-only) umask;
        # here, not as create_subprocess_exec(umask=), which uvloop's loop does not take
        os.umask(0o022)

    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=child_env, start_new_session=True,
            close_fds=False, preexec_fn=_at_fd3)
    except OSError as exc:
        os.close(rfd)
        os.close(wfd)
        await log.note(f"osbuildd: cannot start {argv[0]}: {exc}")
        await log.close()
        return OSBuildResult(False, None, None, error=f"cannot start osbuild ({argv[0]}): {exc}",
                             kind="crashed", log_path=log.path)
    os.close(wfd)
    pgid = proc.pid  # start_new_session: the child leads its own group
    if on_start is not None:
        await on_start(pgid)

    parser = MonitorParser()
    stderr_tail: collections.deque[bytes] = collections.deque()
    stderr_size = 0
    stage_started: list[float | None] = [None]
    last_sent = [0.0]
    best_pct = [-1.0]
    pending: list[Progress | None] = [None]

    async def send_progress(p: Progress, force: bool = False) -> None:
        # forward-only, at most one write per progress_interval
        if p.percent < best_pct[0]:
            return
        now = time.monotonic()
        if not force and now - last_sent[0] < progress_interval:
            pending[0] = p
            return
        best_pct[0] = p.percent
        last_sent[0] = now
        pending[0] = None
        if on_progress is not None:
            await on_progress(p)

    async def feed_stdin() -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(manifest).encode())
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            try:
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass

    async def read_monitor() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=READ_SIZE * 4)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(rfd, "rb", buffering=0))
        try:
            while True:
                chunk = await reader.read(READ_SIZE)
                events = parser.feed(chunk) if chunk else parser.close()
                if events:
                    await handle(events)
                if not chunk:
                    break
        finally:
            transport.close()

    async def handle(events: list[MonitorEvent]) -> None:
        await log.write(events)
        latest = None
        for ev in events:
            if ev.is_status and ev.message:
                if ev.message.startswith("Starting module"):
                    stage_started[0] = time.monotonic()
                elif ev.message.startswith(("Finished module", "Finished pipeline")):
                    stage_started[0] = None
            if ev.progress is not None:
                latest = ev.progress
            if on_log is not None:
                on_log(ev)
        if latest is not None:
            await send_progress(latest)

    async def read_stdout() -> bytes:
        assert proc.stdout is not None
        return await proc.stdout.read()

    async def read_stderr() -> None:
        nonlocal stderr_size
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(65536):
            stderr_tail.append(chunk)
            stderr_size += len(chunk)
            while stderr_size - len(stderr_tail[0]) >= STDERR_TAIL:
                stderr_size -= len(stderr_tail.popleft())

    async def flush_pending() -> None:
        while True:
            await asyncio.sleep(progress_interval)
            if pending[0] is not None:
                await send_progress(pending[0], force=True)

    async def watchdog() -> str:
        """Returns why the build must stop: "canceled" or "timeout"."""
        while True:
            if cancel is not None and cancel.is_set():
                return "canceled"
            st = stage_started[0]
            if stage_timeout and st is not None and time.monotonic() - st > stage_timeout:
                return "timeout"
            if cancel is not None:
                try:
                    await asyncio.wait_for(cancel.wait(), 0.5)
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(0.5)

    stdin_task = asyncio.create_task(feed_stdin())
    mon_task = asyncio.create_task(read_monitor())
    out_task = asyncio.create_task(read_stdout())
    err_task = asyncio.create_task(read_stderr())
    flush_task = asyncio.create_task(flush_pending())
    dog_task = asyncio.create_task(watchdog())
    wait_task = asyncio.create_task(proc.wait())
    stopped: str | None = None
    forced = False
    try:
        done, _ = await asyncio.wait({wait_task, dog_task}, return_when=asyncio.FIRST_COMPLETED)
        if dog_task in done and wait_task not in done:
            stopped = dog_task.result()
            why = "canceled" if stopped == "canceled" else f"stage timeout ({stage_timeout:g}s) exceeded"
            await log.note(f"osbuildd: {why}, stopping osbuild (SIGTERM)")
            kill_group(pgid, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(wait_task), grace)
            except TimeoutError:
                forced = True
                await log.note("osbuildd: osbuild did not stop in time, SIGKILL")
                kill_group(pgid, signal.SIGKILL)
                await wait_task
    except asyncio.CancelledError:
        # the caller went away (daemon shutdown): never leave the build running
        kill_group(pgid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(wait_task), grace)
        except TimeoutError:
            kill_group(pgid, signal.SIGKILL)
        raise
    finally:
        dog_task.cancel()
        flush_task.cancel()
        # children left in the group (the leader is gone) must not outlive the build
        kill_group(pgid, signal.SIGKILL)
        for t in (stdin_task, out_task, err_task, mon_task):
            try:
                await asyncio.wait_for(asyncio.shield(t), 10)
            except (TimeoutError, asyncio.CancelledError):
                t.cancel()
            except Exception:  # noqa: BLE001 - pipe errors after a kill are expected
                pass
        if stopped or forced or proc.returncode is None or proc.returncode < 0:
            await cleanup_under(cleanup_paths, keep=before)
        await log.close()

    rc = proc.returncode
    stdout = out_task.result() if out_task.done() and not out_task.cancelled() and not out_task.exception() else b""
    tail = b"".join(stderr_tail)[-STDERR_TAIL:].decode("utf-8", "replace")
    output: dict | None = None
    if stdout.strip():
        try:
            decoded = json.loads(stdout)
            output = decoded if isinstance(decoded, dict) else None
        except ValueError:
            output = None
    res = OSBuildResult(False, rc, output, stderr_tail=tail, metadata=parser.metadata,
                        stage_results=list(parser.stage_results.values()),
                        duration=time.monotonic() - started, log_path=log.path)
    if output is not None and isinstance(output.get("metadata"), dict):
        res.metadata = output["metadata"]
    if stopped == "canceled":
        res.kind, res.error = "canceled", "build canceled"
    elif stopped == "timeout":
        res.kind = "timeout"
        stage = parser.progress.stage or "?"
        res.error = f"stage {stage} exceeded the stage timeout of {stage_timeout:g}s"
        res.failed_stage = {"name": stage, "output": ""}
    elif output is None:
        res.kind = "crashed"
        res.error = (f"osbuild did not return any output (exit code {rc})"
                     + (f": {tail.strip().splitlines()[-1]}" if tail.strip() else ""))
    elif output.get("success") is True and rc == 0:
        res.success = True
        p = parser.progress.copy()
        p.done = max(p.done, p.total)
        p.sub_done = p.sub_total = None
        p.message = "finished"
        await send_progress(p, force=True)
    elif output.get("type") == "https://osbuild.org/validation-error" or output.get("errors"):
        res.kind = "validation"
        msgs = [f"{'/'.join(map(str, e.get('path', [])))}: {e.get('message')}" for e in output.get("errors", [])]
        res.error = f"{output.get('title', 'manifest validation failed')}: " + "; ".join(msgs[:5])
    else:
        res.kind = "failed"
        res.failed_stage = _failed_stage(output, parser)
        if res.failed_stage:
            res.error = f"stage {res.failed_stage.get('name')} failed"
        else:
            err = output.get("error")
            res.error = f"osbuild failed (exit code {rc})" + (f": {err.get('type')}" if isinstance(err, dict) else "")
    res.progress = parser.progress.to_dict() if not res.success else {**parser.progress.to_dict(), "percent": 100.0}
    return res


def result_summary(res: OSBuildResult) -> dict[str, Any]:
    """A small, JSON-able view for logs and job details."""
    out: dict[str, Any] = {"success": res.success, "returncode": res.returncode}
    if res.error:
        out["error"] = res.error
    if res.failed_stage:
        out["stage"] = res.failed_stage.get("name")
        out["output"] = "\n".join(res.failing_lines(40))
    elif res.kind in ("crashed",) and res.stderr_tail:
        out["stderr"] = "\n".join(res.stderr_tail.splitlines()[-40:])
    return out
