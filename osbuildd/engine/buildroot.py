"""The build root a stage runs in when its pipeline has a ``build`` pipeline.

The build pipeline's tree is the lower layer of an overlay: a stage's writes to its build root land
in scratch space and are thrown away, the tree and any store object it comes from stay untouched.
Everything else (``/proc``, ``/dev``, ``/run/osbuild/...``) is set up by the stage sandbox
(``bwrap.py``) on top of this root.
"""

from __future__ import annotations

from pathlib import Path

from .bwrap import PACKAGE_DIR
from .mounts import MountError, run

__all__ = ["PACKAGE_DIR", "bind", "setup"]


async def bind(src: Path | str, dst: Path, *, readonly: bool = False, recursive: bool = False) -> None:
    await run("mount", "--rbind" if recursive else "--bind", str(src), str(dst))
    if readonly:
        await run("mount", "-o", "remount,bind,ro", str(dst))


async def setup(work: Path, build_tree: Path) -> Path:
    root = work / "root"
    upper, wd = work / "upper", work / "overlay-work"
    for d in (root, upper, wd):
        d.mkdir(parents=True, exist_ok=True)
    try:
        await run("mount", "-t", "overlay", "overlay", "-o",
                  f"lowerdir={build_tree},upperdir={upper},workdir={wd}", str(root))
    except MountError:
        # overlay on overlay is refused by some kernels: fall back to a read-only bind; the mount
        # points the sandbox needs must exist in the tree then
        await bind(build_tree, root, readonly=True)
    return root
