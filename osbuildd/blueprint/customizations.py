"""Blueprint customizations: every section of upstream's ``[customizations]``, in upstream's field
order and with upstream's wire keys (JSON keys == TOML keys).

Class names follow upstream's Go type names because Go-style type errors quote them.
``X | None`` fields are Go pointers (kept when set to a zero value); plain fields are Go values.
"""

from __future__ import annotations

import dataclasses
import os.path
import re
from dataclasses import dataclass
from typing import Any

from .codec import DecodeContext, encode, fld, join, type_error
from .errors import BlueprintError
from .pathpolicy import path_limit_error

# ----------------------------------------------------------------------------- small sections


@dataclass
class KernelCustomization:
    name: str = fld("name")
    append: str = fld("append")


@dataclass
class SSHKeyCustomization:
    user: str = fld("user", omit=False, default="")
    key: str = fld("key", omit=False, default="")


@dataclass
class UserCustomization:
    name: str = fld("name", omit=False, default="")
    description: str | None = fld("description")
    password: str | None = fld("password")
    key: str | None = fld("key")
    home: str | None = fld("home")
    shell: str | None = fld("shell")
    groups: list[str] = fld("groups", factory=list)
    uid: int | None = fld("uid")
    gid: int | None = fld("gid")
    expiredate: int | None = fld("expiredate")
    force_password_reset: bool | None = fld("force_password_reset")

    def __repr__(self) -> str:  # never show a password, not even hashed, in logs or tracebacks
        shown = "<set>" if self.password else None
        return f"UserCustomization(name={self.name!r}, password={shown}, uid={self.uid!r})"


@dataclass
class GroupCustomization:
    name: str = fld("name", omit=False, default="")
    gid: int | None = fld("gid")


@dataclass
class TimezoneCustomization:
    timezone: str | None = fld("timezone")
    ntpservers: list[str] = fld("ntpservers", factory=list)


@dataclass
class LocaleCustomization:
    languages: list[str] = fld("languages", factory=list)
    keyboard: str | None = fld("keyboard")


@dataclass
class FirewallServicesCustomization:
    enabled: list[str] = fld("enabled", factory=list)
    disabled: list[str] = fld("disabled", factory=list)


@dataclass
class FirewallZoneCustomization:
    name: str | None = fld("name")
    sources: list[str] = fld("sources", factory=list)


@dataclass
class FirewallCustomization:
    ports: list[str] = fld("ports", factory=list)
    services: FirewallServicesCustomization | None = fld("services")
    zones: list[FirewallZoneCustomization] = fld("zones", factory=list)


@dataclass
class ServicesCustomization:
    enabled: list[str] = fld("enabled", factory=list)
    disabled: list[str] = fld("disabled", factory=list)
    masked: list[str] = fld("masked", factory=list)


# ----------------------------------------------------------------------------- file systems, disk


@dataclass
class FilesystemCustomization:
    mountpoint: str = fld("mountpoint", default="")
    minsize: int = fld("minsize", default=0, size=True)

    @staticmethod
    def _pre_decode(raw: dict[str, Any], path: str, ctx: DecodeContext) -> dict[str, Any]:
        # upstream: mountpoint must be a string; minsize required (> 0); TOML's old `size` alias
        mp = raw.get("mountpoint")
        if not isinstance(mp, str):
            prefix = "JSON" if ctx.fmt == "json" else "TOML"
            raise BlueprintError(join(path, "mountpoint"),
                                 f"{prefix} unmarshal: mountpoint must be string, got {_go_repr(mp)}")
        raw = dict(raw)
        if ctx.fmt == "toml" and "size" in raw:
            if raw.get("minsize") not in (None, 0, ""):
                raise BlueprintError(join(path, "size"),
                                     "TOML unmarshal: size and minsize cannot both be set (size is an alias for minsize)")
            raw["minsize"] = raw.pop("size")
        ms = raw.get("minsize")
        if ms is None or isinstance(ms, bool) or not isinstance(ms, int | float | str):
            if ctx.fmt == "json":
                raise BlueprintError(join(path, "minsize"),
                                     f"JSON unmarshal: minsize must be float64 number or string, got {_go_repr(ms)}")
            if ms is not None:
                raise BlueprintError(join(path, "minsize"),
                                     f"TOML unmarshal: minsize must be integer or string, got {_go_repr(ms)}")
        if ctx.fmt == "toml" and (ms is None or ms == 0):
            raise BlueprintError(join(path, "minsize"), "TOML unmarshal: minsize must be greater than 0, got 0")
        return raw


