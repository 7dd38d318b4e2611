"""Manifests for Fedora / CentOS Stream / RHEL image types, run by upstream osbuild on an RPM host.

Pipelines and stage order follow osbuild/images' reference manifests (copies in tests/data/images/manifests):
build (rpm, selinux) -> os (kernel-cmdline, rpm, fix-bls, locale, ..., fstab, grub2, files, systemd,
selinux) -> image (truncate, sfdisk, mkfs, copy, grub2.inst) -> format (qemu / tar / xz / oci-archive).
Only upstream stages are used.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from osbuildd.blueprint import Blueprint
from osbuildd.blueprint.errors import BlueprintError
from osbuildd.depsolve import PackageSetRequest, PackageSpec
from osbuildd.distro import Distro, ImageType
from osbuildd.manifest import common
from osbuildd.manifest import customizations as cz
from osbuildd.manifest.common import ManifestResult
from osbuildd.manifest.customizations import BlueprintInput
from osbuildd.manifest.errors import ManifestGenerationError

_DATA = Path(__file__).parent / "data"
_SELINUX = "etc/selinux/targeted/contexts/files/file_contexts"
_INSTALL_EXEC = "system_u:object_r:install_exec_t:s0"
# Packages the build root needs to run the stages above (upstream's build package set).
_BUILD_PACKAGES = ["dnf", "dosfstools", "e2fsprogs", "glibc", "policycoreutils", "python3", "qemu-img",
                   "rpm", "selinux-policy-targeted", "systemd", "tar", "xfsprogs", "xz", "lvm2"]
# Disk file inside the image pipeline, per image type (as upstream names it).
_DISK_FILE = {"qcow2": "disk.img", "vhd": "disk.img", "ami": "image.raw", "gce": "disk.raw",
              "minimal-raw": "disk.raw"}


@cache
def _type_stages() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((_DATA / "type_stages.json").read_text())
    return data


def _arch_names(names: list[str], arch: str) -> list[str]:
    """The data names x86_64 boot packages; map them for aarch64 (no BIOS GRUB there)."""
    if arch == "x86_64":
        return names
    out = []
    for n in names:
        if n == "grub2-pc":
            continue
        out.append(n.replace("-x64", "-aa64"))
    return out


def _blueprint_packages(bp: BlueprintInput) -> list[str]:
    if isinstance(bp, Blueprint):
        return list(bp.package_specs())
    d = cz.blueprint_dict(bp)
    out = []
    for p in (d.get("packages") or []) + (d.get("modules") or []):
        v = p.get("version") or ""
        out.append(p["name"] if v in ("", "*") else f"{p['name']}-{v}")
    out += ["@" + g["name"] for g in d.get("groups") or []]
    return out


def validate_for(distro: Distro, image_type: ImageType, bp: BlueprintInput) -> None:
    if cz.blueprint_dict(bp).get("enabled_modules"):
        # the dnf helper does not switch module streams; refusing beats silently ignoring
        raise BlueprintError("enabled_modules", "enabling module streams is not supported by osbuildd")


def package_sets(distro: Distro, arch: str, image_type: ImageType, bp: BlueprintInput) -> dict[str, PackageSetRequest]:
    repos = [r for r in distro.arch(arch).repositories if r.for_image_type(image_type.name)]
    c = cz.customizations(bp)
    os_set = image_type.package_sets.get("os", {})
    include = _arch_names(list(os_set.get("include", [])), arch)
    if (c.get("kernel") or {}).get("name"):    # the blueprint's kernel replaces the type's
        include = [n for n in include if n not in ("kernel", "kernel-core")]
    include += cz.extra_packages(c, "rpm") + _blueprint_packages(bp)
    build = list(_BUILD_PACKAGES)
    if image_type.boot_mode in ("hybrid", "legacy") and arch == "x86_64":
        build.append("grub2-pc")
    return {
        "build": PackageSetRequest(include=build, repositories=repos),
        "os": PackageSetRequest(include=list(dict.fromkeys(include)), exclude=list(os_set.get("exclude", [])),
                                repositories=repos),
    }


def _gpgkeys(distro: Distro, arch: str) -> list[str]:
    keys: list[str] = []
    for r in distro.arch(arch).repositories:
        for k in r.gpgkeys:
            if k.lstrip().startswith("-----BEGIN PGP") and k not in keys:
                keys.append(k)
    return keys


def _rpm_stage(packages: list[PackageSpec], gpgkeys: list[str], **extra: object) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if gpgkeys:
        opts["gpgkeys"] = gpgkeys
    opts.update(extra)
    return {"type": "org.osbuild.rpm",
            "inputs": {"packages": {"type": "org.osbuild.files", "origin": "org.osbuild.source",
                                    "references": common.package_refs(packages, rpm_metadata=True)}},
            "options": opts}


def _kernel(packages: list[PackageSpec], bp: BlueprintInput) -> PackageSpec | None:
    wanted = ((cz.customizations(bp).get("kernel") or {}).get("name")) or ""
    for name in (wanted, "kernel-core", "kernel"):
        for p in packages:
            if name and p.name == name:
                return p
    return None


def _grub2_stage(distro: Distro, arch: str, image_type: ImageType, layout: common.DiskLayout,
                 kernel_opts: str, kernel: PackageSpec | None) -> dict[str, Any]:
    opts: dict[str, Any] = {"root_fs_uuid": layout.root().fs_uuid}
    boot = layout.by_mountpoint("/boot")
    if boot:
        opts["boot_fs_uuid"] = boot.fs_uuid
    opts["kernel_opts"] = kernel_opts
    if image_type.boot_mode in ("hybrid", "legacy") and arch == "x86_64":
        opts["legacy"] = "i386-pc"
    if image_type.boot_mode in ("hybrid", "uefi"):
        opts["uefi"] = {"vendor": distro.vendor, "unified": True}
    if kernel:
        opts["saved_entry"] = f"ffffffffffffffffffffffffffffffff-{kernel.version}-{kernel.release}.{kernel.arch}"
    opts["write_cmdline"] = False
    opts["config"] = {"default": "saved"}
    return {"type": "org.osbuild.grub2", "options": opts}


def _grub2_inst_stage(filename: str, layout: common.DiskLayout) -> dict[str, Any]:
    bios = layout.bios()
    assert bios is not None
    boot = layout.by_mountpoint("/boot")
    target = boot or layout.root()
    return {"type": "org.osbuild.grub2.inst", "options": {
        "filename": filename, "platform": "i386-pc", "location": bios.start,
        "core": {"type": "mkimage", "partlabel": layout.label, "filesystem": target.fs_type},
        "prefix": {"type": "partition", "partlabel": layout.label, "number": layout.partitions.index(target),
                   "path": "/grub2" if boot else "/boot/grub2"}}}


def _sysconfig_stage(image_type: ImageType) -> dict[str, Any]:
    opts: dict[str, Any] = {"kernel": {"update_default": True,
                                       "default_kernel": image_type.defaults.get("default_kernel", "kernel")}}
    if not image_type.features.get("gce"):
        opts["network"] = {"networking": True, "no_zero_conf": True}
    return {"type": "org.osbuild.sysconfig", "options": opts}


def _os_pipeline(distro: Distro, arch: str, image_type: ImageType, bp: BlueprintInput, packages: list[PackageSpec],
                 layout: common.DiskLayout | None, inline: cz.InlineFiles, ids: common.Seeded) -> dict[str, Any]:
    c = cz.customizations(bp)
    fedora = distro.product == "Fedora"
    fips = c.get("fips") is True
    kernel_opts = cz.kernel_options(image_type.kernel_options, c)
    if fips:
        kernel_opts = f"{kernel_opts} fips=1".strip()
    stages: list[dict[str, Any]] = []
    if layout:
        stages.append({"type": "org.osbuild.kernel-cmdline",
                       "options": {"root_fs_uuid": layout.root().fs_uuid, "kernel_opts": kernel_opts}})
    if fips:   # before rpm: the kernel's initramfs is built while packages install
        stages.append({"type": "org.osbuild.dracut.conf",
                       "options": {"filename": "40-fips.conf", "config": {"add_dracutmodules": ["fips"]}}})
    rpm_extra: dict[str, Any] = {"exclude": {"docs": True}} if image_type.name == "container" else {}
    stages.append(_rpm_stage(packages, _gpgkeys(distro, arch), **rpm_extra))
    stages.append({"type": "org.osbuild.fix-bls", "options": {"prefix": ""} if layout else {}})
    dflt = image_type.defaults
    stages += cz.locale_stages(c, "rpm", dflt.get("locale") or ("en_US" if fedora else "en_US.UTF-8"),
                               dflt.get("keymap", ""), dflt.get("x11_keymap", ""))
    for s in (cz.hostname_stage(c, "localhost.localdomain" if fedora else None),
              cz.timezone_stage(c, dflt.get("timezone", "UTC"))):
        if s:
            stages.append(s)
    extras = _type_stages()
    gce = image_type.features.get("gce")
    chrony = cz.chrony_stage(c) or ({"type": "org.osbuild.chrony", "options": extras["gce_chrony"]} if gce else None)
    for s in (chrony, cz.groups_stage(c), cz.users_stage(c, ids.rng)):
        if s:
            stages.append(s)
    fw = cz.firewall_stage(c)
    if gce:
        fw = fw or {"type": "org.osbuild.firewall", "options": {}}
        fw["options"] = {**fw["options"], **extras["gce_firewall"]}
    if fw:
        stages.append(fw)
    if image_type.features.get("sysconfig"):
        stages.append(_sysconfig_stage(image_type))
    rhel = distro.product.startswith("Red Hat")
    for key in ("vhd", "gce"):
        if image_type.features.get({"vhd": "azure", "gce": "gce"}[key]):
            for s in extras[key]:
                if s.get("rhel_only") and not rhel:
                    continue
                stages.append({k: v for k, v in s.items() if k != "rhel_only"})
    stages += cz.repositories_stages(c, "rpm", distro.codename, inline)
    stages += cz.cacerts_stages(c, inline)
    if layout:
        stages.append(common.fstab_stage(layout))
        stages.append(_grub2_stage(distro, arch, image_type, layout, kernel_opts, _kernel(packages, bp)))
    stages += cz.directories_files_stages(c, inline)
    systemd = cz.systemd_stage(c, image_type.enabled_services, image_type.disabled_services,
                               image_type.default_target_unit)
    if systemd:
        stages.append(systemd)
    if fips:
        stages.append({"type": "org.osbuild.update-crypto-policies", "options": {"policy": "FIPS"}})
    if image_type.name != "container":    # upstream labels no container tree
        stages.append({"type": "org.osbuild.selinux", "options": {"file_contexts": _SELINUX}})
    return {"name": "os", "build": "name:build", "stages": stages}


def _image_pipeline(arch: str, image_type: ImageType, filename: str, layout: common.DiskLayout) -> dict[str, Any]:
    stages = [common.truncate_stage(filename, layout), common.sfdisk_stage(filename, layout)]
    stages += common.mkfs_stages(filename, layout)
    stages.append(common.copy_tree_stage(filename, layout))
    if image_type.boot_mode in ("hybrid", "legacy") and arch == "x86_64" and layout.bios():
        stages.append(_grub2_inst_stage(filename, layout))
    return {"name": "image", "build": "name:build", "stages": stages}


def _file_input(pipeline: str, filename: str) -> dict[str, Any]:
    return {"type": "org.osbuild.files", "origin": "org.osbuild.pipeline",
            "references": {f"name:{pipeline}": {"file": filename}}}


def _tree_input(pipeline: str) -> dict[str, Any]:
    return {"type": "org.osbuild.tree", "origin": "org.osbuild.pipeline", "references": [f"name:{pipeline}"]}


def _format_pipeline(arch: str, image_type: ImageType, disk_file: str) -> dict[str, Any] | None:
    export = image_type.exports[0]
    name = image_type.name
    if name in ("qcow2", "vhd"):
        fmt = {"type": "qcow2", "compat": "1.1"} if name == "qcow2" else {"type": "vpc", "force_size": True,
                                                                         "subformat": "fixed"}
        stage = {"type": "org.osbuild.qemu", "inputs": {"image": _file_input("image", disk_file)},
                 "options": {"filename": image_type.filename, "format": fmt}}
    elif name == "gce":
        stage = {"type": "org.osbuild.tar", "inputs": {"tree": _tree_input("image")},
                 "options": {"filename": image_type.filename, "format": "oldgnu", "acls": False,
                             "selinux": False, "xattrs": False, "root-node": "omit"}}
    elif name == "minimal-raw":
        stage = {"type": "org.osbuild.xz", "inputs": {"file": _file_input("image", disk_file)},
                 "options": {"filename": image_type.filename}}
    elif name == "tar":
        stage = {"type": "org.osbuild.tar", "inputs": {"tree": _tree_input("os")},
                 "options": {"filename": image_type.filename}}
    elif name == "container":
        stage = {"type": "org.osbuild.oci-archive", "inputs": {"base": _tree_input("os")},
                 "options": {"architecture": arch, "filename": image_type.filename, "config": {}}}
    else:
        return None
    return {"name": export, "build": "name:build", "stages": [stage]}


def generate(distro: Distro, arch: str, image_type: ImageType, bp: BlueprintInput,
             depsolved: dict[str, list[PackageSpec]], seed: int, size: int | None = None) -> ManifestResult:
    """The manifest and its exports; raises BlueprintError for a blueprint it cannot honour."""
    for name in ("build", "os"):
        if name not in depsolved:
            raise ManifestGenerationError(f"depsolved package set {name!r} missing")
    ids = common.Seeded(seed)
    inline = cz.InlineFiles()
    c = cz.customizations(bp)
    layout = None
    if image_type.partition_table is not None:
        layout = common.layout_disk(image_type.partition_table, size, cz.filesystem_minsizes(c), ids,
                                    image_type.default_size)
    labels = {"/usr/bin/cp": _INSTALL_EXEC}
    if image_type.name in ("tar", "gce", "container"):
        labels["/usr/bin/tar"] = _INSTALL_EXEC
    build = {"name": "build", "runner": distro.runner, "stages": [
        _rpm_stage(depsolved["build"], _gpgkeys(distro, arch)),
        {"type": "org.osbuild.selinux", "options": {"file_contexts": _SELINUX, "labels": labels}}]}
    pipelines = [build, _os_pipeline(distro, arch, image_type, bp, depsolved["os"], layout, inline, ids)]
    disk_file = _DISK_FILE.get(image_type.name, "disk.img")
    if layout:
        pipelines.append(_image_pipeline(arch, image_type, disk_file, layout))
    fmt = _format_pipeline(arch, image_type, disk_file)
    if fmt and fmt["name"] != "image":
        pipelines.append(fmt)
    sources: dict[str, Any] = {}
    curl = _curl_source(distro, arch, depsolved["build"] + depsolved["os"])
    if curl:
        sources["org.osbuild.curl"] = curl
    inl = inline.source()
    if inl:
        sources["org.osbuild.inline"] = inl
    # upstream osbuild caches the build pipeline: it is the checkpoint
    return ManifestResult(manifest={"version": "2", "pipelines": pipelines, "sources": sources},
                          exports=list(image_type.exports), checkpoints=["build"], filename=image_type.filename)


def _curl_source(distro: Distro, arch: str, packages: list[PackageSpec]) -> dict[str, Any] | None:
    rhsm = {r.id for r in distro.arch(arch).repositories if r.rhsm}
    src = common.curl_source(packages)
    if src and rhsm:
        by_sum = {p.checksum: p for p in packages}
        for checksum, item in src["items"].items():
            if by_sum[checksum].repo_id in rhsm:
                item["secrets"] = {"name": "org.osbuild.rhsm"}
    return src
