"""Upstream's blueprint rules: name regex, semantic versions (go-semver), password hashing,
distro names, and the customization checks upstream does when it makes a manifest."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from osbuildd.common.names import hostname_error, timezone_error

from .customizations import Customizations, DiskCustomization, RepositoryCustomization, UserCustomization
from .errors import BlueprintError

NAME_RE = re.compile(r"^[a-zA-Z0-9._-]+$")


def check_name(name: str, field: str = "name") -> None:
    """Weldr's ValidBlueprintName; upstream answers InvalidChars with this text."""
    if not name or not NAME_RE.match(name):
        raise BlueprintError(field, "Invalid characters in API path")


# ------------------------------------------------------------------------------------ semver
# github.com/coreos/go-semver: X.Y.Z with optional -prerelease and +metadata identifiers.

_IDENT_RE = re.compile(r"^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$")
_INT_RE = re.compile(r"^[+-]?[0-9]+$")


def _split_semver(version: str) -> tuple[list[int], str, str] | str:
    rest, _, metadata = version.partition("+") if "+" in version else (version, "", "")
    rest, _, pre = rest.partition("-") if "-" in rest else (rest, "", "")
    parts = rest.split(".", 2)
    if len(parts) != 3:
        return f"{rest} is not in dotted-tri format"
    if pre and not _IDENT_RE.match(pre):
        return f"failed to validate pre-release: {pre} is not a valid semver identifier"
    if metadata and not _IDENT_RE.match(metadata):
        return f"failed to validate metadata: {metadata} is not a valid semver identifier"
    nums = []
    for p in parts:
        if not _INT_RE.match(p):
            return f'strconv.ParseInt: parsing "{p}": invalid syntax'
        n = int(p)
        if not -(2**63) <= n < 2**63:
            return f'strconv.ParseInt: parsing "{p}": value out of range'
        nums.append(n)
    return nums, pre, metadata


def semver_error(version: str) -> str | None:
    """None when ``version`` is semver, else go-semver's error text."""
    parsed = _split_semver(version)
    return parsed if isinstance(parsed, str) else None


def bump_patch(version: str) -> str | None:
    """``version`` with patch + 1 (pre-release and metadata dropped), None if it is not semver."""
    parsed = _split_semver(version)
    if isinstance(parsed, str):
        return None
    (major, minor, patch), _, _ = parsed
    return f"{major}.{minor}.{patch + 1}"


# ------------------------------------------------------------------------------------ passwords

_CRYPT_PREFIXES = ("$2b$", "$6$", "$5$", "$y$")


def password_is_crypted(password: str) -> bool:
    return password.startswith(_CRYPT_PREFIXES)


def crypt_password(password: str) -> str:
    """SHA-512 crypt with a random salt and the default 5000 rounds, as upstream's CryptSHA512."""
    from passlib.hash import sha512_crypt

    hashed: str = sha512_crypt.using(rounds=5000).hash(password)
    return hashed


# ------------------------------------------------------------------------------------ distro names

_DISTRO_JOINED = re.compile(r"^([a-z]+)([0-9]+(?:\.[0-9]+)?)$")


def standardize_distro(name: str) -> str:
    """Upstream accepts ``fedora38`` for ``fedora-38`` (and ``rhel810`` for ``rhel-8.10``)."""
    if not name:
        return name
    m = _DISTRO_JOINED.match(name)
    if m:
        family, ver = m.groups()
        if family == "rhel" and "." not in ver and len(ver) >= 2:
            ver = f"{ver[0]}.{ver[1:]}"
        return f"{family}-{ver}"
    m = re.match(r"^rhel-([0-9])([0-9]+)$", name)
    if m:
        return f"rhel-{m.group(1)}.{m.group(2)}"
    return name


# ------------------------------------------------------------------------------------ customizations

PARTITIONING_MODES = ("", "auto-lvm", "lvm", "raw", "btrfs")
_REPO_FILENAME_RE = re.compile(r"^[\w.-]{1,250}\.repo$")
_PORT_RE = re.compile(r"^([0-9]{1,5}(-[0-9]{1,5})?|[a-z][a-z0-9_-]*):(tcp|udp|sctp|dccp)$")
_ANACONDA_USERS = "org.fedoraproject.Anaconda.Modules.Users"
_FIRSTBOOT_TYPES = ("custom", "satellite", "aap")