@dataclass
class LVCustomization:
    name: str = fld("name", default="")
    minsize: int = fld("minsize", default=0, size=True)
    mountpoint: str = fld("mountpoint", default="")
    label: str = fld("label", default="")
    fs_type: str = fld("fs_type", default="")

    @staticmethod
    def _pre_decode(raw: dict[str, Any], path: str, ctx: DecodeContext) -> dict[str, Any]:
        if raw.get("minsize") is None:
            raise BlueprintError(join(path, "minsize"), "minsize is required")
        return raw


@dataclass
class BtrfsSubvolumeCustomization:
    name: str = fld("name", default="")
    mountpoint: str = fld("mountpoint", default="")


_PART_COMMON = {"type", "minsize", "part_type", "part_label", "part_uuid"}
_PART_KEYS = {
    "plain": _PART_COMMON | {"mountpoint", "label", "fs_type"},
    "btrfs": _PART_COMMON | {"subvolumes"},
    "lvm": _PART_COMMON | {"name", "logical_volumes"},
}


@dataclass
class PartitionCustomization:
    """One partition; its payload fields depend on ``type`` (plain, lvm, btrfs) as upstream."""

    type: str = fld("type", default="")
    minsize: int = fld("minsize", default=0, size=True)
    part_type: str = fld("part_type", default="")
    part_label: str = fld("part_label", default="")
    part_uuid: str = fld("part_uuid", default="")
    subvolumes: list[BtrfsSubvolumeCustomization] = fld("subvolumes", factory=list)   # btrfs
    name: str = fld("name", default="")                                                  # lvm: VG name
    logical_volumes: list[LVCustomization] = fld("logical_volumes", factory=list)       # lvm
    mountpoint: str = fld("mountpoint", default="")                                      # plain
    label: str = fld("label", default="")
    fs_type: str = fld("fs_type", default="")

    @staticmethod
    def _pre_decode(raw: dict[str, Any], path: str, ctx: DecodeContext) -> dict[str, Any]:
        prefix = "JSON unmarshal:" if ctx.fmt == "json" else "TOML unmarshal:"
        ptype = raw.get("type") or "plain"
        if not isinstance(ptype, str):
            raise BlueprintError(join(path, "type"),
                                 f'{prefix} type must be a string, got "{ptype}" of type {_go_type_name(ptype)}')
        allowed = _PART_KEYS.get(ptype)
        if allowed is None:
            raise BlueprintError(join(path, "type"), f"{prefix} unknown partition type: {ptype}")
        for k in raw:
            if k not in allowed:
                raise BlueprintError(join(path, k),
                                     f'{prefix} error decoding partition with type "{ptype}": json: unknown field "{k}"')
        if raw.get("minsize") is None:
            raise BlueprintError(join(path, "minsize"), "minsize is required")
        return {**raw, "type": ptype}


@dataclass
class DiskCustomization:
    type: str = fld("type", default="")
    minsize: int = fld("minsize", default=0, size=True)
    partitions: list[PartitionCustomization] = fld("partitions", factory=list)
    start_offset: int = fld("start_offset", default=0, size=True)
    sector_size: int = fld("sector_size", default=0)


# ----------------------------------------------------------------------------- files and directories

_MODE_RE = re.compile(r"^0?[0-7]{3}$")
_OWNER_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}$")


def _check_fsnode(path: str, node_path: str, mode: str, user: str | int | None, group: str | int | None) -> None:
    """Upstream validates directories and files while parsing (fsnode.New*)."""
    where = join(path, "path")
    if node_path == "":
        raise BlueprintError(where, "path must not be empty")
    too_bad = path_limit_error(node_path)  # NUL bytes, over-long paths: ours, upstream fails later
    if too_bad is not None:
        raise BlueprintError(where, too_bad)
    if not node_path.startswith("/"):
        raise BlueprintError(where, f"path {node_path!r} must be absolute")
    if node_path != "/" and node_path.endswith("/"):
        raise BlueprintError(where, f"path {node_path!r} must not end with a slash")
    if os.path.normpath(node_path) != node_path or node_path.startswith("//"):
        raise BlueprintError(where, f"path {node_path!r} must be canonical")
    if mode and not _MODE_RE.match(mode):
        raise BlueprintError(join(path, "mode"), f"invalid mode {mode}: must be an octal number")
    for key, owner in (("user", user), ("group", group)):
        if isinstance(owner, int) and owner < 0:
            raise BlueprintError(join(path, key), f"{key} ID must be non-negative")
        if isinstance(owner, str) and not _OWNER_RE.match(owner):
            raise BlueprintError(join(path, key),
                                 f"{key} name {owner!r} doesn't conform to validating regex ({_OWNER_RE.pattern})")


