"""image-builder's distributions: ``DISTRIBUTIONS_DIR`` in image-builder's file format, and ``ALLOW_FILE``.

Layout (upstream ``internal/distribution``): one entry per distribution, ``<name>/<name>.json``; a
symlink ``<alias> -> <name>`` makes an alias (listed under the alias's name, read from the target).
Optional package lists ``<name>/<name>-<arch>-<repo id>-packages.json`` (a JSON list of
``{name, summary}``, or ``{"data": [...]}``) feed ``/packages`` unless the file says
``"no_package_list": true``. The file's keys::

    {"module_platform_id", "oscap_name",
     "distribution": {"name", "description", "composer_name"?, "restricted_access"?, "no_package_list"?},
     "x86_64" | "aarch64": {"image_types": [...],
                            "repositories": [{"id", "baseurl" | "metalink", "rhsm", "gpgkey"?, "check_gpg"?,
                                              "image_type_tags"?, ...}],
                            "bootc"?: [...]}}

Keys upstream does not know are kept (``Repository.extra``): osbuildd's Debian files carry a
repository's ``suite``, ``components`` and ``signed_by`` there, which image-builder itself ignores.

osbuildd additions (upstream would refuse to start): a plain ``<name>.json`` file at the top of the
directory is a distribution too (drop a file in), files not ending in ``.json`` and dot-files are
skipped, and a missing package list file is an empty list rather than an error. Everything is read
once (:meth:`DistributionRegistry.load`, blocking: at start or in a thread), as upstream does.

Access (upstream ``server.go`` ``getDistro``, ``handler.go`` ``filterDistributions``): distributions
with an ``rhsm`` repository are hidden from organisations without the RHEL entitlement; a
``restricted_access`` one needs an ``ALLOW_FILE`` entry matching its name (no allow file: nobody).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osbuildd import distro as osbuildd_distro
from osbuildd.errors import ErrorKind
from osbuildd.imagebuilder import ImageBuilderError

__all__ = [
    "ARCHES", "SHIPPED_DIR", "AllowFileError", "AllowList", "Architecture", "ArchitectureNotSupported",
    "Distribution", "DistributionFileError", "DistributionForbidden", "DistributionNotFound",
    "DistributionRegistry", "Package", "Repository",
]

SHIPPED_DIR = Path(__file__).parent / "data" / "distributions"
ARCHES = ("x86_64", "aarch64")
_PACKAGES_SUFFIX = "-packages.json"


class DistributionNotFound(ImageBuilderError, LookupError):
    """Upstream ``ErrDistributionNotFound``; ``getDistro`` answers it 400."""

    kind = ErrorKind.INVALID
    status = 400
    error_id = "DistributionNotFound"

    def __init__(self, name: str) -> None:
        super().__init__("distribution not available")
        self.name = name


class DistributionForbidden(ImageBuilderError):
    """A ``restricted_access`` distribution the organisation's allow list entries do not match."""

    kind = ErrorKind.INVALID
    status = 403
    error_id = "DistributionForbidden"

    def __init__(self, name: str) -> None:
        super().__init__(f"This account's organization is not authorized to build {name} images")
        self.name = name


class ArchitectureNotSupported(ImageBuilderError, LookupError):
    kind = ErrorKind.INVALID
    status = 400
    error_id = "ArchitectureNotSupported"

    def __init__(self, arch: str) -> None:
        super().__init__("Architecture not supported")
        self.arch = arch


class DistributionFileError(ImageBuilderError):
    """A distribution directory or file that cannot be used (the service does not start)."""

    error_id = "DistributionFileError"


class AllowFileError(ImageBuilderError):
    """``ALLOW_FILE`` missing or malformed (upstream's messages)."""

    error_id = "AllowFileError"


@dataclass(frozen=True)
class Package:
    name: str
    summary: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "summary": self.summary}


_REPO_KEYS = ("id", "baseurl", "metalink", "gpgkey", "check_gpg", "rhsm", "image_type_tags")


