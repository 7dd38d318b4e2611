"""Pieces every manifest generator shares: seeded ids, disk layout, disk-image stages, sources.

Everything random comes from `random.Random(seed)` so the same inputs give the same manifest bytes.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from osbuildd.blueprint.errors import BlueprintError
from osbuildd.depsolve import PackageSpec
from osbuildd.distro import ImageType, Partition, PartitionTable
from osbuildd.manifest.errors import ManifestGenerationError

SECTOR = 512
MiB = 1 << 20
GiB = 1 << 30
_FIRST_LBA = 2048            # first partition at 1 MiB (sfdisk's and upstream's default alignment)
_GPT_TAIL = 33               # sectors kept free at the end for the backup GPT
Stage = dict[str, Any]


@dataclass
class ManifestResult:
    """What a generator gives: the manifest v2 document and how to build it."""

    manifest: dict[str, Any]
    exports: list[str]
    checkpoints: list[str] = field(default_factory=list)
    filename: str = ""          # artifact file inside <outdir>/<export>/


class Seeded:
    """Deterministic ids for one manifest (uuid4-shaped, from the seed)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def vfat_id(self) -> str:
        return f"{self.rng.getrandbits(32):08X}"


@dataclass
class LaidOutPartition:
    start: int                       # sectors
    size: int                        # sectors
    type: str
    uuid: str                        # partition UUID (upper case, as sfdisk prints)
    bootable: bool = False
    fs_type: str | None = None
    fs_uuid: str = ""                # ext4/xfs: UUID; vfat: "XXXXXXXX" volume id
    label: str | None = None
    mountpoint: str | None = None
    role: str = ""

    @property
    def fstab_uuid(self) -> str:
        return f"{self.fs_uuid[:4]}-{self.fs_uuid[4:]}" if self.fs_type == "vfat" else self.fs_uuid


@dataclass
class DiskLayout:
    size: int                        # bytes
    label: str
    uuid: str
    partitions: list[LaidOutPartition] = field(default_factory=list)

    def by_mountpoint(self, mountpoint: str) -> LaidOutPartition | None:
        return next((p for p in self.partitions if p.mountpoint == mountpoint), None)

    def root(self) -> LaidOutPartition:
        root = self.by_mountpoint("/")
        assert root is not None
        return root

    def bios(self) -> LaidOutPartition | None:
        return next((p for p in self.partitions if p.role == "bios"), None)

    def esp(self) -> LaidOutPartition | None:
        return next((p for p in self.partitions if p.role == "esp"), None)

    def filesystems(self) -> list[LaidOutPartition]:
        return [p for p in self.partitions if p.fs_type]


def _align(n: int, to: int = MiB) -> int:
    return (n + to - 1) // to * to


def layout_disk(table: PartitionTable, size: int | None, minsizes: dict[str, int], ids: Seeded,
                default_size: int = 0) -> DiskLayout:
    """Place the partition table on a disk of `size` bytes (at least what the partitions need).

    `minsizes` (filesystem customization): "/" and existing mountpoints grow their partition; a new
    mountpoint becomes a new partition of the root file system type, placed before the root partition.
    """
    parts: list[Partition] = list(table.partitions)
    root_fs = next((p.fs_type for p in parts if p.mountpoint == "/"), "ext4")
    for mp, minsize in sorted(minsizes.items()):
        idx = next((i for i, p in enumerate(parts) if p.mountpoint == mp), None)
        if idx is not None:
            if parts[idx].size:     # the growing partition is sized by the disk size below
                parts[idx] = Partition(**{**parts[idx].__dict__, "size": max(parts[idx].size, _align(minsize))})
            continue
        if not minsize:
            raise BlueprintError("customizations.filesystem", f"mountpoint {mp} needs a minsize")
        # labels: xfs allows 12 characters, ext4 16
        label = mp.strip("/").replace("/", "-")[:12 if root_fs == "xfs" else 16]
        new = Partition(size=_align(minsize), type="0FC63DAF-8483-4772-8E79-3D69D8477DE4", fs_type=root_fs,
                        mountpoint=mp, label=label)
        root_idx = next(i for i, p in enumerate(parts) if p.size == 0)
        parts.insert(root_idx, new)
    fixed = sum(p.size for p in parts)
    root_min = max(minsizes.get("/", 0), GiB if any(p.mountpoint == "/" for p in parts) else 0)
    needed = _FIRST_LBA * SECTOR + fixed + _align(root_min) + MiB
    disk_size = _align(max(size or 0, default_size, needed))
    total = disk_size // SECTOR
    layout = DiskLayout(size=disk_size, label=table.label, uuid=ids.uuid().upper())
    start = _FIRST_LBA
    for p in parts:
        sectors = p.size // SECTOR if p.size else total - start - _GPT_TAIL
        fs_uuid = ids.vfat_id() if p.fs_type == "vfat" else (ids.uuid() if p.fs_type else "")
        layout.partitions.append(LaidOutPartition(
            start=start, size=sectors, type=p.type, uuid=ids.uuid().upper(), bootable=p.bootable,
            fs_type=p.fs_type, fs_uuid=fs_uuid, label=p.label, mountpoint=p.mountpoint, role=p.role))
        start += sectors
    return layout


