"""Mounts (``org.osbuild.ext4``, ``xfs``, ``btrfs``, ``fat``, ``noop``) and the mount helper.

The engine runs in its own mount namespace (see ``sandbox.py``), so nothing mounted here is visible
on the host and everything vanishes with the engine even when it is killed.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .devices import LoopDevice
from .manifest import Mount

FSTYPES = {"org.osbuild.ext4": "ext4", "org.osbuild.xfs": "xfs", "org.osbuild.btrfs": "btrfs",
           "org.osbuild.fat": "vfat", "org.osbuild.erofs": "erofs", "org.osbuild.squashfs": "squashfs"}


class MountError(RuntimeError):
    pass


MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}


async def _mtools(*cmd: str) -> str:
    """stdout of an mtools command (its stderr has harmless geometry warnings on loop devices)."""
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=MTOOLS_ENV)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise MountError(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode(errors='replace').strip()}")
    return out.decode(errors="replace")


@dataclass
class FatStaging:
    """A FAT file system "mounted" through a directory: this kernel cannot mount vfat, so the
    content is read out with mtools before the stage and written back after it."""

    device: str
    staging: Path

    async def read(self) -> None:
        entries = (await _mtools("mdir", "-i", self.device, "-b", "::/")).splitlines()
        if entries:
            await _mtools("mcopy", "-s", "-p", "-n", "-i", self.device, "::/*", f"{self.staging}/")

    async def write_back(self) -> None:
        for entry in (await _mtools("mdir", "-i", self.device, "-b", "::/")).splitlines():
            if entry.endswith("/"):
                await _mtools("mdeltree", "-i", self.device, entry.rstrip("/"))
            else:
                await _mtools("mdel", "-i", self.device, entry)
        names = sorted(os.listdir(self.staging))
        if names:
            await _mtools("mcopy", "-s", "-p", "-Q", "-i", self.device,
                          *[str(self.staging / n) for n in names], "::/")


async def run(*cmd: str) -> str:
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise MountError(f"{' '.join(cmd)} failed ({proc.returncode}): {text.strip()}")
    return text


async def unmount(path: Path) -> None:
    """Unmount ``path`` and everything below it; lazily when something still holds it busy."""
    proc = await asyncio.create_subprocess_exec("umount", "-R", str(path), stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    if await proc.wait() != 0:
        proc = await asyncio.create_subprocess_exec("umount", "-R", "-l", str(path),
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.DEVNULL)
        await proc.wait()


async def partition_loop(dev: LoopDevice, partition: int) -> LoopDevice:
    """A loop device for one partition of ``dev`` (no udev here, so no /dev/loopNpM nodes)."""
    table = json.loads(await run("sfdisk", "--json", dev.path))["partitiontable"]
    sector = int(table.get("sectorsize", 512))
    parts = table.get("partitions", [])
    if not 1 <= partition <= len(parts):
        raise MountError(f"{dev.path} has no partition {partition}")
    p = parts[partition - 1]
    return await asyncio.to_thread(LoopDevice.attach, Path(dev.path), int(p["start"]) * sector,
                                   int(p["size"]) * sector, sector)


async def mount_one(mnt: Mount, device: LoopDevice | None, root: Path, extra: list[LoopDevice],
                    fat: list[FatStaging] | None = None, scratch: Path | None = None) -> Path | None:
    target = root / mnt.target.lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    if mnt.type == "org.osbuild.noop":
        return None
    fstype = FSTYPES.get(mnt.type)
    if fstype is None:
        raise MountError(f"mount type {mnt.type} is not supported by osbuildd-engine")
    if device is None:
        raise MountError(f"mount '{mnt.name}' needs a source device")
    if mnt.partition:
        device = await partition_loop(device, int(mnt.partition))
        extra.append(device)
    if fstype == "vfat" and fat is not None and scratch is not None:
        staging = FatStaging(device.path, scratch / f"fat-{mnt.name}")
        staging.staging.mkdir(parents=True)
        await staging.read()
        await run("mount", "--bind", str(staging.staging), str(target))
        if mnt.options.get("readonly"):
            await run("mount", "-o", "remount,bind,ro", str(target))
        else:
            fat.append(staging)
        return target
    opts: list[str] = []
    o: dict[str, Any] = mnt.options
    if o.get("readonly"):
        opts.append("ro")
    if o.get("norecovery"):
        opts.append("norecovery")
    cmd = ["mount", "-t", fstype]
    if opts:
        cmd += ["-o", ",".join(opts)]
    try:
        await run(*cmd, device.path, str(target))
    except MountError as e:
        if fstype == "vfat":
            raise MountError(f"mount '{mnt.name}': this kernel cannot mount vfat; write FAT file systems with "
                             f"mtools instead ({e})") from None
        raise
    return target
