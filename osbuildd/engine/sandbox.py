"""Runs the engine in its own mount and PID namespace.

The process the caller started stays outside as a small supervisor: it forwards SIGTERM/SIGINT/SIGHUP
to the engine (PID 1 of the new namespace) and exits with its status. The engine dies with the
supervisor (``PR_SET_PDEATHSIG``), and when a namespace's PID 1 dies the kernel kills every process in
it and drops every mount in the mount namespace: even a SIGKILL of the supervisor leaves no stage
process and no mount behind. Loop devices are set to auto-clear on last close (``devices.py``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import NoReturn

ENV = "OSBUILDD_ENGINE_SANDBOX"
CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_REC = 0x4000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
BINFMT = "/proc/sys/fs/binfmt_misc"
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1


def inside() -> bool:
    return os.environ.get(ENV) == "1"


def enter(argv: list[str]) -> NoReturn:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS | CLONE_NEWPID) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(mount, pid) failed: {os.strerror(err)}")
    # nothing mounted by the engine may propagate back to the host
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"making / private failed: {os.strerror(err)}")
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            # a /proc of this PID namespace: tools that look up their children by pid (bwrap opens
            # /proc/<child>/ns/*) must not find the host's process of that number
            binfmt = os.path.ismount(BINFMT)
            if libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"mounting /proc for the engine failed: {os.strerror(err)}")
            if binfmt:  # foreign-architecture builds look up their qemu-user handler there
                libc.mount(b"binfmt_misc", BINFMT.encode(), b"binfmt_misc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
            os.environ[ENV] = "1"
            os.execv(sys.executable, [sys.executable, "-m", "osbuildd.engine.cli", *argv])
        finally:
            os._exit(127)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    sys.exit(128 - code if code < 0 else code)