@dataclass
class DirectoryCustomization:
    path: str = fld("path", omit=False, default="")
    user: str | int | None = fld("user")
    group: str | int | None = fld("group")
    mode: str = fld("mode", default="")
    ensure_parents: bool = fld("ensure_parents", default=False)

    @staticmethod
    def _pre_decode(raw: dict[str, Any], path: str, ctx: DecodeContext) -> dict[str, Any]:
        return _integral_owner(raw, path, ctx, DirectoryCustomization)

    def _post_decode(self, raw: dict[str, Any], path: str, ctx: DecodeContext) -> None:
        _check_fsnode(path, self.path, self.mode, self.user, self.group)


@dataclass
class FileCustomization:
    path: str = fld("path", omit=False, default="")
    user: str | int | None = fld("user")
    group: str | int | None = fld("group")
    mode: str = fld("mode", default="")
    data: str = fld("data", default="")
    uri: str = fld("uri", default="")

    @staticmethod
    def _pre_decode(raw: dict[str, Any], path: str, ctx: DecodeContext) -> dict[str, Any]:
        return _integral_owner(raw, path, ctx, FileCustomization)

    def _post_decode(self, raw: dict[str, Any], path: str, ctx: DecodeContext) -> None:
        _check_fsnode(path, self.path, self.mode, self.user, self.group)
        if self.data and self.uri:
            raise BlueprintError(join(path, "uri"), "data and uri are mutually exclusive")


def _integral_owner(raw: dict[str, Any], path: str, ctx: DecodeContext, owner: type) -> dict[str, Any]:
    # JSON numbers arrive as floats in Go; a uid of 1.5 is an error there, 1000.0 is fine
    out = dict(raw)
    for key in ("user", "group"):
        v = out.get(key)
        if isinstance(v, float):
            if not v.is_integer():
                raise BlueprintError(join(path, key), f"invalid {key} {v:f}: must be an integer")
            out[key] = int(v)
        elif v is not None and not isinstance(v, str | int) or isinstance(v, bool):
            raise type_error(ctx, owner, join(path, key), v, str | int)
    return out


# ----------------------------------------------------------------------------- repositories


@dataclass
class RepositoryCustomization:
    id: str = fld("id", omit=False, default="")
    baseurls: list[str] = fld("baseurls", factory=list)
    gpgkeys: list[str] = fld("gpgkeys", factory=list)
    metalink: str = fld("metalink", default="")
    mirrorlist: str = fld("mirrorlist", default="")
    name: str = fld("name", default="")
    priority: int | None = fld("priority")
    enabled: bool | None = fld("enabled")
    gpgcheck: bool | None = fld("gpgcheck")
    repo_gpgcheck: bool | None = fld("repo_gpgcheck")
    sslverify: bool | None = fld("sslverify")
    module_hotfixes: bool | None = fld("module_hotfixes")
    filename: str = fld("filename", default="")
    install_from: bool = fld("install_from", default=False)

    def get_filename(self) -> str:
        if not self.filename:
            return f"{self.id}.repo"
        return self.filename if self.filename.endswith(".repo") else f"{self.filename}.repo"


# ----------------------------------------------------------------------------- image-mode sections


@dataclass
class FDOCustomization:
    manufacturing_server_url: str = fld("manufacturing_server_url", default="")
    diun_pub_key_insecure: str = fld("diun_pub_key_insecure", default="")
    diun_pub_key_hash: str = fld("diun_pub_key_hash", default="")
    diun_pub_key_root_certs: str = fld("diun_pub_key_root_certs", default="")
    di_mfg_string_type_mac_iface: str = fld("di_mfg_string_type_mac_iface", default="")


@dataclass
class OpenSCAPTailoringCustomizations:
    selected: list[str] = fld("selected", factory=list)
    unselected: list[str] = fld("unselected", factory=list)


@dataclass
class OpenSCAPJSONTailoringCustomizations:
    profile_id: str = fld("profile_id", default="")
    filepath: str = fld("filepath", default="")


