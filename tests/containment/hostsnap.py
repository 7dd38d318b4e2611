"""A snapshot of the build host's sensitive trees, to prove a test changed nothing there.

Names, modes and sizes of every entry under /run, /etc, /var/lib, /tmp and /root, and the SHA-256 of
small regular files. Paths the test run itself writes (pytest's temp base, the shared test state) are
left out, and so are a few files the system rewrites on its own; everything else must match exactly.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable

ROOTS = ("/run", "/etc", "/var/lib", "/tmp", "/root")
SMALL = 256 * 1024  # hash files up to this size: /etc and /run hold small ones

# written by the test run itself or by the system while it runs, never by a build
VOLATILE = (
    "/tmp/pytest-of-",        # pytest's tmp_path base
    "/tmp/osbuildd-",          # test state dirs some tests keep in /tmp
    "/tmp/tmp",               # tempfile.mkdtemp() of test helpers and servers
    # blkid caches the host's block devices; any disk build's loop devices (host-side, by the engine) change it
    "/run/blkid/",
    "/run/utmp", "/var/lib/systemd/", "/var/lib/dhcp/", "/run/systemd/",
    "/root/.cache/", "/root/.npm/", "/root/.config/", "/var/lib/postgresql/", "/run/postgresql",
    "/var/lib/docker", "/run/docker", "/run/containerd", "/var/lib/containerd", "/tmp/bash_",
)
# toolchains some machines keep under /root: their top entry is recorded, their 250k files are not walked
OPAQUE = ("/root/.pyenv", "/root/.rustup", "/root/.m2", "/root/.cargo", "/root/.npm", "/root/.cache")

Entry = tuple[int, int, str]  # mode, size, sha256 (small regular files) or symlink target


def _skip(path: str, extra: Iterable[str]) -> bool:
    return any(path.startswith(p) for p in (*VOLATILE, *extra))


def snapshot(extra_volatile: Iterable[str] = ()) -> dict[str, Entry]:
    extra = tuple(extra_volatile)
    out: dict[str, Entry] = {}
    for root in ROOTS:
        for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: None):
            if _skip(dirpath + "/", extra) or dirpath in OPAQUE:
                dirnames[:] = []
                continue
            for name in (*dirnames, *filenames):
                path = os.path.join(dirpath, name)
                if _skip(path, extra):
                    continue
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                digest = ""
                size = st.st_size if stat.S_ISREG(st.st_mode) else 0
                if dirpath == "/tmp" and stat.S_ISREG(st.st_mode):
                    # files right in /tmp are the callers' own logs (a CI job's, a shell's), growing
                    # while the tests run: their names and modes count, not their size and content
                    out[path] = (st.st_mode, 0, "")
                    continue
                if stat.S_ISLNK(st.st_mode):
                    digest = "-> " + os.readlink(path)
                elif stat.S_ISREG(st.st_mode) and st.st_size <= SMALL:
                    try:
                        with open(path, "rb") as f:
                            digest = hashlib.sha256(f.read()).hexdigest()
                    except OSError:
                        digest = "unreadable"
                out[path] = (st.st_mode, size, digest)
    return out


def diff(before: dict[str, Entry], after: dict[str, Entry]) -> list[str]:
    """What changed, one line per path (empty when the host is unchanged)."""
    lines = [f"added: {p}" for p in sorted(after.keys() - before.keys())]
    lines += [f"removed: {p}" for p in sorted(before.keys() - after.keys())]
    lines += [f"changed: {p} {before[p]} -> {after[p]}" for p in sorted(before.keys() & after.keys())
              if before[p] != after[p]]
    return lines
