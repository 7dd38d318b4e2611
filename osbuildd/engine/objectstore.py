"""The object store: source blobs, committed trees (checkpoints) and scratch space.

Layout (upstream's): ``sources/org.osbuild.files/<checksum>``, ``objects/<id>/{object.info,
data/tree, data/meta}``, ``tmp/``, ``cache.info``, ``cache.lock``, ``CACHEDIR.TAG``. Committed trees are
never modified; a build that starts from one copies it. Every build holds a shared lock on
``cache.lock``; eviction only runs when it gets the lock exclusively, so a tree in use is never removed.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from osbuildd.common import datasizes

SOURCES_DIR = "sources/org.osbuild.files"  # source blobs, relative to the store (upstream's layout)
CACHEDIR_TAG = "Signature: 8a477f597d28d172789f06886806bc55\n# osbuildd-engine object store\n"


def parse_size(text: str) -> int | None:
    """``20GiB`` -> bytes, ``unlimited`` -> None. Raises ValueError on anything else."""
    return datasizes.parse_limit(text)


def tree_size(path: Path) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            total += st.st_blocks * 512
    return total


def copy_tree(src: Path, dst: Path, preserve_owner: bool = True) -> None:
    """A full copy keeping owners, modes, xattrs, hard links and sparseness."""
    dst.mkdir(parents=True, exist_ok=True)
    cmd = ["cp", "-a", "--reflink=auto", "--sparse=always"]
    if not preserve_owner:
        cmd.append("--no-preserve=ownership")
    subprocess.run(cmd + [f"{src}/.", str(dst)], check=True)


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, deepest first."""
    prefix = str(path).rstrip("/")
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == prefix or mp.startswith(prefix + "/"):
                found.append(mp)
    return sorted(found, key=lambda m: (m.count("/"), m), reverse=True)