@dataclass
class OpenSCAPCustomization:
    datastream: str = fld("datastream", default="")
    profile_id: str = fld("profile_id", default="")
    tailoring: OpenSCAPTailoringCustomizations | None = fld("tailoring")
    json_tailoring: OpenSCAPJSONTailoringCustomizations | None = fld("json_tailoring")
    policy_id: str = fld("policy_id", default="")


@dataclass
class EmbeddedIgnitionCustomization:
    config: str = fld("config", default="")


@dataclass
class FirstBootIgnitionCustomization:
    url: str = fld("url", default="")
    empty: bool = fld("empty", default=False)


@dataclass
class IgnitionCustomization:
    embedded: EmbeddedIgnitionCustomization | None = fld("embedded")
    firstboot: FirstBootIgnitionCustomization | None = fld("firstboot")


@dataclass
class Kickstart:
    contents: str = fld("contents", omit=False, default="")


@dataclass
class AnacondaModules:
    enable: list[str] = fld("enable", factory=list)
    disable: list[str] = fld("disable", factory=list)


@dataclass
class Grub2Customization:
    menu_timeout: int | None = fld("menu-timeout")


@dataclass
class BootloaderCustomization:
    grub2: Grub2Customization | None = fld("grub2")


@dataclass
class InstallerCustomization:
    unattended: bool = fld("unattended", default=False)
    sudo_nopasswd: list[str] = fld("sudo-nopasswd", factory=list)
    kickstart: Kickstart | None = fld("kickstart")
    modules: AnacondaModules | None = fld("modules")
    menu_timeout: int | None = fld("menu-timeout")                 # older releases: top level
    bootloader: BootloaderCustomization | None = fld("bootloader")  # newer: bootloader.grub2
    payload: Any = fld("payload")  # free-form in upstream too (its keys depend on the payload kind)


@dataclass
class RPMImportKeys:
    files: list[str] = fld("files", factory=list)


@dataclass
class RPMCustomization:
    import_keys: RPMImportKeys | None = fld("import_keys")


@dataclass
class DNFPluginConfig:
    enabled: bool | None = fld("enabled")


@dataclass
class SubManDNFPluginsConfig:
    product_id: DNFPluginConfig | None = fld("product_id")
    subscription_manager: DNFPluginConfig | None = fld("subscription_manager")


@dataclass
class SubManRHSMConfig:
    manage_repos: bool | None = fld("manage_repos")
    auto_enable_yum_plugins: bool | None = fld("auto_enable_yum_plugins")


@dataclass
class SubManRHSMCertdConfig:
    auto_registration: bool | None = fld("auto_registration")


@dataclass
class SubManConfig:
    rhsm: SubManRHSMConfig | None = fld("rhsm")
    rhsmcertd: SubManRHSMCertdConfig | None = fld("rhsmcertd")


@dataclass
class RHSMConfig:
    dnf_plugins: SubManDNFPluginsConfig | None = fld("dnf_plugins")
    subscription_manager: SubManConfig | None = fld("subscription_manager")


@dataclass
class RHSMCustomization:
    config: RHSMConfig | None = fld("config")


@dataclass
class CACustomization:
    pem_certs: list[str] = fld("pem_certs", factory=list)


@dataclass
class ContainerStorageCustomization:
    destination_path: str | None = fld("destination-path")


@dataclass
class FirstbootScript:
    """One entry of ``firstboot.scripts`` (newer upstream layout)."""

    type: str = fld("type", default="")
    name: str = fld("name", default="")
    ignore_failure: bool = fld("ignore_failure", default=False)
    after: list[str] = fld("after", factory=list)
    before: list[str] = fld("before", factory=list)
    contents: str = fld("contents", default="")
    custom_contents: str = fld("custom_contents", default="")
    satellite_cacerts: list[str] = fld("satellite_cacerts", factory=list)
    satellite_command: str = fld("satellite_command", default="")
    aap_cacerts: list[str] = fld("aap_cacerts", factory=list)
    aap_job_template_url: str = fld("aap_job_template_url", default="")
    aap_host_config_key: str = fld("aap_host_config_key", default="")


