"""Manifests for Debian image types, built by the bundled engine on a Debian host.

No build pipeline: the Debian stages run on the host (mmdebstrap, grub-mkimage, mtools), so a cold
build costs what a plain mmdebstrap costs. Pipelines:

  os      bootstrap (pinned .debs) -> apt sources -> customizations -> fstab -> grub.config
          -> initramfs -> cleanup
  image   truncate -> sfdisk -> mkfs.fat/ext4 -> copy (ext4 file systems only: FAT cannot be
          mounted here, grub.install fills the ESP with mtools) -> grub.install
  format  qemu (qcow2/vpc/vmdk), tar (tar rootfs, gce's image.tar.gz), oci-archive (container)

Checkpoints are the bootstrap stage and `os`: another image with the same package set reuses the
bootstrapped tree, and one with the same os (qcow2 -> vhd -> vmdk) skips the os pipeline.
"""

from __future__ import annotations

import re
from typing import Any

from osbuildd.blueprint.errors import BlueprintError
from osbuildd.common import stageids
from osbuildd.depsolve import PackageSetRequest, PackageSpec
from osbuildd.distro import Distro, ImageType, repocheck
from osbuildd.manifest import common
from osbuildd.manifest import customizations as cz
from osbuildd.manifest.common import ManifestResult
from osbuildd.manifest.customizations import BlueprintInput
from osbuildd.manifest.errors import ManifestGenerationError

DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
EFI_PLATFORM = {"x86_64": "x86_64-efi", "aarch64": "arm64-efi"}
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# systemd-networkd config for images without cloud-init (which writes its own network config)
NETWORKD_DHCP = b"[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


def _deb_arch(arch: str) -> str:
    try:
        return DEB_ARCH[arch]
    except KeyError:
        raise BlueprintError("arch", f"architecture {arch!r} is not supported for Debian images") from None


# --------------------------------------------------------------------------- package sets

def _blueprint_packages(bp: BlueprintInput) -> list[str]:
    """Blueprint packages as apt specs: ``name`` or ``name=version-glob``."""
    d = cz.blueprint_dict(bp)
    out = []
    for i, p in enumerate((d.get("packages") or []) + (d.get("modules") or [])):
        name = p.get("name") or ""
        if not _NAME_RE.match(name):
            raise BlueprintError(f"packages[{i}].name", f"invalid Debian package name {name!r}")
        version = (p.get("version") or "").strip()
        out.append(name if version in ("", "*") else f"{name}={version}")
    return out


def validate_for(distro: Distro, image_type: ImageType, bp: BlueprintInput) -> None:
    d = cz.blueprint_dict(bp)
    if d.get("groups"):
        raise BlueprintError("groups", "package groups do not exist on Debian: list the packages instead")
    if d.get("enabled_modules"):
        raise BlueprintError("enabled_modules", "module streams do not exist on Debian")
    kernel = ((d.get("customizations") or {}).get("kernel") or {}).get("name") or ""
    if kernel and not _NAME_RE.match(kernel):   # it replaces the image type's linux-image-* package
        raise BlueprintError("customizations.kernel.name",
                             f"customizations.kernel.name: invalid Debian package name {kernel!r}")


def package_sets(distro: Distro, arch: str, image_type: ImageType, bp: BlueprintInput) -> dict[str, PackageSetRequest]:
    deb = _deb_arch(arch)
    c = cz.customizations(bp)
    include = []
    kernel = (c.get("kernel") or {}).get("name")
    for name in (image_type.package_sets.get("os") or {}).get("include", []):
        name = name.format(kernel_arch=deb, efi_arch=deb)
        if arch != "x86_64" and name == "grub-pc-bin":
            continue  # no BIOS outside x86
        if kernel and name.startswith("linux-image-"):
            name = kernel
        include.append(name)
    if image_type.bootable:
        include += ["initramfs-tools", "e2fsprogs"]
    include.append("tzdata")   # org.osbuild.timezone links /etc/localtime into it
    langs = (c.get("locale") or {}).get("languages") or []
    if any(lang not in ("C", "C.UTF-8", "C.utf8", "POSIX") for lang in langs):
        include.append("locales")
    if (c.get("locale") or {}).get("keyboard"):
        include.append("keyboard-configuration")
    include += cz.extra_packages(c, "debian")
    include += _blueprint_packages(bp)
    exclude = list((image_type.package_sets.get("os") or {}).get("exclude", []))
    repos = list(distro.arch(arch).repositories)
    return {"os": PackageSetRequest(include=list(dict.fromkeys(include)), exclude=exclude, repositories=repos)}


# --------------------------------------------------------------------------- pipelines

