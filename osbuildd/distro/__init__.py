"""Distributions, architectures, image types and their default repositories.

The data lives in `data/` (JSON): `distros.json` (releases and repositories), `imagetypes.json`
(image types per family) and `partition_tables.json`. This module only loads and looks up.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from osbuildd.errors import ErrorKind, ServiceError

__all__ = [
    "Arch", "BootMode", "Distro", "DistroFamily", "ImageType", "Partition", "PartitionRole", "PartitionTable", "Repository",
    "UnknownArch", "UnknownDistro", "UnknownImageType", "all_customizations", "dpkg_arch", "get",
    "host", "names", "normalize_name",
]

DATA = Path(__file__).parent / "data"
ARCHES = ("x86_64", "aarch64")
# Debian's architecture names for ours.
_DPKG_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
# API aliases (upstream weldr/cloud names) that every family shares.
_API_ALIASES = {"guest-image": "qcow2", "aws": "ami", "azure": "vhd", "gcp": "gce", "vsphere": "vmdk"}


class UnknownDistro(ServiceError, LookupError):
    kind = ErrorKind.NOT_FOUND
    error_id = "DistroError"

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown distribution: {name}")
        self.name = name


class UnknownArch(ServiceError, LookupError):
    kind = ErrorKind.NOT_FOUND
    error_id = "DistroError"

    def __init__(self, distro: str, name: str) -> None:
        super().__init__(f"unknown architecture {name!r} for distribution {distro}")
        self.distro = distro
        self.name = name


class UnknownImageType(ServiceError, LookupError):
    kind = ErrorKind.NOT_FOUND
    error_id = "ComposeError"

    def __init__(self, distro: str, arch: str, name: str) -> None:
        super().__init__(f"unknown image type {name!r} for {distro}/{arch}")
        self.distro = distro
        self.arch = arch
        self.name = name


class DistroFamily(StrEnum):
    """Which package world a distribution is from (picks the depsolver and manifest generator)."""

    DEBIAN = "debian"
    RPM = "rpm"


class BootMode(StrEnum):
    LEGACY = "legacy"
    UEFI = "uefi"
    HYBRID = "hybrid"
    NONE = "none"


class PartitionRole(StrEnum):
    """What a partition is for, beyond holding a file system."""

    BIOS = "bios"   # the BIOS boot partition (grub's core image on GPT)
    ESP = "esp"     # the EFI system partition
    NONE = ""


@dataclass
class Repository:
    id: str
    name: str = ""
    baseurl: list[str] | None = None
    mirrorlist: str | None = None
    metalink: str | None = None
    gpgkeys: list[str] = field(default_factory=list)   # ASCII-armoured keys or URLs
    check_gpg: bool = False
    check_repogpg: bool = False
    sslverify: bool = True
    image_type_tags: list[str] | None = None           # only used for these image types
    rhsm: bool = False                                 # needs Red Hat subscription entitlements
    # Debian only: the suite ("bookworm-updates"), components and the keyring that signs Release.
    suite: str | None = None
    components: list[str] | None = None
    signed_by: str | None = None
    priority: int | None = None
    module_hotfixes: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (job arguments); empty fields dropped."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if value is None or value == [] or value == "":
                continue
            if key == "sslverify" and value is True:
                continue
            if key in ("check_gpg", "check_repogpg", "rhsm") and value is False:
                continue
            out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Repository:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def for_image_type(self, image_type: str) -> bool:
        return not self.image_type_tags or image_type in self.image_type_tags


@dataclass(frozen=True)
class Partition:
    size: int                   # bytes, 0 = fill the rest of the disk
    type: str                   # GPT partition type GUID
    fs_type: str | None = None  # None: no file system (BIOS boot)
    mountpoint: str | None = None
    label: str | None = None
    bootable: bool = False
    role: PartitionRole = PartitionRole.NONE


@dataclass(frozen=True)
class PartitionTable:
    name: str
    label: str
    partitions: tuple[Partition, ...]


@dataclass
class ImageType:
    name: str
    aliases: list[str]
    filename: str
    mime_type: str
    exports: list[str]
    default_size: int
    boot_mode: BootMode
    default_target: str                  # upstream upload target name
    bootable: bool
    supported_customizations: frozenset[str]
    package_sets: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    partition_table: PartitionTable | None = None
    kernel_options: str = ""
    enabled_services: list[str] = field(default_factory=list)
    disabled_services: list[str] = field(default_factory=list)
    default_target_unit: str = ""        # systemd default target
    # Small per-type switches read by the manifest generators.
    features: dict[str, bool] = field(default_factory=dict)
    # Upstream's per-type defaults: locale, timezone, keymap, x11_keymap, default_kernel.
    defaults: dict[str, str] = field(default_factory=dict)


@dataclass
class Arch:
    name: str
    repositories: list[Repository]
    image_types: dict[str, ImageType]
    distro: str = ""

    def image_type(self, name: str) -> ImageType:
        if name in self.image_types:
            return self.image_types[name]
        target = _API_ALIASES.get(name)
        if target in self.image_types:
            return self.image_types[target]
        for it in self.image_types.values():
            if name in it.aliases:
                return it
        raise UnknownImageType(self.distro, self.name, name)

    def image_type_names(self) -> list[str]:
        return sorted(self.image_types)


@dataclass
class Distro:
    name: str
    product: str
    os_version: str
    release_version: str
    codename: str
    family: DistroFamily
    module_platform_id: str
    arches: dict[str, Arch]
    runner: str = ""                     # osbuild runner of the build pipeline
    vendor: str = ""                     # UEFI vendor directory (EFI/<vendor>)

    def arch(self, name: str) -> Arch:
        try:
            return self.arches[name]
        except KeyError:
            raise UnknownArch(self.name, name) from None


def _load_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


def _key(ref: str) -> str:
    # "@file.asc" refers to a key file shipped beside the data.
    return (DATA / "keys" / ref[1:]).read_text() if ref.startswith("@") else ref


def _repositories(raw: list[dict[str, Any]], arch: str) -> list[Repository]:
    repos = []
    for r in raw:
        if arch not in r.get("arches", ARCHES):
            continue
        d = {k: v for k, v in r.items() if k != "arches"}
        if d.get("baseurl"):
            d["baseurl"] = [u.replace("{arch}", arch) for u in d["baseurl"]]
        for k in ("metalink", "mirrorlist"):
            if d.get(k):
                d[k] = d[k].replace("{arch}", arch)
        d["gpgkeys"] = [_key(k) for k in d.get("gpgkeys", [])]
        repos.append(Repository.from_dict(d))
    return repos


def _partition(raw: dict[str, Any]) -> Partition:
    return Partition(**{**raw, "role": PartitionRole(raw.get("role", ""))})


_FEATURES = ("users_stage", "sysconfig", "azure", "gce")


def _image_types(family: str, types_data: dict[str, Any], tables: dict[str, Any]) -> dict[str, ImageType]:
    cz = types_data["customizations"]
    out = {}
    for name, t in types_data["families"][family].items():
        supported = set(cz["all"])
        if family == "debian":
            supported -= set(cz["debian_unsupported"])
        if not t["bootable"]:
            supported -= set(cz["non_bootable_unsupported"])
        pt = None
        if t["partition_table"]:
            pt_raw = tables[t["partition_table"]]
            pt = PartitionTable(t["partition_table"], pt_raw["label"],
                                tuple(_partition(p) for p in pt_raw["partitions"]))
        out[name] = ImageType(
            name=name, aliases=list(t["aliases"]), filename=t["filename"], mime_type=t["mime_type"],
            exports=list(t["exports"]), default_size=t["default_size"], boot_mode=BootMode(t["boot_mode"]),
            default_target=t["default_target"], bootable=t["bootable"],
            supported_customizations=frozenset(supported), package_sets=t["package_sets"],
            partition_table=pt, kernel_options=t["kernel_options"],
            enabled_services=list(t.get("enabled_services", [])),
            disabled_services=list(t.get("disabled_services", [])),
            default_target_unit=t.get("default_target_unit", ""),
            features={f: bool(t.get(f, False)) for f in _FEATURES},
            defaults=dict(t.get("defaults", {})),
        )
    return out


_VENDORS = {"Fedora": "fedora", "CentOS Stream": "centos", "Red Hat Enterprise Linux": "redhat",
            "Debian GNU/Linux": "debian"}


@cache
def _catalogue() -> tuple[dict[str, Distro], dict[str, str]]:
    raw = _load_json("distros.json")
    types_data = _load_json("imagetypes.json")
    tables = {k: v for k, v in _load_json("partition_tables.json").items() if not k.startswith("_")}
    distros = {}
    for name, d in raw["distros"].items():
        arches = {}
        for arch in d["arches"]:
            arches[arch] = Arch(arch, _repositories(d["repositories"], arch),
                                _image_types(d["image_types"], types_data, tables), distro=name)
        distros[name] = Distro(
            name=name, product=d["product"], os_version=d["os_version"],
            release_version=d["release_version"], codename=d["codename"], family=DistroFamily(d["family"]),
            module_platform_id=d["module_platform_id"], arches=arches, runner=d.get("runner", ""),
            vendor=_VENDORS.get(d["product"], ""),
        )
    return distros, dict(raw["aliases"])


class Distros(Protocol):
    """What the services need of the distribution catalogue: this module is one
    (``Services.distros``); the Weldr tests use upstream's test distro."""

    def get(self, name: str) -> Distro: ...

    def names(self) -> list[str]: ...

    def host(self, override: str = "") -> str: ...


