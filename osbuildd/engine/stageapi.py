"""What a stage program sees: its tree, options, inputs, devices and mounts.

Stages import only this module and the standard library, because the engine may run them
inside a build root (chroot) with its own Python, where the rest of osbuildd is not importable.

The engine writes one JSON document (the "stage arguments") and runs
``python3 -m osbuildd.engine.stagerun <stage-type> <args-file>``; ``stagerun`` loads the stage
module and calls its ``main(args)``. Stage stdout/stderr become the stage's log.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse


class TreePathError(OSError):
    """A manifest path that cannot be resolved inside its tree."""


# A streaming input (``"streaming": true`` in the stage's inputs entry) is filled by the engine while
# the stage runs: each file appears whole (a hard link of a verified source blob), then the engine
# writes STREAM_COMPLETE, or STREAM_FAILED holding the reason when the sources could not be fetched.
STREAM_COMPLETE = ".complete"
STREAM_FAILED = ".failed"
STREAM_POLL = 0.1  # seconds between looks at a streaming input directory


class InputFailed(RuntimeError):
    """A streaming input will never be complete (the engine could not fetch its sources)."""


_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437, "ppc64le": 437, "s390x": 437, "riscv64": 437}
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_MAX_LINKS = 40


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc: ctypes.CDLL | None = None


def openat2_in_root(root_fd: int, path: str, flags: int, mode: int = 0) -> int:
    """openat2(2) with RESOLVE_IN_ROOT: absolute symlinks and ``..`` stay under ``root_fd``.

    There is no text fallback: without openat2 the kernel cannot promise the write stays in the
    tree, so the stage fails instead."""
    global _libc
    if "\0" in path:
        raise TreePathError(errno.EINVAL, "path contains a NUL byte", path)
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    nr = _SYS_OPENAT2.get(os.uname().machine)
    if nr is None:
        raise TreePathError(errno.ENOSYS, "openat2 syscall number unknown on this architecture", path)
    how = _OpenHow(flags | os.O_CLOEXEC, mode, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(ctypes.c_long(nr), ctypes.c_int(root_fd), os.fsencode(path or "."),
                       ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            raise TreePathError(err, "the kernel lacks openat2(2) (Linux >= 5.6 needed to write "
                                "into a tree safely)", path)
        raise OSError(err, os.strerror(err), path)
    return int(fd)


class TreeRoot:
    """Paths inside one tree, resolved by the kernel as if the tree were ``/``.

    Every operation opens the parent directory with openat2(RESOLVE_IN_ROOT) and acts on the last
    component with an *at() call that does not follow it, so neither a symlink on the way
    (``var/run -> /run``) nor one at the end (``etc/x -> /etc/passwd``) leads out of the tree."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    # -- resolution -------------------------------------------------------------------------
    def _rel(self, path: str) -> str:
        if "\0" in path:
            raise TreePathError(errno.EINVAL, "path contains a NUL byte", path)
        return path.lstrip("/")

    def _open(self, path: str, flags: int, mode: int = 0) -> int:
        rfd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return openat2_in_root(rfd, self._rel(path), flags, mode)
        except TreePathError as e:
            raise TreePathError(e.errno, e.strerror, path) from None
        except OSError as e:
            raise type(e)(e.errno, f"{e.strerror} (resolved inside the tree)", path) from None
        finally:
            os.close(rfd)

    def parent(self, path: str) -> tuple[int, str]:
        """An O_PATH fd of the directory holding ``path`` (inside the tree) and the last name."""
        rel = os.path.normpath("/" + self._rel(path)).lstrip("/")
        head, name = os.path.split(rel)
        if not name:
            raise TreePathError(errno.EINVAL, "path names the tree root itself", path)
        try:
            fd = self._open(head or ".", os.O_PATH | os.O_DIRECTORY)
        except TreePathError:
            raise
        except OSError as e:
            raise type(e)(e.errno, f"{e.strerror} (parent directory, inside the tree)",
                          path) from None
        return fd, name

    def _fd_path(self, fd: int, path: str) -> str:
        real = os.readlink(f"/proc/self/fd/{fd}")
        if real != self.root and not real.startswith(self.root.rstrip("/") + "/"):
            raise TreePathError(errno.EXDEV, "path resolves outside the tree", path)
        return real

    def host_path(self, path: str, follow: bool = True) -> str:
        """The host path ``path`` names inside the tree, for tools that take a path (cp, mkfs ...).

        Symlinks are resolved inside the tree; a dangling symlink at the end is followed inside
        the tree too. Missing directories are kept as names (they hold no symlink). The result
        is always under the tree."""
        if os.path.normpath("/" + self._rel(path)) == "/":
            return self.root
        for _ in range(_MAX_LINKS):
            try:
                pfd, name = self.parent(path)
            except FileNotFoundError:
                # missing directories on the way: the deepest existing one is resolved, the rest
                # does not exist yet, so it holds no symlink (the stage then creates it)
                head, name = os.path.split(os.path.normpath("/" + self._rel(path)))
                if head == "/":
                    raise
                return os.path.join(self.host_path(head), name)
            try:
                try:
                    st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                except FileNotFoundError:
                    return os.path.join(self._fd_path(pfd, path), name)
                if not (follow and stat.S_ISLNK(st.st_mode)):
                    return os.path.join(self._fd_path(pfd, path), name)
                target = os.readlink(name, dir_fd=pfd)
                here = os.path.relpath(self._fd_path(pfd, path), self.root)
            finally:
                os.close(pfd)
            path = target if target.startswith("/") else os.path.join("/", here, target)
        raise TreePathError(errno.ELOOP, "too many symlinks", path)

    def exists(self, path: str) -> bool:
        try:
            os.close(self._open(path, os.O_PATH))
            return True
        except FileNotFoundError:
            return False

    # -- writes -----------------------------------------------------------------------------
    def open(self, path: str, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
        """An fd of ``path``; with O_CREAT the last component is created, never followed out."""
        return self._open(path, flags, mode)

    def write_bytes(self, path: str, data: bytes, mode: int = 0o644) -> None:
        fd = self._open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with open(fd, "wb") as f:
            f.write(data)

    def write_text(self, path: str, text: str, mode: int = 0o644) -> None:
        self.write_bytes(path, text.encode("utf-8"), mode)

    def append_text(self, path: str, text: str, mode: int = 0o644) -> None:
        fd = self._open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, mode)
        with open(fd, "a", encoding="utf-8") as f:
            f.write(text)

    def read_bytes(self, path: str) -> bytes:
        with open(self._open(path, os.O_RDONLY), "rb") as f:
            return f.read()

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8")

    def mkdir(self, path: str, mode: int = 0o755, parents: bool = False,
              exist_ok: bool = False) -> None:
        if os.path.normpath("/" + self._rel(path)) == "/":
            if exist_ok or parents:
                return
            raise FileExistsError(errno.EEXIST, "File exists", path)
        if parents:
            head = os.path.dirname(os.path.normpath("/" + self._rel(path)))
            if head != "/" and not self.exists(head):
                self.mkdir(head, 0o755, parents=True, exist_ok=True)
        pfd, name = self.parent(path)
        try:
            os.mkdir(name, mode, dir_fd=pfd)
        except FileExistsError:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            if not (exist_ok or parents):
                raise FileExistsError(errno.EEXIST, "File exists", path) from None
            if stat.S_ISLNK(st.st_mode):
                # a symlinked directory is fine only if it resolves to a directory inside the
                # tree; a dangling one (var/lock -> /run/lock) gets its target made in the tree
                try:
                    os.close(self._open(path, os.O_PATH | os.O_DIRECTORY))
                except FileNotFoundError:
                    inner = "/" + os.path.relpath(self.host_path(path), self.root)
                    self.mkdir(inner, mode, parents=True, exist_ok=True)
            elif not stat.S_ISDIR(st.st_mode):
                raise FileExistsError(errno.EEXIST, "exists and is not a directory", path) from None
        finally:
            os.close(pfd)

    def makedirs(self, path: str, mode: int = 0o755, exist_ok: bool = True) -> None:
        self.mkdir(path, mode, parents=True, exist_ok=exist_ok)

    def chmod(self, path: str, mode: int) -> None:
        fd = self._open(path, os.O_PATH)  # follows symlinks, inside the tree only
        try:
            os.chmod(f"/proc/self/fd/{fd}", mode)
        finally:
            os.close(fd)

    def chown(self, path: str, uid: int, gid: int, follow: bool = True) -> None:
        if follow:
            fd = self._open(path, os.O_PATH)
            try:
                os.chown(f"/proc/self/fd/{fd}", uid, gid)
            finally:
                os.close(fd)
            return
        pfd, name = self.parent(path)
        try:
            os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(pfd)

    def symlink(self, target: str, path: str) -> None:
        pfd, name = self.parent(path)
        try:
            os.symlink(target, name, dir_fd=pfd)
        finally:
            os.close(pfd)

    def unlink(self, path: str, missing_ok: bool = True) -> None:
        pfd, name = self.parent(path)
        try:
            os.unlink(name, dir_fd=pfd)
        except FileNotFoundError:
            if not missing_ok:
                raise
        finally:
            os.close(pfd)

    def truncate(self, path: str, size: int) -> None:
        fd = self._open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)