@dataclass(frozen=True)
class Repository:
    id: str
    baseurl: str | None = None
    metalink: str | None = None
    gpgkey: str | None = None
    check_gpg: bool | None = None
    rhsm: bool = False
    image_type_tags: tuple[str, ...] | None = None   # None: for every image type
    extra: Mapping[str, Any] = field(default_factory=dict)   # keys upstream does not read

    def for_image_type(self, image_type: str) -> bool:
        return not self.image_type_tags or image_type in self.image_type_tags

    def to_api(self) -> dict[str, Any]:
        """``GET /architectures``' ``Repository``: baseurl or metalink, and rhsm (as upstream)."""
        out: dict[str, Any] = {"rhsm": self.rhsm}
        if self.baseurl is not None:
            out["baseurl"] = self.baseurl
        if self.metalink is not None:
            out["metalink"] = self.metalink
        return out

    def to_composer(self) -> dict[str, Any]:
        """The Cloud API ``Repository`` image-builder sends (``buildRepositories``)."""
        out = self.to_api()
        if self.gpgkey is not None:
            out["gpgkey"] = self.gpgkey
        if self.check_gpg is not None:
            out["check_gpg"] = self.check_gpg
        return out


@dataclass
class Architecture:
    name: str
    image_types: list[str]
    repositories: list[Repository]
    bootc: list[dict[str, Any]] = field(default_factory=list)
    # repository id -> its package list; None: the distribution has no package lists
    packages: dict[str, list[Package]] | None = None

    def base_repositories(self) -> list[Repository]:
        """The repositories without image type tags (``GET /architectures``, ``/packages``)."""
        return [r for r in self.repositories if r.image_type_tags is None]

    def repositories_for(self, image_type: str) -> list[Repository]:
        return [r for r in self.repositories if r.for_image_type(image_type)]

    def find_packages(self, search: str) -> list[Package]:
        """Packages of the untagged repositories whose name contains ``search`` (upstream
        ``FindPackages``: substring, case-sensitive, in repository then file order)."""
        if self.packages is None:
            return []
        return [p for r in self.repositories if not r.image_type_tags
                for p in self.packages.get(r.id, []) if search in p.name]

    def to_api(self) -> dict[str, Any]:
        """``ArchitectureItem``."""
        return {"arch": self.name, "image_types": list(self.image_types),
                "repositories": [r.to_api() for r in self.base_repositories()]}


@dataclass
class Distribution:
    name: str                      # the entry's name: what requests use (an alias's own name)
    file_name: str                 # distribution.name in the file (the target of an alias)
    description: str
    arches: dict[str, Architecture]
    composer_name: str | None = None
    restricted_access: bool = False
    no_package_list: bool = False
    module_platform_id: str = ""
    oscap_name: str = ""
    path: Path | None = None       # the file it was read from

    @property
    def composer_distribution(self) -> str:
        """The name sent to the composer: ``composer_name``, else the file's name."""
        return self.composer_name or self.file_name

    @property
    def needs_entitlement(self) -> bool:
        """Whether a repository needs RHSM (upstream looks at x86_64's only)."""
        arch = self.arches.get("x86_64") or next(iter(self.arches.values()), None)
        return arch is not None and any(r.rhsm for r in arch.repositories)

    def architecture(self, name: str) -> Architecture:
        try:
            return self.arches[name]
        except KeyError:
            raise ArchitectureNotSupported(name) from None

    def architectures(self) -> list[Architecture]:
        """``GET /architectures/{distribution}``: x86_64 then aarch64."""
        return [self.arches[a] for a in ARCHES if a in self.arches]

    def to_api(self) -> dict[str, str]:
        """``DistributionItem``."""
        return {"name": self.name, "description": self.description}

    # -- what osbuildd itself can build of it --
    def osbuildd_distro(self) -> osbuildd_distro.Distro | None:
        """osbuildd's distribution for ``composer_distribution``, None when osbuildd does not know it."""
        try:
            return osbuildd_distro.get(self.composer_distribution)
        except osbuildd_distro.UnknownDistro:
            return None

    @property
    def buildable(self) -> bool:
        return self.osbuildd_distro() is not None

    def osbuildd_image_type(self, arch: str, image_type: str) -> str | None:
        """osbuildd's image type for image-builder's ``image_type`` on ``arch`` (``guest-image`` ->
        ``qcow2``, ``aws`` -> ``ami``, ...), None when osbuildd cannot build it there."""
        d = self.osbuildd_distro()
        if d is None or arch not in d.arches:
            return None
        try:
            return d.arch(arch).image_type(image_type).name
        except osbuildd_distro.UnknownImageType:
            return None

    def buildable_image_types(self, arch: str) -> list[str]:
        """The file's image types for ``arch`` that osbuildd can build."""
        a = self.arches.get(arch)
        return [t for t in a.image_types if self.osbuildd_image_type(arch, t)] if a else []


