"""org.osbuildd.debian.cleanup: remove what must not be baked into an image.

An image must not share a machine-id (systemd makes one on first boot from an empty file) or
carry package lists and logs of the build.
"""

from __future__ import annotations

import glob
import os
import shutil

from osbuildd.engine.stageapi import StageArgs


def _remove(pattern: str) -> None:
    for path in glob.glob(pattern):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def main(args: StageArgs) -> int:
    opts = args.options
    t = args.tree.rstrip("/")
    if opts.get("machine_id", True):
        open(f"{t}/etc/machine-id", "w").close()
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
