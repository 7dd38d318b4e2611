"""What a stage program sees: its tree, options, inputs, devices and mounts.

Stages import only this module and the standard library, because the engine may run them
inside a build root (chroot) with its own Python, where the rest of osbuildd is not importable.

The engine writes one JSON document (the "stage arguments") and runs
``python3 -m osbuildd.engine.stagerun <stage-type> <args-file>``; ``stagerun`` loads the stage
module and calls its ``main(args)``. Stage stdout/stderr become the stage's log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse


@dataclass
class StageArgs:
    tree: str  # the pipeline's tree, writable
    options: dict[str, Any] = field(default_factory=dict)
    # input name -> {"path": directory, "data": {"files": {checksum: {...}}} or {"refs": {...}}}
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"path": "/dev/loopN"}
    mounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"path": mountpoint}
    paths_mounts: str = ""  # root under which mounts live ("mount://name/x" resolves here)
    meta_path: str = ""  # file the stage's metadata is written to
    build_root: str | None = None  # set when running inside a build pipeline's tree
    source_epoch: int | None = None
    stage_type: str = ""
    stage_id: str = ""

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
        path = os.path.normpath(os.path.join(base, rel))
        if path != base and not path.startswith(base.rstrip("/") + "/"):
            raise ValueError(f"path escapes its root: {url}")
        return path

    def tree_path(self, path: str) -> str:
        """A path inside the tree, refusing anything that climbs out of it."""
        return self.resolve("tree:///" + path.lstrip("/"))

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        if self.meta_path:
            with open(self.meta_path, "w", encoding="utf-8") as f:
                json.dump(metadata, f)


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run a command with its output going to the stage log, failing loudly."""
    print("+ " + " ".join(cmd), flush=True)
    kwargs.setdefault("check", True)
    return subprocess.run(cmd, stdout=sys.stdout, stderr=sys.stderr, **kwargs)


def chroot_run(tree: str, cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run a command inside the image tree (for useradd, systemctl, update-initramfs ...).

    The tree is mounted nodev in the stage sandbox (a device node planted in a tree opens nothing),
    so the sandbox's own minimal /dev is bound over the tree's /dev, in a private mount namespace
    that vanishes with the command."""
    dev = os.path.join(tree, "dev")
    if not os.path.isdir(dev) or os.path.islink(dev) or not os.path.isdir("/dev/pts"):
        return run(["chroot", tree, *cmd], **kwargs)
    print("+ " + " ".join(["chroot", tree, *cmd]), flush=True)
    kwargs.setdefault("check", True)
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           'mount --rbind /dev "$1/dev" && exec chroot "$@"', "sh", tree, *cmd],
                          stdout=sys.stdout, stderr=sys.stderr, **kwargs)
