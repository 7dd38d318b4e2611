"""The state dir's rules for every command that opens one (``serve``, ``build``, ``manifest``; later
``worker``): one absolute path, private modes, and one process at a time.

A process takes an exclusive ``flock`` on ``<state_dir>/lock`` (its pid written into the file) before
it reads or repairs anything there. Crash recovery (settling "interrupted" jobs, emptying ``tmp/``,
killing leftover build processes) is only safe when no live process owns the state, so a second
process stops at the lock with :class:`StateDirBusy` (the CLIs print it in one line and exit 2).
The lock goes with the process: the kernel drops it when the holder exits or is killed, and the fd
is close-on-exec, so an orphaned engine process never keeps it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path

LOCK_NAME = "lock"
DIR_MODE = 0o700
FILE_MODE = 0o600
PRIVATE_UMASK = 0o077
# files that hold secrets or job data; tightened if an older osbuildd left them readable
PRIVATE_FILES = ("osbuildd.db", "osbuildd.db-wal", "osbuildd.db-shm", "secrets.key")
_PID_WAIT = 1.0   # seconds to wait for a fresh holder to write its pid


class StateDirBusy(Exception):
    """Another live process holds the state dir's lock."""

    def __init__(self, state_dir: Path, pid: int | None) -> None:
        self.state_dir = state_dir
        self.pid = pid
        self.lock_path = state_dir / LOCK_NAME
        holder = f"process {pid}" if pid else "another process"
        super().__init__(f"state dir {state_dir} is in use by {holder} ({self.lock_path})")


def absolute(path: str | os.PathLike[str]) -> Path:
    """The state dir as the one absolute path every part uses (apt, the engine and ``--store``
    resolve relative paths against other directories than the caller's cwd)."""
    return Path(path).absolute()


def private_umask() -> int:
    """Make every file this process creates owner-only (the database, logs, results, keys);
    returns the umask the user had, for files that leave the state dir (``build --output``)."""
    return os.umask(PRIVATE_UMASK)


def prepare(state_dir: Path) -> None:
    """Create ``state_dir`` (0700 whatever the umask) and tighten what an older version left open."""
    state_dir.mkdir(parents=True, exist_ok=True)
    if state_dir.stat().st_mode & 0o777 != DIR_MODE:
        os.chmod(state_dir, DIR_MODE)
    for name in PRIVATE_FILES:
        with contextlib.suppress(FileNotFoundError):
            st = (state_dir / name).lstat()
            if st.st_mode & 0o077:
                os.chmod(state_dir / name, FILE_MODE)


class StateLock:
    """The held lock of one state dir; :meth:`release` (or process exit) gives it up."""

    def __init__(self, state_dir: Path, fd: int) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)   # no stale pid for the next reader
        os.close(fd)              # closing the only fd of this open file drops the flock

    def __enter__(self) -> StateLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    deadline = time.monotonic() + _PID_WAIT
    while True:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return int(text)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)   # the holder locked but has not written its pid yet


def acquire(state_dir: Path) -> StateLock:
    """Prepare ``state_dir`` and lock it for this process, or raise :class:`StateDirBusy`.

    Blocking but quick (a few syscalls): call it before the event loop or via ``asyncio.to_thread``.
    """
    state_dir = absolute(state_dir)
    prepare(state_dir)
    path = state_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise StateDirBusy(state_dir, _read_pid(fd)) from None
        os.fchmod(fd, FILE_MODE)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return StateLock(state_dir, fd)
