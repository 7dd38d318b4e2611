"""Which osbuild to run, its command line and environment, and starting it (``spawn``).

Contract (notes/osbuild.md §1-3): ``osbuild --store S --output-directory O [--export E]... [--checkpoint C]...
--monitor=JSONSeqMonitor --monitor-fd=N --json -`` with the manifest on stdin. The monitor pipe's write
end reaches the child through ``pass_fds`` under its own number, and that number is what ``--monitor-fd``
names. The child leads its own session (``start_new_session``), so its process group id is its pid: what
cancel, timeout and the daemon's recovery kill.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osbuildd.common import datasizes

from . import engines
from .cleanup import JOB_MARKER, MARKER, marker_value

# umask 022 so trees and images get the usual modes whatever the daemon's (owner-only) umask. Neither
# preexec_fn (unsafe in a threaded process) nor create_subprocess_exec(umask=) (uvloop's loop, which the
# daemon runs on, does not take it) can set it, so a shell sets it and then execs osbuild in its place:
# same pid, same process group, same fds, same environment.
UMASK_SHIM = ("/bin/sh", "-c", 'umask 022 && exec "$@"', "osbuildd-umask")


class OSBuildNotFound(RuntimeError):
    """No osbuild binary can be run (a configuration error, said loudly)."""


def resolve_osbuild(setting: str | Sequence[str] = "auto", manifest: dict[str, Any] | None = None) -> list[str]:
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
               checkpoints: Sequence[str], cache_max_size: str, monitor_fd: int) -> list[str]:
    return OSBuildCommand.make(osbuild, store=store, outdir=outdir, exports=exports,
                               checkpoints=checkpoints, cache_max_size=cache_max_size).argv(monitor_fd)


@dataclass(frozen=True)
class OSBuildCommand:
    """The command line but for the monitor fd, whose number is known only once the pipe exists."""

    head: tuple[str, ...]

    @classmethod
    def make(cls, osbuild: Sequence[str], *, store: Path, outdir: Path, exports: Sequence[str],
             checkpoints: Sequence[str], cache_max_size: str) -> OSBuildCommand:
        argv = [*osbuild, "--store", str(store), "--output-directory", str(outdir)]
        if cache_max_size:
            argv += ["--cache-max-size", cache_size_arg(cache_max_size)]
        for e in exports:
            argv += ["--export", e]
        for c in checkpoints:
            argv += ["--checkpoint", c]
        return cls(tuple(argv))

    @property
    def program(self) -> str:
        return self.head[0]

    def argv(self, monitor_fd: int) -> list[str]:
        return [*self.head, "--monitor=JSONSeqMonitor", f"--monitor-fd={monitor_fd}", "--json", "-"]


def child_env(env: Mapping[str, str] | None, state_dir: Path, job_id: str | None) -> dict[str, str]:
    """The build's environment, with the markers that let recovery find its processes after a crash."""
    out = dict(os.environ if env is None else env)
    out[MARKER] = marker_value(state_dir)
    if job_id:
        out[JOB_MARKER] = job_id
    return out


def check_executable(program: str, env: Mapping[str, str]) -> None:
    """Raise what exec would for a missing or non-executable ``program``: behind the shell, exec's own
    error would only show as exit code 127/126, and a wrong path is a start failure, said as one."""
    if "/" not in program:
        if shutil.which(program, path=env.get("PATH", os.defpath)) is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
        return
    if not os.path.exists(program):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    if os.path.isdir(program) or not os.access(program, os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)


@dataclass
class Child:
    """A started osbuild: the process and the read end of its monitor pipe."""

    proc: asyncio.subprocess.Process
    monitor_fd: int
    argv: list[str]

    @property
    def pgid(self) -> int:
        return self.proc.pid   # start_new_session: the child leads its own group


async def spawn(command: OSBuildCommand, env: dict[str, str]) -> Child:
    """Start osbuild with the monitor pipe's write end passed under its own number; raises OSError."""
    await asyncio.to_thread(check_executable, command.program, env)
    rfd, wfd = os.pipe()   # both non-inheritable: only pass_fds hands wfd to the child
    argv = command.argv(wfd)
    try:
        proc = await asyncio.create_subprocess_exec(
            *UMASK_SHIM, *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True, pass_fds=(wfd,))
    except OSError:
        os.close(rfd)
        raise
    finally:
        os.close(wfd)   # the child has its copy; EOF on rfd once the build's processes are gone
    return Child(proc, rfd, argv)