def validate_customizations(c: Customizations) -> None:
    if c.hostname is not None:
        err = hostname_error(c.hostname)
        if err is not None:
            raise BlueprintError("customizations.hostname",
                                 f"customizations.hostname: invalid hostname {c.hostname!r}: {err}")
    _check_users_groups(c)
    _check_words(c)
    for i, port in enumerate(c.firewall.ports if c.firewall else []):
        if not _PORT_RE.match(port):
            raise BlueprintError(f"customizations.firewall.ports[{i}]",
                                 f"invalid firewall port {port!r}: expected PORT[-PORT]:PROTOCOL or SERVICE:PROTOCOL")
    _check_filesystems(c)
    if c.disk is not None:
        _check_disk(c.disk)
    if c.partitioning_mode not in PARTITIONING_MODES:
        raise BlueprintError("customizations.partitioning_mode",
                             f"invalid partitioning mode {c.partitioning_mode!r}: must be one of auto-lvm, lvm, raw, btrfs")
    for i, repo in enumerate(c.repositories):
        _check_repository(f"customizations.repositories[{i}]", repo)
    if c.ignition and c.ignition.firstboot and c.ignition.firstboot.empty and c.ignition.firstboot.url:
        raise BlueprintError("customizations.ignition.firstboot",
                             "ignition.firstboot.url is mutually exclusive with ignition.firstboot.empty")
    _check_installer(c)
    if c.iso is not None and len(c.iso.volume_id) > 32:
        raise BlueprintError("customizations.iso.volume_id",
                             f"volume ID {c.iso.volume_id!r} is too long: {len(c.iso.volume_id)} > 32 characters")
    if c.cacerts is not None:
        _check_cacerts(c.cacerts.pem_certs)
    if c.firstboot is not None:
        for path, typ in [("customizations.firstboot.type", c.firstboot.type)] + [
                (f"customizations.firstboot.scripts[{i}].type", s.type) for i, s in enumerate(c.firstboot.scripts)]:
            if typ and typ not in _FIRSTBOOT_TYPES:
                raise BlueprintError(path, f"unknown firstboot type {typ!r} (valid: custom, satellite, aap)")


def _check_users_groups(c: Customizations) -> None:
    for i, user in enumerate(c.user):
        if not user.name:
            raise BlueprintError(f"customizations.user[{i}].name", "user name is required")
        if user.uid is not None and user.uid < 0:
            raise BlueprintError(f"customizations.user[{i}].uid", "uid must be non-negative")
        if user.gid is not None and user.gid < 0:
            raise BlueprintError(f"customizations.user[{i}].gid", "gid must be non-negative")
    for i, group in enumerate(c.group):
        if not group.name:
            raise BlueprintError(f"customizations.group[{i}].name", "group name is required")
        if group.gid is not None and group.gid < 0:
            raise BlueprintError(f"customizations.group[{i}].gid", "gid must be non-negative")
    for i, key in enumerate(c.sshkey):
        if not key.user or not key.key:
            raise BlueprintError(f"customizations.sshkey[{i}]", "sshkey entries need a user and a key")


# What the image's tools take, and nothing that could start another line of the file they write:
# shadow's useradd refuses ':' and newlines in a comment, home or shell; systemd's timezone_is_valid;
# unit, locale, keymap and firewalld names are single words.
_SHADOW_BAD = re.compile(r"[:\n\x00]")
_GROUP_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}$")
_NTP_RE = re.compile(r"^[A-Za-z0-9._:%\[\]-]+$")
_WORD_RE = re.compile(r"^[A-Za-z0-9_.@+-]+$")
_UNIT_RE = re.compile(r"^[A-Za-z0-9:_.@\\-]+$")
_ZONE_RE = re.compile(r"^[a-zA-Z0-9_-]+$")            # upstream's org.osbuild.firewall schema
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _refuse(field: str, what: str, value: str, why: str) -> None:
    raise BlueprintError(field, f"{field}: invalid {what} {value!r}: {why}")


def _check_user_fields(i: int, user: UserCustomization) -> None:
    where = f"customizations.user[{i}]"
    if user.description is not None and _SHADOW_BAD.search(user.description):
        _refuse(f"{where}.description", "description", user.description, "must not contain ':' or a newline")
    for key, value in (("home", user.home), ("shell", user.shell)):
        if value is not None and (not value.startswith("/") or _SHADOW_BAD.search(value)):
            _refuse(f"{where}.{key}", key, value, "must be an absolute path without ':' or a newline")
    for j, group in enumerate(user.groups):
        if not _GROUP_RE.fullmatch(group):
            _refuse(f"{where}.groups[{j}]", "group name", group, f"must match {_GROUP_RE.pattern}")
    if user.expiredate is not None and user.expiredate < -1:
        _refuse(f"{where}.expiredate", "expiredate", str(user.expiredate),
                "must be days since 1970-01-01 (or -1 for never)")