def _bootstrap_stage(distro: Distro, arch: str, packages: list[PackageSpec]) -> dict[str, Any]:
    refs: dict[str, dict[str, Any]] = {p.checksum: {} for p in sorted(packages, key=lambda p: p.checksum)}
    return {"type": "org.osbuildd.debian.bootstrap",
            "inputs": {"packages": {"type": "org.osbuild.files", "origin": "org.osbuild.source",
                                    "references": refs}},
            "options": {"architecture": _deb_arch(arch), "suite": distro.codename}}


def _apt_sources_stage(distro: Distro, arch: str) -> dict[str, Any]:
    sources = []
    for r in distro.arch(arch).repositories:
        # the image's apt sources: grammar only (key paths name files of the image, not the host)
        repocheck.check_deb(r, must_exist=False)
        sources.append({"filename": f"{r.id}.sources", "types": ["deb"], "uris": list(r.baseurl or []),
                        "suites": [r.suite], "components": list(r.components or ["main"]),
                        "signed_by": r.signed_by or KEYRING})
    return {"type": "org.osbuildd.apt.sources", "options": {"sources": sources}}


def _grub_platforms(arch: str, image_type: ImageType) -> list[str]:
    if arch == "x86_64" and image_type.boot_mode in ("hybrid", "legacy"):
        return ["i386-pc", EFI_PLATFORM[arch]] if image_type.boot_mode == "hybrid" else ["i386-pc"]
    return [EFI_PLATFORM[arch]]


def _os_pipeline(distro: Distro, arch: str, image_type: ImageType, bp: BlueprintInput, packages: list[PackageSpec],
                 layout: common.DiskLayout | None, inline: cz.InlineFiles, ids: common.Seeded) -> dict[str, Any]:
    c = cz.customizations(bp)
    stages: list[dict[str, Any]] = [_bootstrap_stage(distro, arch, packages), _apt_sources_stage(distro, arch)]
    names = {p.name for p in packages}
    enabled = list(image_type.enabled_services)
    if layout and "cloud-init" not in names:
        stages.append(cz.copy_stage([(inline.add(NETWORKD_DHCP), "/etc/systemd/network/80-dhcp.network")]))
        enabled.append("systemd-networkd.service")
    stages += cz.os_stages(c, family="debian", codename=distro.codename, inline=inline, rng=ids.rng,
                           default_language="C.UTF-8", default_hostname="debian", default_timezone="UTC",
                           enabled_services=enabled, default_target=image_type.default_target_unit)
    if layout:
        stages.append({"type": "org.osbuild.mkdir",
                       "options": {"paths": [{"path": p.mountpoint, "parents": True, "exist_ok": True}
                                             for p in layout.filesystems() if p.mountpoint not in (None, "/")]}})
        stages.append(common.fstab_stage(layout))
        stages.append({"type": "org.osbuildd.grub.config", "options": {
            "root_fs_uuid": layout.root().fs_uuid,
            "kernel_opts": cz.kernel_options("ro " + image_type.kernel_options, c),
            "timeout": 1, "platforms": _grub_platforms(arch, image_type)}})
        stages.append({"type": "org.osbuildd.debian.initramfs", "options": {}})
    stages.append({"type": "org.osbuildd.debian.cleanup", "options": {}})
    return {"name": "os", "stages": stages}


def _ext4_copy_stage(filename: str, layout: common.DiskLayout) -> dict[str, Any]:
    """The os tree onto the disk's mounted ext4 file systems (root first, then deeper ones)."""
    fss = [(mp, p) for mp, fs, p in common.mounted(layout) if fs != "vfat"]
    fss.sort(key=lambda m: (m[0] != "/", m[0].count("/"), m[0]))

    def mname(mountpoint: str) -> str:
        return "root" if mountpoint == "/" else mountpoint.strip("/").replace("/", ".")

    return {"type": "org.osbuild.copy",
            "inputs": {"root-tree": {"type": "org.osbuild.tree", "origin": "org.osbuild.pipeline",
                                     "references": ["name:os"]}},
            "options": {"paths": [{"from": "input://root-tree/", "to": "mount://root/"}]},
            "devices": {mname(mp): common.loopback(filename, p) for mp, p in sorted(fss, key=lambda m: mname(m[0]))},
            "mounts": [{"name": mname(mp), "type": "org.osbuild.ext4", "source": mname(mp), "target": mp}
                       for mp, _ in fss]}