class AllowList:
    """``ALLOW_FILE``: ``{"<org_id>" | "*": ["<regex>", ...]}``; a distribution name matching (anywhere:
    unanchored, as Go's ``regexp.Match``) one of ``"*"``'s or the organisation's patterns is allowed."""

    def __init__(self, entries: Mapping[str, Iterable[str]] | None = None, source: str = "") -> None:
        self._entries: dict[str, list[re.Pattern[str]]] = {}
        for org, patterns in (entries or {}).items():
            compiled = []
            for p in patterns:
                try:
                    compiled.append(re.compile(p))
                except re.error as exc:
                    raise AllowFileError(f"invalid regular expression {p!r} for {org!r} in allow file "
                                         f"{source!r}: {exc}") from None
            self._entries[org] = compiled

    @classmethod
    def load(cls, path: str | Path | None) -> AllowList:
        """Read ``path`` (blocking); ``""``/None: the empty list (restricted distributions for nobody)."""
        if not path:
            return cls()
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise AllowFileError(f"no allow file found at {path}: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AllowFileError(f"failed to unmarshal allow file {json.dumps(str(path))}: {exc}") from None
        if not isinstance(data, dict) or not all(
                isinstance(v, list) and all(isinstance(p, str) for p in v) for v in data.values()):
            raise AllowFileError(f"failed to unmarshal allow file {json.dumps(str(path))}: "
                                 "must be an object of organisation ids to lists of strings")
        return cls(data, source=str(path))

    def is_allowed(self, org_id: str, distribution: str) -> bool:
        return any(p.search(distribution) for key in ("*", org_id) for p in self._entries.get(key, ()))


class DistributionRegistry:
    """All distributions of a directory; :meth:`visible` and :meth:`get_for` apply the access rules."""

    def __init__(self, distributions: Iterable[Distribution], allow: AllowList | None = None,
                 directory: Path | None = None) -> None:
        self._distros = {d.name: d for d in distributions}
        self.allow = allow or AllowList()
        self.directory = directory

    @classmethod
    def load(cls, directory: str | Path | None = None, allow_file: str | Path | None = None) -> DistributionRegistry:
        """Read ``directory`` (default: the shipped one) and ``allow_file``; blocking."""
        root = Path(directory) if directory else SHIPPED_DIR
        try:
            entries = sorted(os.listdir(root))
        except OSError as exc:
            raise DistributionFileError(f"{root}: cannot read the distributions directory: "
                                        f"{exc.strerror or exc}") from None
        distros = []
        for entry in entries:
            if entry.startswith(".") or entry.endswith(_PACKAGES_SUFFIX):
                continue
            path = root / entry
            if path.is_dir():
                distros.append(_read_distribution(root, entry))
            elif entry.endswith(".json") and path.is_file():
                distros.append(_read_distribution(root, entry[:-5], single_file=True))
        if not distros:
            raise DistributionFileError(f"{root}: no distributions defined")
        return cls(distros, AllowList.load(allow_file), directory=root)

    def names(self) -> list[str]:
        return sorted(self._distros)

    def all(self) -> list[Distribution]:
        return [self._distros[n] for n in self.names()]

    def get(self, name: str) -> Distribution:
        """Any distribution by name, no access check."""
        try:
            return self._distros[name]
        except KeyError:
            raise DistributionNotFound(name) from None

    def available(self, entitled: bool) -> list[Distribution]:
        """Upstream ``Available``: those needing the RHEL entitlement only when ``entitled``."""
        return [d for d in self.all() if entitled or not d.needs_entitlement]

    def allowed(self, d: Distribution, org_id: str) -> bool:
        return not d.restricted_access or self.allow.is_allowed(org_id, d.file_name)

    def visible(self, org_id: str, entitled: bool) -> list[Distribution]:
        """``GET /distributions``: available and, when restricted, allowed for ``org_id``."""
        return [d for d in self.available(entitled) if self.allowed(d, org_id)]

    def get_for(self, name: str, org_id: str, entitled: bool) -> Distribution:
        """Upstream ``getDistro``: unknown or not available to the organisation (no entitlement) ->
        :class:`DistributionNotFound` (400); restricted and not allowed -> :class:`DistributionForbidden` (403)."""
        d = self._distros.get(name)
        if d is None or (d.needs_entitlement and not entitled):
            raise DistributionNotFound(name)
        if not self.allowed(d, org_id):
            raise DistributionForbidden(d.file_name)
        return d


# -- reading one distribution --

def _fail(path: Path, message: str) -> DistributionFileError:
    return DistributionFileError(f"{path}: {message}")


def _distribution_file(root: Path, entry: str) -> tuple[Path, str]:
    """The JSON file of directory entry ``entry`` and the base name its package lists use."""
    real = Path(os.path.realpath(root / entry))
    base = real.name
    path = real / f"{base}.json"
    if not path.is_file():
        # an alias copied instead of linked (e.g. installed from a wheel): its one distribution file
        found = [p for p in sorted(real.glob("*.json")) if not p.name.endswith(_PACKAGES_SUFFIX)]
        if len(found) != 1:
            raise _fail(root / entry, f"no distribution file {base}.json")
        path, base = found[0], found[0].name[:-5]
    return path, base


def _read_distribution(root: Path, entry: str, single_file: bool = False) -> Distribution:
    if single_file:
        path, base = Path(os.path.realpath(root / f"{entry}.json")), entry
    else:
        path, base = _distribution_file(root, entry)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _fail(path, "must be a JSON object")
    info = data.get("distribution")
    if not isinstance(info, dict) or not isinstance(info.get("name"), str) or not info["name"]:
        raise _fail(path, "distribution.name must be a non-empty string")
    for key in ("description", "composer_name"):
        if info.get(key) is not None and not isinstance(info[key], str):
            raise _fail(path, f"distribution.{key} must be a string")
    for key in ("restricted_access", "no_package_list"):
        if not isinstance(info.get(key, False), bool):
            raise _fail(path, f"distribution.{key} must be a boolean")
    for key in ("module_platform_id", "oscap_name"):
        if not isinstance(data.get(key, ""), str):
            raise _fail(path, f"{key} must be a string")
    arches = {a: _architecture(path, a, data[a]) for a in ARCHES if data.get(a) is not None}
    d = Distribution(
        name=entry, file_name=info["name"], description=info.get("description") or "", arches=arches,
        composer_name=info.get("composer_name"), restricted_access=info.get("restricted_access", False),
        no_package_list=info.get("no_package_list", False), module_platform_id=data.get("module_platform_id", ""),
        oscap_name=data.get("oscap_name", ""), path=path)
    if not d.no_package_list:
        pkg_dir = path.parent if single_file else root / entry
        for arch in arches.values():
            arch.packages = {r.id: _packages(pkg_dir / f"{base}-{arch.name}-{r.id}{_PACKAGES_SUFFIX}")
                             for r in arch.repositories}
    return d


def _architecture(path: Path, name: str, raw: Any) -> Architecture:
    if not isinstance(raw, dict):
        raise _fail(path, f"{name} must be an object")
    types = raw.get("image_types", [])
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise _fail(path, f"{name}.image_types must be a list of strings")
    repos_raw = raw.get("repositories", [])
    if not isinstance(repos_raw, list):
        raise _fail(path, f"{name}.repositories must be a list")
    bootc = raw.get("bootc", [])
    if not isinstance(bootc, list) or not all(isinstance(b, dict) for b in bootc):
        raise _fail(path, f"{name}.bootc must be a list of objects")
    repos = [_repository(path, f"{name}.repositories[{i}]", r) for i, r in enumerate(repos_raw)]
    return Architecture(name=name, image_types=list(types), repositories=repos, bootc=list(bootc))


_REPO_TYPES: dict[str, type] = {"id": str, "baseurl": str, "metalink": str, "gpgkey": str, "check_gpg": bool,
                                "rhsm": bool}


def _repository(path: Path, where: str, raw: Any) -> Repository:
    if not isinstance(raw, dict):
        raise _fail(path, f"{where} must be an object")
    for key, typ in _REPO_TYPES.items():
        if raw.get(key) is not None and not isinstance(raw[key], typ):
            raise _fail(path, f"{where}.{key} must be a {'boolean' if typ is bool else 'string'}")
    tags = raw.get("image_type_tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        raise _fail(path, f"{where}.image_type_tags must be a list of strings")
    if (raw.get("baseurl") is None) == (raw.get("metalink") is None):
        # upstream ErrRepoSource
        raise _fail(path, f"{where}: repository must always have one of these properties: baseurl, metalink")
    return Repository(
        id=raw.get("id") or "", baseurl=raw.get("baseurl"), metalink=raw.get("metalink"),
        gpgkey=raw.get("gpgkey"), check_gpg=raw.get("check_gpg"), rhsm=raw.get("rhsm") or False,
        image_type_tags=tuple(tags) if tags is not None else None,
        extra={k: v for k, v in raw.items() if k not in _REPO_KEYS})


def _packages(path: Path) -> list[Package]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("data")
    if not isinstance(data, list) or not all(
            isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("summary", ""), str)
            for p in data):
        raise _fail(path, "must be a list of {\"name\", \"summary\"} objects")
    return [Package(p["name"], p.get("summary", "")) for p in data]