def loopback(filename: str, part: LaidOutPartition | None = None, lock: bool = False) -> dict[str, Any]:
    opts: dict[str, Any] = {"filename": filename}
    if part is not None:
        opts["start"] = part.start
        opts["size"] = part.size
    if lock:
        opts["lock"] = True
    return {"type": "org.osbuild.loopback", "options": opts}


def truncate_stage(filename: str, layout: DiskLayout) -> Stage:
    return {"type": "org.osbuild.truncate", "options": {"filename": filename, "size": str(layout.size)}}


def sfdisk_stage(filename: str, layout: DiskLayout) -> Stage:
    parts = []
    for p in layout.partitions:
        entry: dict[str, Any] = {}
        if p.bootable:
            entry["bootable"] = True
        entry.update({"size": p.size, "start": p.start, "type": p.type, "uuid": p.uuid})
        parts.append(entry)
    return {"type": "org.osbuild.sfdisk",
            "options": {"label": layout.label, "uuid": layout.uuid, "partitions": parts},
            "devices": {"device": loopback(filename, lock=True)}}


def mkfs_stages(filename: str, layout: DiskLayout) -> list[Stage]:
    """mkfs for the ESP first, then the others in table order (as upstream)."""
    fss = sorted(layout.filesystems(), key=lambda p: p.fs_type != "vfat")
    out = []
    for p in fss:
        if p.fs_type == "vfat":
            opts: dict[str, Any] = {"volid": p.fs_uuid}
        else:
            opts = {"uuid": p.fs_uuid}
            if p.label:
                opts["label"] = p.label
        out.append({"type": f"org.osbuild.mkfs.{'fat' if p.fs_type == 'vfat' else p.fs_type}", "options": opts,
                    "devices": {"device": loopback(filename, p, lock=True)}})
    return out


_MOUNT_TYPES = {"ext4": "org.osbuild.ext4", "xfs": "org.osbuild.xfs", "vfat": "org.osbuild.fat",
                "btrfs": "org.osbuild.btrfs"}


def _mount_name(mountpoint: str) -> str:
    return "root" if mountpoint == "/" else mountpoint.strip("/").replace("/", ".")


def mounted(layout: DiskLayout) -> list[tuple[str, str, LaidOutPartition]]:
    """(mountpoint, file system type, partition) of each file system that has a mountpoint."""
    return [(p.mountpoint, p.fs_type, p) for p in layout.partitions if p.fs_type and p.mountpoint]


def copy_tree_stage(filename: str, layout: DiskLayout, tree: str = "name:os") -> Stage:
    """Copy a pipeline's tree onto the mounted file systems of the disk image."""
    fss = sorted(mounted(layout), key=lambda m: m[0].count("/") if m[0] != "/" else -1)
    devices = {_mount_name(mp): loopback(filename, p) for mp, _, p in sorted(fss, key=lambda m: _mount_name(m[0]))}
    mounts = [{"name": _mount_name(mp), "type": _MOUNT_TYPES[fs], "source": _mount_name(mp), "target": mp}
              for mp, fs, _ in fss]
    return {"type": "org.osbuild.copy",
            "inputs": {"root-tree": {"type": "org.osbuild.tree", "origin": "org.osbuild.pipeline",
                                     "references": [tree]}},
            "options": {"paths": [{"from": "input://root-tree/", "to": "mount://root/"}]},
            "devices": devices, "mounts": mounts}


def fstab_stage(layout: DiskLayout) -> Stage:
    entries = []
    # upstream orders: root, then the others by mountpoint, ESP last with passno 2
    fss = [p for p in layout.filesystems() if p.mountpoint]
    fss.sort(key=lambda p: (p.fs_type == "vfat", p.mountpoint != "/", p.mountpoint))
    for p in fss:
        e: dict[str, Any] = {"uuid": p.fstab_uuid, "vfs_type": p.fs_type, "path": p.mountpoint}
        if p.fs_type == "vfat":
            e["options"] = "defaults,uid=0,gid=0,umask=077,shortname=winnt"
            e["passno"] = 2
        else:
            e["options"] = "defaults"
        entries.append(e)
    return {"type": "org.osbuild.fstab", "options": {"filesystems": entries}}


def image_size(image_type: ImageType, requested: int | None) -> int:
    return max(requested or 0, image_type.default_size)


def curl_source(packages: list[PackageSpec]) -> dict[str, Any] | None:
    """org.osbuild.curl items pinned by checksum, sorted so the bytes never depend on set order."""
    items: dict[str, Any] = {}
    for p in packages:
        if not p.checksum.startswith("sha256:"):
            raise ManifestGenerationError(f"package {p.name}: checksum {p.checksum!r} is not sha256")
        items[p.checksum] = {"url": p.url}
    return {"items": dict(sorted(items.items()))} if items else None


def package_refs(packages: list[PackageSpec], rpm_metadata: bool = False) -> list[dict[str, Any]]:
    refs = []
    for p in packages:
        ref: dict[str, Any] = {"id": p.checksum}
        if rpm_metadata:
            ref["options"] = {"metadata": {"rpm.check_gpg": bool(p.check_gpg)}}
        refs.append(ref)
    return refs