def _check_words(c: Customizations) -> None:
    """The string customizations that become a line of a file or an argument in the image."""
    if c.kernel is not None and _CONTROL_RE.search(c.kernel.append or ""):
        _refuse("customizations.kernel.append", "kernel command line", c.kernel.append,
                "must not contain control characters")
    if c.kernel is not None and c.kernel.name and not _WORD_RE.fullmatch(c.kernel.name):
        _refuse("customizations.kernel.name", "kernel package", c.kernel.name, "must be a package name")
    for i, user in enumerate(c.user):
        _check_user_fields(i, user)
    tz = c.timezone
    if tz is not None and tz.timezone is not None and (err := timezone_error(tz.timezone)) is not None:
        _refuse("customizations.timezone.timezone", "timezone", tz.timezone, err)
    for i, server in enumerate(tz.ntpservers if tz else []):
        if not _NTP_RE.fullmatch(server):
            _refuse(f"customizations.timezone.ntpservers[{i}]", "NTP server", server, "must be a host name or address")
    loc = c.locale
    for i, lang in enumerate(loc.languages if loc else []):
        if not _WORD_RE.fullmatch(lang):
            _refuse(f"customizations.locale.languages[{i}]", "locale", lang, "must be a locale name such as en_US.UTF-8")
    if loc is not None and loc.keyboard is not None and not _WORD_RE.fullmatch(loc.keyboard):
        _refuse("customizations.locale.keyboard", "keyboard", loc.keyboard, "must be a keymap name such as us")
    svc = c.services
    for kind in ("enabled", "disabled", "masked"):
        for i, unit in enumerate(getattr(svc, kind) if svc else []):
            if not _UNIT_RE.fullmatch(unit):
                _refuse(f"customizations.services.{kind}[{i}]", "unit name", unit, "must be a systemd unit name")
    _check_firewall_words(c)


def _check_firewall_words(c: Customizations) -> None:
    fw = c.firewall
    if fw is None:
        return
    for kind in ("enabled", "disabled"):
        for i, name in enumerate(getattr(fw.services, kind) if fw.services else []):
            if not _WORD_RE.fullmatch(name):
                _refuse(f"customizations.firewall.services.{kind}[{i}]", "firewalld service", name,
                        "must be a firewalld service name such as ssh")
    for i, zone in enumerate(fw.zones):
        if zone.name is not None and not _ZONE_RE.fullmatch(zone.name):
            _refuse(f"customizations.firewall.zones[{i}].name", "zone name", zone.name, f"must match {_ZONE_RE.pattern}")
        for j, src in enumerate(zone.sources):
            if not src or _CONTROL_RE.search(src) or " " in src:
                _refuse(f"customizations.firewall.zones[{i}].sources[{j}]", "zone source", src,
                        "must be an address, a network or an ipset")


def _check_mountpoint(field: str, mp: str, seen: set[str]) -> None:
    if not mp.startswith("/"):
        raise BlueprintError(field, f"mountpoint {mp!r} must be an absolute path")
    clean = re.sub(r"/+", "/", mp)
    if clean != mp or (mp != "/" and mp.endswith("/")) or "/./" in mp + "/" or "/../" in mp + "/":
        raise BlueprintError(field, f"mountpoint {mp!r} must be a canonical path")
    if mp in seen:
        raise BlueprintError(field, f"duplicate mountpoint {mp!r} in partitioning customizations")
    seen.add(mp)


def _check_filesystems(c: Customizations) -> None:
    seen: set[str] = set()
    for i, fs in enumerate(c.filesystem):
        _check_mountpoint(f"customizations.filesystem[{i}].mountpoint", fs.mountpoint, seen)
    if c.filesystem and c.disk is not None:
        raise BlueprintError("customizations.disk",
                             "partitioning customizations cannot be used with custom filesystems")