@dataclass
class StageArgs:
    tree: str  # the pipeline's tree, writable
    options: dict[str, Any] = field(default_factory=dict)
    # input name -> {"path": directory, "data": {"files": {checksum: {...}}} or {"refs": {...}}},
    # plus "streaming": true when the engine is still filling it (``stream_input_files``)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"path": "/dev/loopN"}
    mounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"path": mountpoint}
    paths_mounts: str = ""  # root under which mounts live ("mount://name/x" resolves here)
    meta_path: str = ""  # file the stage's metadata is written to
    build_root: str | None = None  # set when running inside a build pipeline's tree
    source_epoch: int | None = None
    stage_type: str = ""
    stage_id: str = ""
    progress_fd: int | None = None  # pipe to the engine for step reports (``report_progress``)

    @classmethod
    def load(cls, path: str) -> StageArgs:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return cls(**data)

    def dump(self, path: str) -> None:
        # options may hold password hashes: readable by root only
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8") as f:
            json.dump(self.__dict__, f)

    def resolve(self, url: str) -> str:
        """Turn ``tree:///x``, ``input://name/x``, ``mount://name/x`` into a filesystem path."""
        u = urlparse(url)
        rel = u.path.lstrip("/")
        if u.scheme == "tree":
            base = self.tree
        elif u.scheme == "input":
            base = self.inputs[u.netloc]["path"]
        elif u.scheme == "mount":
            base = self.mounts[u.netloc]["path"] if u.netloc in self.mounts else self.paths_mounts
        else:
            raise ValueError(f"unsupported path url: {url}")
        if u.scheme == "input":
            # inputs are engine-made read-only trees: text resolution is enough
            path = os.path.normpath(os.path.join(base, rel))
            if path != base and not path.startswith(base.rstrip("/") + "/"):
                raise ValueError(f"path escapes its root: {url}")
            return path
        # trees and mounts are image content: symlinks in them resolve inside them (openat2)
        return TreeRoot(base).host_path("/" + rel)

    def root_for(self, url: str) -> tuple[TreeRoot, str]:
        """The TreeRoot a ``tree://`` / ``mount://`` URL (or a bare tree path) lives in, and the
        path inside it."""
        if "://" not in url:
            return self.tree_root(), url
        u = urlparse(url)
        if u.scheme == "tree":
            return self.tree_root(), u.path or "/"
        if u.scheme == "mount":
            base = self.mounts[u.netloc]["path"] if u.netloc in self.mounts else self.paths_mounts
            return TreeRoot(base), u.path or "/"
        raise ValueError(f"unsupported path url for a write: {url}")

    def tree_root(self) -> TreeRoot:
        """The tree as a TreeRoot: every write a stage makes into the tree goes through it."""
        return TreeRoot(self.tree)

    def tree_path(self, path: str) -> str:
        """The host path of a path inside the tree, symlinks resolved inside the tree (openat2).

        For tools that take a path; prefer ``tree_root()`` methods, which also never follow the
        last component."""
        return self.tree_root().host_path(path)

    def report_progress(self, name: str, done: int, total: int) -> None:
        """Tell the engine how far the stage is: ``done`` of ``total`` steps, ``name`` says what
        (e.g. ``"unpacking 120/237"``). ``done``/``total`` count over the whole stage (they only
        grow), so the progress bar never runs backwards between phases. Best effort: a report
        that cannot be written at once is dropped, the stage never waits for the engine."""
        if self.progress_fd is None:
            return
        line = json.dumps({"name": str(name), "done": int(done), "total": int(total)}) + "\n"
        try:
            os.write(self.progress_fd, line.encode())  # one write below PIPE_BUF: never torn
        except (BlockingIOError, BrokenPipeError, OSError):
            pass

    def stream_input_files(self, name: str, poll: float = STREAM_POLL) -> Iterator[str]:
        """The file names of input ``name`` as they appear in its directory, each once.

        A complete input (the engine had every file before the stage started) yields all its
        files at once. A streaming one yields files as the engine links them in and returns once
        the engine marked it complete and every file its data lists was yielded; it raises
        ``InputFailed`` when the engine says the input will not be complete."""
        entry = self.inputs[name]
        path = entry["path"]
        wanted = set(entry.get("data", {}).get("files", {}))
        if not entry.get("streaming"):
            yield from sorted(wanted) if wanted else sorted(n for n in os.listdir(path) if not n.startswith("."))
            return
        seen: set[str] = set()
        while True:
            # the marker before the listing: the engine writes it after the last file, so a listing
            # made after seeing it holds every file
            complete = os.path.exists(os.path.join(path, STREAM_COMPLETE))
            try:
                with open(os.path.join(path, STREAM_FAILED), encoding="utf-8") as f:
                    raise InputFailed(f"input {name}: {f.read().strip() or 'the engine could not fetch it'}")
            except FileNotFoundError:
                pass
            new = sorted(n for n in os.listdir(path) if not n.startswith(".") and n not in seen)
            for n in new:
                seen.add(n)
                yield n
            if complete:
                missing = sorted(wanted - seen)
                if missing:
                    raise InputFailed(f"input {name} is marked complete but lacks {', '.join(missing[:5])}")
                return
            if not new:
                time.sleep(poll)

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        if self.meta_path:
            with open(self.meta_path, "w", encoding="utf-8") as f:
                json.dump(metadata, f)


def run(cmd: list[str], *, check: bool = True, env: Mapping[str, str] | None = None,
        cwd: str | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a command with its output going to the stage log, failing loudly (unless ``check=False``)."""
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, stdout=sys.stdout, stderr=sys.stderr, check=check, env=env, cwd=cwd)


def chroot_run(tree: str, cmd: list[str], *, check: bool = True, env: Mapping[str, str] | None = None,
               cwd: str | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a command inside the image tree (for useradd, systemctl, update-initramfs ...).

    The tree is mounted nodev in the stage sandbox (a device node planted in a tree opens nothing),
    so the sandbox's own minimal /dev is bound over the tree's /dev, in a private mount namespace
    that vanishes with the command."""
    dev = os.path.join(tree, "dev")
    if not os.path.isdir(dev) or os.path.islink(dev) or not os.path.isdir("/dev/pts"):
        return run(["chroot", tree, *cmd], check=check, env=env, cwd=cwd)
    print("+ " + " ".join(["chroot", tree, *cmd]), flush=True)
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           'mount --rbind /dev "$1/dev" && exec chroot "$@"', "sh", tree, *cmd],
                          stdout=sys.stdout, stderr=sys.stderr, check=check, env=env, cwd=cwd)
