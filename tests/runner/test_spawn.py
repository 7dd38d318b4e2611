"""How the runner starts osbuild: the monitor pipe through pass_fds under the number --monitor-fd names,
no preexec_fn, umask 022 whatever the daemon's, its own session (the process group cancel kills)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from osbuildd.runner import run_osbuild

PROBE = Path(__file__).with_name("fd_probe.py")


async def probe_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict, list[dict]]:
    record = tmp_path / "probe.json"
    monkeypatch.setenv("FD_PROBE_RECORD", str(record))
    calls: list[dict] = []
    real = asyncio.create_subprocess_exec

    async def spy(*argv: str, **kw: Any) -> asyncio.subprocess.Process:
        calls.append({"argv": list(argv), **kw})
        return await real(*argv, **kw)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spy)
    progress: list[dict] = []

    async def on_progress(p: Any) -> None:
        progress.append(p.to_dict())

    old = os.umask(0o077)   # the daemon's umask: the build must not inherit it
    try:
        res = await run_osbuild({"version": "2"}, osbuild=[sys.executable, str(PROBE)], store=tmp_path / "store",
                                outdir=tmp_path / "out", exports=["tree"], checkpoints=[], cache_max_size="",
                                stage_timeout=None, on_progress=on_progress, log_dir=tmp_path / "logs",
                                state_dir=tmp_path)
    finally:
        os.umask(old)
    assert res.success, (res.error, res.stderr_tail)
    assert progress and progress[-1]["percent"] == 100.0
    return res, json.loads(record.read_text()), calls


def check(tmp_path: Path, res: Any, rec: dict, calls: list[dict]) -> None:
    assert len(calls) == 1
    kw = calls[0]
    assert kw.get("preexec_fn") is None
    fd = rec["monitor_fd"]
    assert kw["pass_fds"] == (fd,)
    assert kw["start_new_session"] is True
    # the child was told the number it really has, and it is the monitor pipe
    assert f"--monitor-fd={fd}" in rec["argv"] and "--monitor=JSONSeqMonitor" in rec["argv"]
    assert rec["argv"][-2:] == ["--json", "-"]
    assert rec["fd_open"] and rec["fd_fifo"]
    assert rec["umask"] == 0o022
    assert rec["pid"] == rec["pgid"] == rec["sid"]   # its own session: killpg(pid) reaches its stages
    assert rec["manifest_version"] == "2"
    # what it wrote to that fd arrived: progress, per-stage log, stage result
    assert "probe says hello from the stage" in (tmp_path / "logs" / "stages" / "s1.log").read_text()
    assert "Starting module org.osbuild.mkdir" in (tmp_path / "logs" / "osbuild.log").read_text()
    assert [r["name"] for r in res.stage_results] == ["org.osbuild.mkdir"]
    # neither end of the monitor pipe is left open in the parent
    assert rec["pipe"].startswith("pipe:[")
    assert rec["pipe"] not in open_fds()


def open_fds() -> list[str]:
    out = []
    for n in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{n}"))
        except OSError:
            pass
    return out


async def test_monitor_fd_passed_with_pass_fds(tmp_path, monkeypatch):
    res, rec, calls = await probe_build(tmp_path, monkeypatch)
    check(tmp_path, res, rec, calls)


def test_monitor_fd_on_uvloop(tmp_path, monkeypatch):
    """The daemon's loop: uvloop takes pass_fds and start_new_session (not preexec_fn-free umask=)."""
    uvloop = pytest.importorskip("uvloop")
    res, rec, calls = uvloop.run(probe_build(tmp_path, monkeypatch))
    check(tmp_path, res, rec, calls)


async def test_not_executable_is_a_start_failure(tmp_path):
    script = tmp_path / "osbuild"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    res = await run_osbuild({"version": "2"}, osbuild=[str(script)], store=tmp_path / "store",
                            outdir=tmp_path / "out", exports=[], checkpoints=[], cache_max_size="",
                            stage_timeout=None, on_progress=None, log_dir=tmp_path / "logs")
    assert not res.success and res.kind == "crashed"
    assert res.error == f"cannot start osbuild ({script}): [Errno 13] Permission denied: '{script}'"
