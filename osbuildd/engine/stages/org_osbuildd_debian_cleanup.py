"""org.osbuildd.debian.cleanup: remove what must not be baked into an image.

An image must not share a machine-id (systemd makes one on first boot from an empty file) or
carry package lists and logs of the build.
"""

from __future__ import annotations

import glob
import os
import shutil

from osbuildd.engine.stageapi import StageArgs, TreeRoot

_ROOT: TreeRoot | None = None


def _remove(pattern: str) -> None:
    # the directory part resolves inside the tree (var/cache may be a symlink); the glob is
    # only over names in it, and rmtree/unlink do not follow symlinks
    assert _ROOT is not None
    head, tail = os.path.split(pattern[len(_ROOT.root):] if pattern.startswith(_ROOT.root) else pattern)
    try:
        base = _ROOT.host_path(head)
    except (FileNotFoundError, NotADirectoryError):
        return
    for path in glob.glob(os.path.join(glob.escape(base), tail)):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def main(args: StageArgs) -> int:
    opts = args.options
    global _ROOT
    _ROOT = args.tree_root()
    t = _ROOT.root.rstrip("/")
    if opts.get("machine_id", True):
        _ROOT.write_text("/etc/machine-id", "")
        _remove(f"{t}/var/lib/dbus/machine-id")
    if opts.get("apt_lists", True):
        _remove(f"{t}/var/lib/apt/lists/*_*")
        _remove(f"{t}/var/cache/apt/*.bin")
        _remove(f"{t}/var/cache/apt/archives/*.deb")
        _remove(f"{t}/var/cache/debconf/*-old")
        _remove(f"{t}/var/lib/dpkg/*-old")
    if opts.get("ssh_host_keys", False):
        _remove(f"{t}/etc/ssh/ssh_host_*")
    if opts.get("logs", True):
        for name in ("dpkg.log", "alternatives.log", "bootstrap.log"):
            _remove(f"{t}/var/log/{name}")
        _remove(f"{t}/var/log/apt/*")
    return 0
