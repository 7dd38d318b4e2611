"""Debian versions in upstream's package fields, and back.

A Debian version is ``[epoch:]upstream[-revision]``: the epoch ends at the first colon, the
revision starts after the last hyphen (the upstream part may itself hold hyphens, never the
revision). The Weldr API and both composer-cli clients speak RPM's ``epoch``/``version``/``release``
and print ``name-[epoch:]version-release.arch``, so:

- ``epoch`` = the epoch (0 when absent), ``version`` = upstream, ``release`` = revision;
- a native package (no revision, e.g. ``adduser 3.134``) gets ``release = "0"``: dpkg compares
  an absent revision as ``0`` (``3.134`` and ``3.134-0`` are the same version), and clients print
  ``adduser-3.134-0.all`` instead of the broken ``adduser-3.134-.all``.

The exact version apt knows is kept beside these fields (``PackageSpec.deb_version``); requests
written in the frozen form (``3.134-0.all``) are mapped back by :func:`request_candidates`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from osbuildd.errors import ErrorKind, ServiceError

NATIVE_RELEASE = "0"

# Architecture names a frozen version may end in (``.amd64``, ``.noarch``, ...); only these are
# stripped, since Debian versions hold dots of their own (``1.2.3``).
DEB_ARCHES = frozenset({"all", "amd64", "arm64", "armel", "armhf", "i386", "loong64", "mips64el",
                        "mipsel", "ppc64el", "riscv64", "s390x"})
RPM_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "noarch": "all", "i686": "i386", "i586": "i386",
              "ppc64le": "ppc64el", "armv7hl": "armhf", "s390x": "s390x", "riscv64": "riscv64"}
ARCHES = DEB_ARCHES | frozenset(RPM_ARCHES)


class VersionError(ServiceError, ValueError):
    """A text that is not a Debian version (bad epoch)."""

    kind = ErrorKind.INVALID
    error_id = "VersionError"


@dataclass(frozen=True)
class DebVersion:
    epoch: int
    upstream: str
    revision: str   # "" for a native package

    def __str__(self) -> str:
        v = f"{self.upstream}-{self.revision}" if self.revision else self.upstream
        return f"{self.epoch}:{v}" if self.epoch else v


def parse(text: str) -> DebVersion:
    """Split ``[epoch:]upstream[-revision]`` (epoch at the first colon, revision at the last hyphen)."""
    epoch, rest = 0, text.strip()
    if ":" in rest:
        e, rest = rest.split(":", 1)
        if not e.isdigit():
            raise VersionError(f"bad epoch in Debian version {text!r}")
        epoch = int(e)
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        return DebVersion(epoch, rest, "")
    return DebVersion(epoch, upstream, revision)


def weldr_fields(text: str) -> tuple[int, str, str]:
    """``(epoch, version, release)`` as the Weldr API shows a Debian version."""
    v = parse(text)
    return v.epoch, v.upstream, v.revision or NATIVE_RELEASE


def _field(pkg: object, key: str, default: object) -> object:
    return pkg.get(key, default) if isinstance(pkg, Mapping) else getattr(pkg, key, default)


def weldr_evr(pkg: object) -> tuple[int, str, str]:
    """``(epoch, version, release)`` of a package (object or dict). A Debian package stored before
    the split (whole version in ``version``, empty ``release``) is split here, so old composes read
    the same as new ones; RPM packages always have a release and pass through."""
    raw_epoch = _field(pkg, "epoch", 0) or 0
    epoch = int(raw_epoch) if isinstance(raw_epoch, int | float | str) else int(str(raw_epoch))
    version, release = str(_field(pkg, "version", "") or ""), str(_field(pkg, "release", "") or "")
    if release or not version:
        return epoch, version, release
    try:
        _, up, rel = weldr_fields(version)
    except VersionError:
        return epoch, version, release
    return epoch, up, rel


def split_arch(text: str) -> tuple[str, str]:
    """``3.3a-3.amd64`` -> (``3.3a-3``, ``amd64``); a version without a real arch suffix is kept whole."""
    head, dot, tail = text.rpartition(".")
    if dot and head and tail in ARCHES:
        return head, tail
    return text, ""


def deb_arch_of(arch: str) -> str:
    """The Debian name of an arch written either way (``x86_64`` -> ``amd64``)."""
    return RPM_ARCHES.get(arch, arch)


def request_candidates(version: str) -> list[str]:
    """Debian versions a requested exact version may mean: itself, and for the native form
    ``X-0`` (what the Weldr fields of a native package recombine to) also ``X``."""
    out = [version]
    if version.endswith("-" + NATIVE_RELEASE):
        out.append(version[: -len(NATIVE_RELEASE) - 1])
    return out


def matches(available: str, wanted: str) -> bool:
    """``wanted`` names ``available``: equal, or equal without the epoch when ``wanted`` has none."""
    if available == wanted:
        return True
    return ":" not in wanted and available.split(":", 1)[-1] == wanted


# --------------------------------------------------------------------------- dpkg ordering

def _order(c: str) -> int:
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _cmp_part(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not diff:
                diff = ord(a[i]) - ord(b[j])
            i, j = i + 1, j + 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if diff:
            return diff
    return 0


def vercmp(a: str, b: str) -> int:
    """dpkg's version comparison: <0, 0, >0."""
    va, vb = parse(a), parse(b)
    if va.epoch != vb.epoch:
        return va.epoch - vb.epoch
    return _cmp_part(va.upstream, vb.upstream) or _cmp_part(va.revision or "0", vb.revision or "0")