def _image_pipeline(arch: str, image_type: ImageType, filename: str, layout: common.DiskLayout) -> dict[str, Any]:
    stages = [common.truncate_stage(filename, layout), common.sfdisk_stage(filename, layout)]
    stages += common.mkfs_stages(filename, layout)
    stages.append(_ext4_copy_stage(filename, layout))
    grub: dict[str, Any] = {"filename": filename, "root_fs_uuid": layout.root().fs_uuid}
    bios, esp = layout.bios(), layout.esp()
    if bios is not None and arch == "x86_64" and image_type.boot_mode in ("hybrid", "legacy"):
        grub["bios"] = {"core_start": bios.start, "core_max_size": bios.size}
    if esp is not None and image_type.boot_mode in ("hybrid", "uefi"):
        grub["uefi"] = {"esp_start": esp.start, "platform": EFI_PLATFORM[arch]}
    stages.append({"type": "org.osbuildd.grub.install",
                   "inputs": {"tree": {"type": "org.osbuild.tree", "origin": "org.osbuild.pipeline",
                                       "references": ["name:os"]}},
                   "options": grub})
    return {"name": "image", "stages": stages}


def _file_input(pipeline: str, filename: str) -> dict[str, Any]:
    return {"type": "org.osbuild.files", "origin": "org.osbuild.pipeline",
            "references": {f"name:{pipeline}": {"file": filename}}}


def _tree_input(pipeline: str) -> dict[str, Any]:
    return {"type": "org.osbuild.tree", "origin": "org.osbuild.pipeline", "references": [f"name:{pipeline}"]}


QEMU_FORMATS: dict[str, dict[str, Any]] = {
    "qcow2": {"type": "qcow2", "compat": "1.1"},
    "vhd": {"type": "vpc", "force_size": True, "subformat": "fixed"},
    "vmdk": {"type": "vmdk", "subformat": "streamOptimized"},
}


def format_pipeline(arch: str, image_type: ImageType, disk_file: str) -> dict[str, Any] | None:
    """The export pipeline after `image` (or after `os` for tar/container); None when `image` is it."""
    name, export = image_type.name, image_type.exports[0]
    if name in QEMU_FORMATS:
        stage = {"type": "org.osbuild.qemu", "inputs": {"image": _file_input("image", disk_file)},
                 "options": {"filename": image_type.filename, "format": QEMU_FORMATS[name]}}
    elif name == "gce":
        stage = {"type": "org.osbuild.tar", "inputs": {"tree": _tree_input("image")},
                 "options": {"filename": image_type.filename, "format": "oldgnu",
                             "paths": [disk_file], "sparse": True, "acls": False, "selinux": False,
                             "xattrs": False}}
    elif name == "tar":
        stage = {"type": "org.osbuild.tar", "inputs": {"tree": _tree_input("os")},
                 "options": {"filename": image_type.filename, "selinux": False}}
    elif name == "container":
        stage = {"type": "org.osbuild.oci-archive", "inputs": {"base": _tree_input("os")},
                 "options": {"architecture": _deb_arch(arch), "filename": image_type.filename,
                             "config": {"Cmd": ["/bin/bash"]}}}
    else:
        return None
    return {"name": export, "stages": [stage]}


def disk_file(image_type: ImageType) -> str:
    """The raw disk inside `image`: the artifact itself for raw exports."""
    return image_type.filename if image_type.exports == ["image"] else "disk.raw"


def generate(distro: Distro, arch: str, image_type: ImageType, bp: BlueprintInput,
             depsolved: dict[str, list[PackageSpec]], seed: int, size: int | None = None) -> ManifestResult:
    if "os" not in depsolved:
        raise ManifestGenerationError("depsolved package set 'os' missing")
    validate_for(distro, image_type, bp)
    ids = common.Seeded(seed)
    inline = cz.InlineFiles()
    c = cz.customizations(bp)
    layout = None
    if image_type.partition_table is not None:
        layout = common.layout_disk(image_type.partition_table, size, cz.filesystem_minsizes(c), ids,
                                    image_type.default_size)
    pipelines = [_os_pipeline(distro, arch, image_type, bp, depsolved["os"], layout, inline, ids)]
    dfile = disk_file(image_type)
    if layout:
        pipelines.append(_image_pipeline(arch, image_type, dfile, layout))
    fmt = format_pipeline(arch, image_type, dfile)
    if fmt:
        pipelines.append(fmt)
    sources: dict[str, Any] = {}
    curl = common.curl_source(depsolved["os"])
    if curl:
        sources["org.osbuild.curl"] = curl
    inl = inline.source()
    if inl:
        sources["org.osbuild.inline"] = inl
    manifest = {"version": "2", "pipelines": pipelines, "sources": sources}
    return ManifestResult(manifest=manifest, exports=list(image_type.exports),
                          checkpoints=[bootstrap_id(manifest), "os"], filename=image_type.filename)


def bootstrap_id(manifest: dict[str, Any]) -> str:
    """The osbuild id of the bootstrap stage (depends only on the packages, arch and suite): the
    checkpoint that lets a rebuild with the same packages skip the bootstrap."""
    return stageids.stage_ids(manifest, "os")[0]