@dataclass
class FirstbootCustomization:
    """Upstream has had two layouts: one flat script (type/name/custom_contents/satellite_*/aap_*)
    and a list under ``scripts``; both are kept."""

    type: str = fld("type", default="")
    name: str = fld("name", default="")
    ignore_failure: bool = fld("ignore_failure", default=False)
    custom_contents: str = fld("custom_contents", default="")
    satellite_cacerts: list[str] = fld("satellite_cacerts", factory=list)
    satellite_command: str = fld("satellite_command", default="")
    aap_cacerts: list[str] = fld("aap_cacerts", factory=list)
    aap_job_template_url: str = fld("aap_job_template_url", default="")
    aap_host_config_key: str = fld("aap_host_config_key", default="")
    scripts: list[FirstbootScript] = fld("scripts", factory=list)


@dataclass
class DNFConfigCustomization:
    set_releasever: bool = fld("set_releasever", default=False)


@dataclass
class DNFCustomization:
    config: DNFConfigCustomization | None = fld("config")


@dataclass
class ISOCustomization:
    application_id: str = fld("application_id", default="")
    publisher: str = fld("publisher", default="")
    volume_id: str = fld("volume_id", default="")


@dataclass
class SshdCustomization:
    password_authentication: bool | None = fld("password_authentication")
    challenge_response_authentication: bool | None = fld("challenge_response_authentication")
    kbd_interactive_authentication: bool | None = fld("kbd_interactive_authentication")
    client_alive_interval: int | None = fld("client_alive_interval")
    permit_root_login: Any = fld("permit_root_login")   # bool or "prohibit-password" etc.


# ----------------------------------------------------------------------------- the section itself


@dataclass
class Customizations:
    hostname: str | None = fld("hostname")
    kernel: KernelCustomization | None = fld("kernel")
    sshkey: list[SSHKeyCustomization] = fld("sshkey", factory=list)
    user: list[UserCustomization] = fld("user", factory=list)
    group: list[GroupCustomization] = fld("group", factory=list)
    timezone: TimezoneCustomization | None = fld("timezone")
    locale: LocaleCustomization | None = fld("locale")
    firewall: FirewallCustomization | None = fld("firewall")
    services: ServicesCustomization | None = fld("services")
    filesystem: list[FilesystemCustomization] = fld("filesystem", factory=list)
    disk: DiskCustomization | None = fld("disk")
    installation_device: str = fld("installation_device", default="")
    partitioning_mode: str = fld("partitioning_mode", default="")
    fdo: FDOCustomization | None = fld("fdo")
    openscap: OpenSCAPCustomization | None = fld("openscap")
    ignition: IgnitionCustomization | None = fld("ignition")
    directories: list[DirectoryCustomization] = fld("directories", factory=list)
    files: list[FileCustomization] = fld("files", factory=list)
    repositories: list[RepositoryCustomization] = fld("repositories", factory=list)
    fips: bool | None = fld("fips")
    installer: InstallerCustomization | None = fld("installer")
    rpm: RPMCustomization | None = fld("rpm")
    rhsm: RHSMCustomization | None = fld("rhsm")
    cacerts: CACustomization | None = fld("cacerts")
    containers_storage: ContainerStorageCustomization | None = fld("containers-storage")
    firstboot: FirstbootCustomization | None = fld("firstboot")
    dnf: DNFCustomization | None = fld("dnf")
    iso: ISOCustomization | None = fld("iso")
    sshd: SshdCustomization | None = fld("sshd")

    def used(self) -> list[str]:
        """Wire keys of the customizations that are set (for per-image-type allow lists)."""
        return list(encode(self).keys())

    def filesystems_min_size(self) -> int:
        """Sum of filesystem minsizes rounded up to 512-byte sectors (upstream's GetFilesystemsMinSize)."""
        total = sum(fs.minsize for fs in self.filesystem)
        return -(-total // 512) * 512

    def get_users(self) -> list[UserCustomization]:
        """``sshkey`` entries as users first (backwards compatibility), then ``user``; home dirs
        without trailing slash (upstream's GetUsers)."""
        users = [UserCustomization(name=k.user, key=k.key) for k in self.sshkey]
        users.extend(self.user)
        out = []
        for u in users:
            if u.home is not None and u.home != "/":
                u = dataclasses.replace(u, home=u.home.rstrip("/"))
            out.append(u)
        return out


def _go_type_name(v: object) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}"
    return "<nil>"


def _go_repr(v: object) -> str:
    """Go's ``%v of type %T`` for a decoded value."""
    if v is None:
        return "<nil> of type <nil>"
    shown = str(v).lower() if isinstance(v, bool) else v
    return f"{shown} of type {_go_type_name(v)}"