def unmount_under(path: Path) -> None:
    for mp in mounts_under(path):
        if subprocess.run(["umount", mp], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", mp], capture_output=True)


def remove_tree(path: Path) -> None:
    """Delete a scratch tree; never follows into something still mounted below it."""
    if not path.exists() and not path.is_symlink():
        return
    unmount_under(path)
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


def memory_scratch_size(meminfo: str = "/proc/meminfo") -> int | None:
    """Size of the in-memory scratch for package trees, or None when this host cannot spare it.

    Half of the memory available now, and only when that is at least 2 GiB: a Debian tree is
    0.5-2 GB. tmpfs takes pages only as files are written, so the size is a ceiling, not a reservation.
    """
    try:
        with open(meminfo, encoding="ascii") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        available = int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None
    size = available // 2
    return size if size >= 2 << 30 else None


class Store:
    def __init__(self, path: Path, max_size: str | None, memory_scratch: int | None = None) -> None:
        self.path = path.resolve()
        for sub in (SOURCES_DIR, "objects", "tmp"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        tag = self.path / "CACHEDIR.TAG"
        if not tag.exists():
            tag.write_text(CACHEDIR_TAG)
        self.info_path = self.path / "cache.info"
        info: dict[str, Any] = {}
        if self.info_path.exists():
            try:
                info = json.loads(self.info_path.read_text())
            except ValueError:
                info = {}
        if max_size is not None:  # given on the command line: persisted, as upstream does
            parse_size(max_size)
            wanted = {"version": 1, "maximum-size": max_size if max_size == "unlimited" else parse_size(max_size)}
            if wanted != info:
                # a temporary name of this engine's own: engines (workers) sharing a store start at once
                tmp = self.path / f"cache.info.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
                tmp.write_text(json.dumps(wanted))
                tmp.replace(self.info_path)
            info = wanted
        raw = info.get("maximum-size", 0)
        self.max_size: int | None = None if raw == "unlimited" else int(raw)
        self._lock_fd = os.open(self.path / "cache.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
        self._remove_stale_scratch()
        # the lock is held while this build runs: a build dir whose lock is free belongs to a dead
        # engine. Locked before the dir gets its build-* name, so no other engine sees it unlocked.
        name = uuid.uuid4().hex[:12]
        fresh = self.path / "tmp" / f".new-{name}"
        fresh.mkdir()
        self._scratch_lock = os.open(fresh / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._scratch_lock, fcntl.LOCK_EX)
        self.scratch = self.path / "tmp" / f"build-{name}"
        fresh.rename(self.scratch)
        self.memory: Path | None = None
        if memory_scratch:
            self.memory = self._mount_memory(memory_scratch)

    def _mount_memory(self, size: int) -> Path | None:
        """A tmpfs for package trees: fsync is free there, and dpkg and maintainer scripts fsync a lot.

        Mounted in the engine's own mount namespace (sandbox.py), so it vanishes with the engine.
        """
        mnt = self.scratch / "memory"
        mnt.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755,nosuid,nodev", "tmpfs",
                               str(mnt)], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"osbuildd-engine: no in-memory scratch ({done.stderr.strip()}); package trees are built on disk",
                  file=sys.stderr)
            mnt.rmdir()
            return None
        return mnt

    def _remove_stale_scratch(self) -> None:
        for d in (self.path / "tmp").glob("build-*"):
            try:
                fd = os.open(d / ".lock", os.O_RDWR)
            except FileNotFoundError:
                fd = -1  # killed before taking the lock
            except OSError:
                continue
            try:
                if fd >= 0:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a running build
            if fd >= 0:
                os.close(fd)
            remove_tree(d)

    # --- sources ---------------------------------------------------------
    @property
    def sources_dir(self) -> Path:
        return self.path / SOURCES_DIR

    def source_path(self, checksum: str) -> Path:
        return self.sources_dir / checksum

    # --- scratch ---------------------------------------------------------
    def tmpdir(self, prefix: str, memory: bool = False) -> Path:
        """A scratch directory; ``memory`` puts it on the in-memory scratch when there is one."""
        base = self.memory if memory and self.memory is not None else self.scratch
        d = base / f"{prefix}-{uuid.uuid4().hex[:8]}"
        d.mkdir(parents=True)
        return d

    def in_memory(self, path: Path) -> bool:
        return self.memory is not None and path.is_relative_to(self.memory)

    # --- objects ---------------------------------------------------------
    def object_dir(self, oid: str) -> Path:
        return self.path / "objects" / oid

    def has(self, oid: str) -> bool:
        return (self.object_dir(oid) / "object.info").is_file()

    def tree(self, oid: str) -> Path:
        self.touch(oid)
        return self.object_dir(oid) / "data" / "tree"

    def meta(self, oid: str) -> dict[str, Any]:
        try:
            meta: dict[str, Any] = json.loads((self.object_dir(oid) / "data" / "meta.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return meta

    def touch(self, oid: str) -> None:
        """Record a use, for least-recently-used eviction."""
        try:
            now = time.time()
            os.utime(self.object_dir(oid) / "object.info", (now, os.stat(self.object_dir(oid) / "object.info").st_mtime))
        except FileNotFoundError:
            pass

    def commit(self, oid: str, tree: Path, meta: dict[str, Any], move: bool) -> bool:
        """Store a tree under ``oid``. Returns False when the cache size does not allow it."""
        if self.has(oid):
            self.touch(oid)
            return True
        if self.max_size == 0:
            return False
        size = tree_size(tree)
        if self.max_size is not None and size > self.max_size:
            return False
        # staged in this build's scratch (same file system): a killed engine leaves nothing in objects/
        stage = self.tmpdir("commit")
        (stage / "data").mkdir(parents=True)
        if move:
            try:
                tree.rename(stage / "data" / "tree")
            except OSError as e:
                if e.errno != errno.EXDEV:
                    raise
                # a tree of the in-memory scratch: copied to disk, and its memory given back
                copy_tree(tree, stage / "data" / "tree")
                remove_tree(tree)
            tree.mkdir()  # callers may still clean up or look at the old place
        else:
            copy_tree(tree, stage / "data" / "tree")
        (stage / "data" / "meta.json").write_text(json.dumps(meta))
        (stage / "object.info").write_text(json.dumps({"id": oid, "size": size, "created": time.time()}))
        try:
            stage.rename(self.object_dir(oid))
        except OSError:  # committed concurrently by another build
            remove_tree(stage)
        self.evict()
        return True

    def objects(self) -> list[tuple[float, int, str]]:
        """(last use, size, id) of every committed object."""
        out = []
        for d in (self.path / "objects").iterdir():
            info = d / "object.info"
            if d.name.startswith(".") or not info.is_file():
                continue
            try:
                size = int(json.loads(info.read_text()).get("size", 0))
                out.append((info.stat().st_atime, size, d.name))
            except (ValueError, OSError):
                continue
        return out

    def evict(self) -> None:
        """Drop least recently used objects until the store fits ``maximum-size``."""
        if self.max_size is None:
            return
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another build is using the store; it evicts when it finishes
        try:
            objs = sorted(self.objects())
            total = sum(size for _, size, _ in objs)
            for _, size, oid in objs:
                if total <= self.max_size:
                    break
                remove_tree(self.object_dir(oid))
                total -= size
            (self.path / "cache.size").write_text(str(total))
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_SH)

    def close(self) -> None:
        remove_tree(self.scratch)
        try:
            os.close(self._scratch_lock)
        except OSError:
            pass
        try:
            os.close(self._lock_fd)
        except OSError:
            pass
