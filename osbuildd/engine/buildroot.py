"""The build root a stage runs in when its pipeline has a ``build`` pipeline.

The build pipeline's tree is the lower layer of an overlay (writes are thrown away, the tree and any
store object it comes from stay untouched), with /proc, /sys and /dev from the host, a tmpfs /run,
and under /run/osbuild: ``lib`` (the osbuildd package), ``tree``, ``inputs/<name>``, ``mounts``,
``api`` (stage arguments and metadata).
"""

from __future__ import annotations

from pathlib import Path

from .mounts import MountError, run

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # .../osbuildd


async def bind(src: Path | str, dst: Path, *, readonly: bool = False, recursive: bool = False) -> None:
    await run("mount", "--rbind" if recursive else "--bind", str(src), str(dst))
    if readonly:
        await run("mount", "-o", "remount,bind,ro", str(dst))


async def setup(work: Path, build_tree: Path, tree: Path, api: Path, inputs: dict[str, Path],
                mounts_root: Path) -> Path:
    root = work / "root"
    upper, wd = work / "upper", work / "overlay-work"
    for d in (root, upper, wd):
        d.mkdir(parents=True, exist_ok=True)
    try:
        await run("mount", "-t", "overlay", "overlay", "-o",
                  f"lowerdir={build_tree},upperdir={upper},workdir={wd}", str(root))
    except MountError:
        # overlay on overlay is refused by some kernels: fall back to a read-only bind
        await bind(build_tree, root, readonly=True)
    for d in ("proc", "sys", "dev", "run", "tmp"):
        if not (root / d).is_symlink():
            (root / d).mkdir(exist_ok=True)
    await run("mount", "-t", "proc", "proc", str(root / "proc"))
    await bind("/sys", root / "sys", recursive=True)
    await bind("/dev", root / "dev", recursive=True)
    await run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(root / "run"))
    osb = root / "run" / "osbuild"
    for d in ("lib/osbuildd", "tree", "api", "mounts", "inputs"):
        (osb / d).mkdir(parents=True, exist_ok=True)
    await bind(PACKAGE_DIR, osb / "lib" / "osbuildd", readonly=True)
    await bind(tree, osb / "tree")
    await bind(api, osb / "api")
    await bind(mounts_root, osb / "mounts", recursive=True)
    for name, path in inputs.items():
        (osb / "inputs" / name).mkdir(parents=True, exist_ok=True)
        await bind(path, osb / "inputs" / name, readonly=True, recursive=True)
    return root
