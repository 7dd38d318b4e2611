"""What a built Debian tree holds, in a form that stays comparable across builds and mirror updates.

Speed work on the engine must not change what an image contains. The reference listings in
tests/debian/data/ were written from trees built by the engine before that work (the same
manifests as the session builds); the tests compare every new build against them:

- the package list: name and architecture of every installed package (versions follow the mirror);
- the file listing: every path with its type, permission bits, owner and, for symlinks, the target.
  The kernel's ABI version (``6.1.0-57-amd64``) is written as ``KVER`` and python byte-code names
  keep their tag, so a point release of the kernel does not change the listing.

One deliberate change: /etc/hostname and /etc/resolv.conf are 0644 (before, the bootstrap kept the
mode of the build host's files that mmdebstrap copies in).

Rewrite a reference (only when the package set itself changes on purpose):
  python -m tests.debian.contents TREE | gzip -9n > tests/debian/data/<name>.files.gz
"""

from __future__ import annotations

import gzip
import os
import re
import stat
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
_KVER = re.compile(r"\d+\.\d+\.\d+-\d+-(amd64|arm64|cloud-amd64|cloud-arm64)")
_KIND = {stat.S_IFREG: "f", stat.S_IFDIR: "d", stat.S_IFLNK: "l", stat.S_IFCHR: "c", stat.S_IFBLK: "b",
         stat.S_IFIFO: "p", stat.S_IFSOCK: "s"}


def _norm(text: str) -> str:
    return _KVER.sub("KVER", text)


def listing(tree: Path) -> list[str]:
    """One line per path below ``tree``: ``path kind mode uid:gid [-> target]``, sorted."""
    lines = []
    for root, dirs, files in os.walk(tree):
        for name in dirs + files:
            full = os.path.join(root, name)
            st = os.lstat(full)
            rel = "/" + os.path.relpath(full, tree)
            line = f"{_norm(rel)} {_KIND.get(stat.S_IFMT(st.st_mode), '?')} {stat.S_IMODE(st.st_mode):04o} " \
                   f"{st.st_uid}:{st.st_gid}"
            if stat.S_ISLNK(st.st_mode):
                line += " -> " + _norm(os.readlink(full))
            lines.append(line)
    return sorted(lines)


def packages(metadata: Mapping[str, Any]) -> list[str]:
    """``name arch`` of every package the bootstrap stage reported (the result's metadata)."""
    pkgs: Iterable[Mapping[str, Any]] = metadata["os"]["org.osbuildd.debian.bootstrap"]["packages"]
    return sorted(f"{p['name']} {p['arch']}" for p in pkgs)


def reference(name: str) -> list[str]:
    return gzip.decompress((DATA / f"{name}.gz").read_bytes()).decode().splitlines()


def diff(expected: list[str], got: list[str], limit: int = 40) -> str:
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    out = [f"- {line}" for line in missing[:limit]] + [f"+ {line}" for line in extra[:limit]]
    return f"{len(missing)} missing, {len(extra)} new:\n" + "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write("".join(line + "\n" for line in listing(Path(sys.argv[1]))))