def normalize_name(name: str) -> str:
    """Upstream's standardisation: "fedora38" -> "fedora-38", "rhel-93" stays as given."""
    m = re.fullmatch(r"([a-z]+)(\d+(?:\.\d+)?)", name)
    return f"{m.group(1)}-{m.group(2)}" if m else name


def get(name: str) -> Distro:
    distros, aliases = _catalogue()
    canonical = normalize_name(name)
    canonical = aliases.get(canonical, canonical)
    try:
        return distros[canonical]
    except KeyError:
        raise UnknownDistro(name) from None


def names() -> list[str]:
    return sorted(_catalogue()[0])


def aliases() -> dict[str, str]:
    return dict(_catalogue()[1])


def all_customizations() -> frozenset[str]:
    return frozenset(_load_json("imagetypes.json")["customizations"]["all"])


def dpkg_arch(arch: str) -> str:
    return _DPKG_ARCH.get(arch, arch)


_CODENAMES = {"bookworm": "12", "trixie": "13"}


def host(override: str = "", os_release: Path = Path("/etc/os-release")) -> str:
    """The host's distribution name, e.g. "debian-12" (`[distros] host` config wins)."""
    if override:
        return get(override).name
    fields: dict[str, str] = {}
    try:
        for line in os_release.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                fields[k.strip()] = v.strip().strip("\"'")
    except OSError as e:
        raise UnknownDistro(f"(cannot read {os_release}: {e.strerror})") from None
    os_id = fields.get("ID", "")
    version = fields.get("VERSION_ID", "")
    if os_id == "debian" and not version:   # testing/sid have no VERSION_ID
        version = _CODENAMES.get(fields.get("VERSION_CODENAME", ""), "")
    if os_id == "centos":
        version = version.split(".")[0]
    name = f"{os_id}-{version}" if version else os_id
    try:
        return get(name).name
    except UnknownDistro:
        return name
