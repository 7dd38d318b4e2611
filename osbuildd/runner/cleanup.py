"""Leftover removal after a killed build: process groups, mounts and loop devices under our dirs.

A build that got SIGKILLed (or a daemon that was ``kill -9``ed) cannot clean up after itself, so the
runner and the daemon's start-up recovery look for what it may have left behind: engine processes
(recognised by the ``OSBUILDD_STATE_DIR`` marker the runner puts in their environment), mounts under
the store/tmp dirs, loop devices backed by files there.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
from collections.abc import Iterable
from pathlib import Path

MARKER = "OSBUILDD_STATE_DIR"
JOB_MARKER = "OSBUILDD_JOB_ID"


def marker_value(state_dir: Path | str) -> str:
    """The ``OSBUILDD_STATE_DIR`` value for ``state_dir`` (absolute, symlinks kept as given)."""
    return os.path.abspath(state_dir)


def _unescape(path: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and i + 3 < len(path) and path[i + 1:i + 4].isdigit():
            out.append(chr(int(path[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def mounts_under(roots: Iterable[Path]) -> list[str]:
    """Mount points below any of ``roots``, deepest first (the order to unmount them)."""
    rs = [str(Path(r).resolve()) for r in roots]
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        parts = line.split(" ")
        if len(parts) > 4:
            mp = _unescape(parts[4])
            if _under(mp, rs):
                found.append(mp)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def loops_backed_under(roots: Iterable[Path]) -> list[str]:
    """``/dev/loopN`` devices whose backing file lives below any of ``roots``."""
    rs = [str(Path(r).resolve()) for r in roots]
    found = []
    for bf in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            backing = bf.read_text().strip()
        except OSError:
            continue
        backing = backing.removesuffix(" (deleted)")
        if _under(backing, rs):
            found.append("/dev/" + bf.parent.parent.name)
    return sorted(found)


def processes_marked(state_dir: Path, job_id: str | None = None) -> dict[int, int]:
    """pid -> process group of every process started by a runner for ``state_dir`` (and ``job_id``)."""
    want = f"{MARKER}={marker_value(state_dir)}".encode()
    want_job = f"{JOB_MARKER}={job_id}".encode() if job_id else None
    me = os.getpid()
    found: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me:
            continue
        try:
            env = (d / "environ").read_bytes().split(b"\0")
            if want not in env or (want_job is not None and want_job not in env):
                continue
            stat = (d / "stat").read_text()
            # field 5 (pgrp) comes after the ")" that closes the command name
            pgrp = int(stat.rsplit(")", 1)[1].split()[2])
            found[int(d.name)] = pgrp
        except (OSError, ValueError, IndexError):
            continue
    return found


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


async def _run(*argv: str) -> int:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    return await proc.wait()


def snapshot_under(roots: Iterable[Path]) -> set[str]:
    """Mounts and loop devices below ``roots`` right now (left alone by a later ``cleanup_under``)."""
    roots = list(roots)
    return set(mounts_under(roots)) | set(loops_backed_under(roots))


def dead_scratch_dirs(store: Path) -> list[Path]:
    """The store's build scratch dirs (``tmp/build-*``) whose engine is gone: a running engine holds
    its dir's ``.lock``, so a free lock means a killed build's leftovers. Never a running build's, also
    of another process that shares the store (workers and daemons on one host). Blocking."""
    out: list[Path] = []
    tmp = store / "tmp"
    if not tmp.is_dir():
        return out
    for d in sorted(tmp.glob("build-*")):
        try:
            fd = os.open(d / ".lock", os.O_RDWR)
        except OSError:
            out.append(d)   # no lock file: nobody can hold it
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            out.append(d)
        except BlockingIOError:
            pass            # a live engine's
        finally:
            os.close(fd)
    return out


async def cleanup_under(roots: Iterable[Path], keep: set[str] | frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """Unmount everything below ``roots`` and detach loop devices backed by files there, except
    what ``keep`` names (what existed before the build: another build's, not ours)."""
    roots = [Path(r) for r in roots]
    roots = [r for r in roots if await asyncio.to_thread(r.exists)]
    if not roots:
        return {"unmounted": [], "detached": []}
    unmounted: list[str] = []
    for mp in await asyncio.to_thread(mounts_under, roots):
        if mp in keep:
            continue
        if await _run("umount", mp) != 0:
            await _run("umount", "-l", mp)   # busy: detach lazily rather than leave it behind
        unmounted.append(mp)
    detached: list[str] = []
    for dev in await asyncio.to_thread(loops_backed_under, roots):
        if dev in keep:
            continue
        await _run("losetup", "-d", dev)
        detached.append(dev)
    return {"unmounted": unmounted, "detached": detached}


async def kill_marked(state_dir: Path, job_id: str | None = None, grace: float = 5.0) -> list[int]:
    """SIGTERM then SIGKILL the process groups of leftover builds of ``state_dir``."""
    procs = await asyncio.to_thread(processes_marked, state_dir, job_id)
    groups = sorted(set(procs.values()))
    for g in groups:
        kill_group(g, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while procs and loop.time() < deadline:
        await asyncio.sleep(0.1)
        procs = await asyncio.to_thread(processes_marked, state_dir, job_id)
    for g in sorted(set(procs.values())):
        kill_group(g, signal.SIGKILL)
    for pid in procs:   # not in our group (re-parented after setsid of their own): one by one
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return groups