def _check_disk(disk: DiskCustomization) -> None:
    if disk.type not in ("", "gpt", "dos"):
        raise BlueprintError("customizations.disk.type", f"unknown partition table type: {disk.type} (valid: gpt, dos)")
    if disk.type == "dos" and len(disk.partitions) > 4:
        raise BlueprintError("customizations.disk.partitions",
                             'invalid partitioning customizations: "dos" partition table type only supports up to 4 '
                             f"partitions: got {len(disk.partitions)}")
    if disk.sector_size and disk.sector_size & (disk.sector_size - 1):
        raise BlueprintError("customizations.disk.sector_size",
                             f"invalid partitioning customizations: sector_size must be a power of 2, got {disk.sector_size}")
    mounts: set[str] = set()
    vgnames: set[str] = set()
    for i, part in enumerate(disk.partitions):
        where = f"customizations.disk.partitions[{i}]"
        if part.type in ("", "plain"):
            if part.fs_type == "swap":
                if part.mountpoint:
                    raise BlueprintError(f"{where}.mountpoint", "mountpoint for swap partition must be empty")
            elif part.mountpoint:
                _check_mountpoint(f"{where}.mountpoint", part.mountpoint, mounts)
        elif part.type == "lvm":
            if part.name:
                if part.name in vgnames:
                    raise BlueprintError(f"{where}.name", f"duplicate LVM volume group name {part.name!r}")
                vgnames.add(part.name)
            if not part.logical_volumes:
                raise BlueprintError(f"{where}.logical_volumes", "lvm partition requires at least one logical volume")
            lvnames: set[str] = set()
            for j, lv in enumerate(part.logical_volumes):
                if lv.name and lv.name in lvnames:
                    raise BlueprintError(f"{where}.logical_volumes[{j}].name", f"duplicate LVM logical volume name {lv.name!r}")
                lvnames.add(lv.name)
                if lv.mountpoint in ("/boot", "/boot/efi"):
                    raise BlueprintError(f"{where}.logical_volumes[{j}].mountpoint",
                                         f"invalid mountpoint {lv.mountpoint!r} for logical volume")
                if lv.mountpoint and lv.fs_type != "swap":
                    _check_mountpoint(f"{where}.logical_volumes[{j}].mountpoint", lv.mountpoint, mounts)
        elif part.type == "btrfs":
            if not part.subvolumes:
                raise BlueprintError(f"{where}.subvolumes", "btrfs partition requires at least one subvolume")
            names: set[str] = set()
            for j, sv in enumerate(part.subvolumes):
                if not sv.name:
                    raise BlueprintError(f"{where}.subvolumes[{j}].name", "btrfs subvolume with empty name")
                if sv.name in names:
                    raise BlueprintError(f"{where}.subvolumes[{j}].name", f"duplicate btrfs subvolume name {sv.name!r}")
                names.add(sv.name)
                if sv.mountpoint:
                    _check_mountpoint(f"{where}.subvolumes[{j}].mountpoint", sv.mountpoint, mounts)


def _check_repository(where: str, repo: RepositoryCustomization) -> None:
    if not repo.id:
        raise BlueprintError(f"{where}.id", "Repository ID is required")
    if not _REPO_FILENAME_RE.match(repo.get_filename()):
        raise BlueprintError(f"{where}.filename", f'Repository filename "{repo.get_filename()}" is invalid')
    if not repo.baseurls and not repo.mirrorlist and not repo.metalink:
        raise BlueprintError(f"{where}.baseurls", "Repository base URL, mirrorlist or metalink is required")
    if repo.gpgcheck and not repo.gpgkeys:
        raise BlueprintError(f"{where}.gpgkeys", "Repository gpg check is set to true but no gpg keys are provided")
    for j, key in enumerate(repo.gpgkeys):
        is_key = key.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----") and "-----END PGP PUBLIC KEY BLOCK-----" in key
        parts = urlsplit(key) if not is_key else None
        is_url = parts is not None and (bool(parts.scheme) or key.startswith("/")) and " " not in key
        if not is_key and not is_url:
            raise BlueprintError(f"{where}.gpgkeys[{j}]", "Repository gpg key is not a valid URL or a valid gpg key")


def _check_installer(c: Customizations) -> None:
    inst = c.installer
    if inst is None:
        return
    if inst.kickstart is not None and inst.kickstart.contents:
        if inst.unattended:
            raise BlueprintError("customizations.installer.unattended",
                                 "installer.unattended is not supported when adding custom kickstart contents")
        if inst.sudo_nopasswd:
            raise BlueprintError("customizations.installer.sudo-nopasswd",
                                 "installer.sudo-nopasswd is not supported when adding custom kickstart contents")
    if inst.modules is not None and _ANACONDA_USERS in inst.modules.disable and (c.user or c.group):
        raise BlueprintError("customizations.installer.modules.disable",
                             "blueprint contains user or group customizations but disables the required Users Anaconda module")


def _check_cacerts(pems: list[str]) -> None:
    from cryptography import x509

    for i, pem in enumerate(pems):
        try:
            certs = x509.load_pem_x509_certificates(pem.encode())
        except ValueError as e:
            raise BlueprintError(f"customizations.cacerts.pem_certs[{i}]", f"invalid PEM certificate: {e}") from None
        if not certs:
            raise BlueprintError(f"customizations.cacerts.pem_certs[{i}]", "no certificates found in PEM data")
