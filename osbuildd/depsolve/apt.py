"""Debian depsolver: apt's own resolver against the real mirror, with a private state directory.

Each (distro, arch) gets ``<cache_dir>/apt/<distro>-<arch>/`` holding an apt configuration that
ignores the host's (``APT_CONFIG`` + ``Dir::Etc``), an empty dpkg status (nothing installed, as
in a fresh bootstrap), the downloaded indexes and apt's binary cache. ``apt-get update`` verifies
InRelease with the Debian archive keyring (``signed-by``); ``apt-get install --print-uris`` resolves
and prints URL, size and SHA256 of every package the new system needs.
"""

from __future__ import annotations

import asyncio
import fcntl
import fnmatch
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeAlias
from urllib.parse import unquote

from osbuildd.depsolve import DepsolveError, PackageInfo, PackageSetRequest, PackageSpec, debversion
from osbuildd.distro import Repository, repocheck

if TYPE_CHECKING:
    from osbuildd.distro import Distro

# a repository as the distro data types it, or as a JSON object (the same field names)
AptRepo: TypeAlias = Repository | Mapping[str, Any]

DEBIAN_KEYRING = repocheck.DEBIAN_KEYRING
# Indexes younger than this are used as they are; older ones get a conditional `apt-get update`
# (If-Modified-Since on InRelease, so an unchanged mirror costs one small request per suite).
REFRESH_AFTER = 600.0
# mmdebstrap's minbase: everything Essential plus Priority: required.
REQUIRED_BASE = "?or(?essential,?priority(required))"
DEB_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}



def _error(kind: str, message: str, name: str) -> DepsolveError:
    """A DepsolveError naming the package, or the repository for repository errors."""
    if kind == "repository":
        return DepsolveError(kind, message, repository=name)
    return DepsolveError(kind, message, package=name)


# ---------------------------------------------------------------------------------------------
# private apt root


def deb_arch(arch: str) -> str:
    try:
        return DEB_ARCH[arch]
    except KeyError:
        raise _error("repository", f"architecture {arch!r} is not supported by the apt depsolver", arch) from None


def _repo_field(repo: AptRepo, name: str, default: object = None) -> Any:
    if isinstance(repo, Mapping):
        return repo.get(name, default)
    return getattr(repo, name, default)


def _sources_list(repos: list[AptRepo], key_dir: Path | None = None) -> str:
    """sources.list from typed fields only, each checked again here (defence in depth: a bad line
    from the database or config never reaches apt). Armoured keys are written under ``key_dir``."""
    lines = []
    for repo in repos:
        rid = _repo_field(repo, "id", "?")
        urls = _repo_field(repo, "baseurl") or []
        if isinstance(urls, str):
            urls = [urls]
        suite = _repo_field(repo, "suite")
        components = _repo_field(repo, "components")
        if components is None:
            components = [] if str(suite or "").endswith("/") else ["main"]
        if not urls or not suite:
            raise _error("repository", f"repository {rid}: an apt repository needs baseurl and suite", rid)
        try:
            repocheck.check_deb({**_as_dict(repo), "components": components})
            keyring = repocheck.deb_keyring(repo)
            if keyring and repocheck.is_armoured(keyring):
                keyring = _key_file(keyring, key_dir)
            line = repocheck.apt_line(urls[0], suite, components, keyring)
        except repocheck.RepoCheckError as e:
            raise _error("repository", f"repository {rid}: {e}", rid) from None
        lines.append(line)
    return "\n".join(lines) + "\n"


def _as_dict(repo: AptRepo) -> dict[str, Any]:
    if isinstance(repo, Mapping):
        return dict(repo)
    return {k: getattr(repo, k, None) for k in ("id", "name", "baseurl", "suite", "signed_by", "gpgkeys")}


def _key_file(text: str, key_dir: Path | None) -> str:
    """An armoured key as a file apt can name in signed-by (path by content hash)."""
    import hashlib

    name = hashlib.sha256(text.encode()).hexdigest()[:16] + ".asc"
    if key_dir is None:
        return f"/keys/{name}"   # only for the root's tag; the real root passes its key dir
    key_dir.mkdir(parents=True, exist_ok=True)
    path = key_dir / name
    if not path.exists():
        path.write_text(text)
    return str(path)


class AptRoot:
    """One private apt configuration + state for a (distro, arch, repositories) triple."""

    _locks: dict[str, asyncio.Lock] = {}

    def __init__(self, cache_dir: Path, distro: str, arch: str, repos: list[AptRepo]) -> None:
        self.arch = deb_arch(arch)
        self.repos = repos
        sources = _sources_list(repos)
        # different repository sets for the same distro get their own root
        import hashlib

        tag = hashlib.sha256(sources.encode()).hexdigest()[:8]
        self.root = Path(cache_dir) / "apt" / f"{distro}-{self.arch}-{tag}"
        self.sources = sources
        self.config = self.root / "apt.conf"
        self.lock = self._locks.setdefault(str(self.root), asyncio.Lock())

    def _prepare(self) -> None:
        r = self.root
        for d in ("etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d", "etc/trusted.gpg.d",
                  "lists/partial", "archives/partial", "cache", "dpkg", "log"):
            (r / d).mkdir(parents=True, exist_ok=True)
        status = r / "dpkg" / "status"
        if not status.exists():
            status.write_text("")
        sl = r / "etc" / "sources.list"
        self.sources = _sources_list(self.repos, r / "keys")
        if not sl.exists() or sl.read_text() != self.sources:
            sl.write_text(self.sources)
        conf = f"""
Dir "/";
Dir::Etc "{r}/etc";
Dir::Etc::main "{r}/etc/apt.conf";
Dir::Etc::parts "{r}/etc/apt.conf.d";
Dir::Etc::sourcelist "{r}/etc/sources.list";
Dir::Etc::sourceparts "{r}/etc/sources.list.d";
Dir::Etc::preferences "{r}/etc/preferences";
Dir::Etc::preferencesparts "{r}/etc/preferences.d";
Dir::Etc::trusted "{r}/etc/trusted.gpg";
Dir::Etc::trustedparts "{r}/etc/trusted.gpg.d";
Dir::State "{r}";
Dir::State::lists "{r}/lists";
Dir::State::status "{r}/dpkg/status";
Dir::Cache "{r}/cache";
Dir::Cache::archives "{r}/archives";
Dir::Log "{r}/log";
APT::Architecture "{self.arch}";
APT::Architectures {{ "{self.arch}"; }};
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT::Sandbox::User "root";
APT::Get::List-Cleanup "true";
Acquire::Languages "none";
Acquire::ForceHash "SHA256";
Acquire::Retries "2";
Acquire::http::Timeout "20";
Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";
Debug::NoLocking "true";
"""
        if not self.config.exists() or self.config.read_text() != conf:
            self.config.write_text(conf)

    async def _apt(self, *args: str, check: bool = False) -> tuple[int, str, str]:
        env = dict(os.environ, APT_CONFIG=str(self.config), LC_ALL="C.UTF-8", DEBIAN_FRONTEND="noninteractive")
        proc = await asyncio.create_subprocess_exec(
            *args, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        rc = proc.returncode or 0
        return rc, out.decode(errors="replace"), err.decode(errors="replace")

    def _stamp(self) -> Path:
        return self.root / "updated"

    async def refresh(self, force: bool = False) -> None:
        """Download/refresh the indexes when they are missing or older than REFRESH_AFTER."""
        await asyncio.to_thread(self._prepare)
        stamp = self._stamp()
        if not force and stamp.exists() and time.time() - stamp.stat().st_mtime < REFRESH_AFTER:
            return
        lockfile = await asyncio.to_thread(_flock, self.root / "lock")
        try:
            rc, out, err = await self._apt("apt-get", "update", "-q", "-o", "APT::Update::Error-Mode=any")
            failed = "\nE: " in "\n" + err or ("Failed to fetch" in err)
            if rc != 0 or failed:
                raise self._update_error(err or out)
            stamp.touch()
        finally:
            await asyncio.to_thread(lockfile.close)

    def _update_error(self, text: str) -> DepsolveError:
        for line in text.splitlines():
            m = re.search(r"(?:Failed to fetch|Release file for|repository) '?(\S+?)'?\s", line + " ")
            if m:
                url = m.group(1)
                rid = self._repo_for(url) or url
                return _error("repository", f"repository {rid} is unreachable or invalid: {line.strip()}", rid)
        first = next((ln for ln in text.splitlines() if ln.startswith(("E:", "W:"))), text.strip()[:300])
        return _error("repository", f"apt-get update failed: {first}", "")

    def _repo_for(self, url: str) -> str:
        best, best_len = "", -1
        for repo in self.repos:
            for base in _repo_field(repo, "baseurl") or []:
                b = base.rstrip("/") + "/"
                if url.startswith(b) and len(b) > best_len:
                    best, best_len = _repo_field(repo, "id", "") or base, len(b)
        return best

    # -----------------------------------------------------------------------------------------
    async def resolve(self, include: list[str], exclude: list[str]) -> list[PackageSpec]:
        await self.refresh()
        wanted = await self._pins(include)
        args = ["apt-get", "install", "-qq", "-y", "--print-uris", "--no-install-recommends",
                REQUIRED_BASE, *wanted, *[f"{name}-" for name in exclude]]
        rc, out, err = await self._apt(*args)
        if rc != 0:
            # -qq hides apt's explanation; a simulation at normal verbosity prints which package
            # depends on / conflicts with what
            _, sout, serr = await self._apt("apt-get", "install", "-s", "-q", *args[5:])
            raise self._resolve_error(err + out + serr + sout, include)
        pkgs = []
        for line in out.splitlines():
            m = re.match(r"^'([^']+)' (\S+) (\d+) (\S+)", line)
            if not m:
                continue
            url, fname, size, digest = m.groups()
            name, full, arch = unquote(fname)[: -len(".deb")].split("_")
            epoch, version, release = debversion.weldr_fields(full)
            algo, _, hexd = digest.partition(":")
            if algo.upper() != "SHA256":
                raise _error("repository", f"no SHA256 for {name} in the index ({digest})", name)
            pkgs.append(PackageSpec(name=name, epoch=epoch, version=version, release=release, arch=arch, url=url,
                                    checksum=f"sha256:{hexd.lower()}", size=int(size),
                                    repo_id=self._repo_for(url), check_gpg=False, deb_version=full))
        if not pkgs:
            raise _error("conflict", f"apt resolved no packages: {err.strip()[:300]}", "")
        return sorted(pkgs, key=lambda p: p.name)

    async def _pins(self, include: list[str]) -> list[str]:
        """Each spec as an argument apt-get understands: ``name``, or ``name=<exact version>`` for
        ``name=V``/``name-V`` where V is a Debian version, upstream's frozen ``[epoch:]version-release.arch``
        or a glob. One ``apt-cache madison`` call answers every name that needs looking up."""
        specs = [s.strip() for s in include]
        # plain names need no lookup; only "name-version"-looking specs are probed
        probe = {n for s in specs if "=" not in s and _hyphen_splits(s)
                 for n in (s, *(h for h, _ in _hyphen_splits(s)))}
        known = await self._versions_of(sorted(probe)) if probe else {}
        parsed = [self._split_spec(s, known) for s in specs]
        need = sorted({n for n, v in parsed if v and n not in known})
        if need:
            known.update(await self._versions_of(need))
        return [self._pin(n, v, known.get(n, [])) for n, v in parsed]

    @staticmethod
    def _split_spec(spec: str, known: dict[str, list[str]]) -> tuple[str, str]:
        if "=" in spec:
            name, version = spec.split("=", 1)
            return name, version
        if spec in known:   # "libfoo-1.2" may be a package name of its own
            return spec, ""
        # RPM-style "name-version": the first split whose name is a package ("foo-1.2-3-4" -> foo)
        return next(((h, t) for h, t in _hyphen_splits(spec) if h in known), (spec, ""))

    def _pin(self, name: str, version: str, available: list[str]) -> str:
        if not _NAME_RE.match(name):
            raise _error("not-found", f"invalid package name: {name!r}", name)
        if not version:
            return name
        version, arch = debversion.split_arch(version.strip())
        if arch and debversion.deb_arch_of(arch) not in (self.arch, "all"):
            raise _error("not-found", f"package {name}: version {version} is for {arch}, "
                         f"this depsolve is for {self.arch}", name)
        if not available:
            return f"{name}={version}"   # apt names what is wrong (unknown package, virtual, ...)
        if any(c in version for c in "*?["):
            matching = [v for v in available if fnmatch.fnmatchcase(v, version)
                        or fnmatch.fnmatchcase(v.split(":", 1)[-1], version)]
        else:
            matching = [v for cand in debversion.request_candidates(version) for v in available
                        if debversion.matches(v, cand)]
        if not matching:
            raise _error("not-found", f"package {name}: no version matches {version!r} "
                         f"(available: {', '.join(available)})", name)
        return f"{name}={matching[0]}"  # madison lists newest first

    async def _versions_of(self, names: list[str]) -> dict[str, list[str]]:
        """Every version the indexes hold of each name (newest first); unknown names are absent."""
        names = [n for n in names if _NAME_RE.match(n)]
        if not names:
            return {}
        _, out, _ = await self._apt("apt-cache", "madison", *names)
        found: dict[str, list[str]] = {}
        for line in out.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) >= 3 and parts[1] not in found.get(parts[0], []):
                found.setdefault(parts[0], []).append(parts[1])
        return found

    def _resolve_error(self, text: str, include: list[str]) -> DepsolveError:
        m = re.search(r"Unable to locate package (\S+)", text)
        if m:
            return _error("not-found", f"package not found: {m.group(1)}", m.group(1))
        m = re.search(r"Version '([^']+)' for '([^']+)' was not found", text)
        if m:
            return _error("not-found", f"package {m.group(2)}: version {m.group(1)} not found", m.group(2))
        m = re.search(r"Package '?([^' ]+)'? has no installation candidate", text)
        if m:
            return _error("not-found", f"package {m.group(1)} has no installation candidate", m.group(1))
        if "unmet dependencies" in text or "Broken packages" in text or "conflict" in text.lower():
            detail = [ln.strip() for ln in text.splitlines()
                      if re.search(r"(Depends|Conflicts|Breaks|PreDepends):", ln)]
            names = re.findall(r"^\s*(\S+) :", text, re.M)
            name = names[0] if names else ""
            return _error("conflict", f"unresolvable dependencies for {name or ', '.join(include)}: "
                          + "; ".join(detail)[:500], name)
        first = next((ln for ln in text.splitlines() if ln.startswith("E:")), text.strip()[:300])
        return _error("conflict", f"apt failed: {first}", "")


_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


def _hyphen_splits(spec: str) -> list[tuple[str, str]]:
    """(name, version) for each hyphen in ``spec`` followed by a digit, leftmost first."""
    return [(spec[:m.start()], spec[m.start() + 1:]) for m in re.finditer(r"-(?=\d)", spec) if m.start() > 0]


def _flock(path: Path) -> IO[str]:
    f = open(path, "a")  # noqa: SIM115 - closed by the caller
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


# ---------------------------------------------------------------------------------------------
# public entry points (dispatched from osbuildd.depsolve)


def _repos_of(distro: Distro, arch: str, repos: Sequence[AptRepo] | None) -> list[AptRepo]:
    if repos:
        return list(repos)
    return list(distro.arch(arch).repositories)


async def depsolve(distro: Distro, arch: str, sets: dict[str, PackageSetRequest], cache_dir: Path) -> dict[str, list[PackageSpec]]:
    """Resolve each package set (plus the required base) to pinned packages from the mirror."""
    result: dict[str, list[PackageSpec]] = {}
    for name, req in sets.items():
        include = list(req.include or [])
        exclude = list(req.exclude or [])
        repos: list[AptRepo] = list(req.repositories or [])
        root = AptRoot(Path(cache_dir), distro.name, arch, _repos_of(distro, arch, repos))
        async with root.lock:
            result[name] = await root.resolve(include, exclude)
    return result


@dataclass(frozen=True)
class Location:
    """Where a package's .deb is (from the index), to read its metadata (debmeta)."""

    url: str
    sha256: str
    size: int


_INDEX: dict[str, tuple[float, dict[str, PackageInfo], dict[str, Location]]] = {}
_INDEX_KEYS = ("Package", "Version", "Architecture", "Description", "Homepage", "Source", "Filename",
               "SHA256", "Size")


def _base_url(repo: AptRepo) -> str:
    """The repository's (first) base URL, without a trailing slash."""
    urls = _repo_field(repo, "baseurl") or []
    return str(urls if isinstance(urls, str) else (urls[0] if urls else "")).rstrip("/")


def _list_prefix(repo: AptRepo) -> str:
    """The name apt gives a repository's index files (URItoFileName of <base>/dists/<suite>)."""
    base = re.sub(r"^[a-z+]+://", "", _base_url(repo))
    base = re.sub(r"^[^/@]*@", "", base)      # credentials never reach the file name
    suite = str(_repo_field(repo, "suite") or "")
    path = f"{base}/{suite}" if suite.endswith("/") else f"{base}/dists/{suite}"
    return unquote(path).rstrip("/").replace("/", "_") + "_"


def _repo_of_list(fname: str, repos: list[AptRepo]) -> AptRepo | None:
    best = None
    for repo in repos:
        if fname.startswith(_list_prefix(repo)):
            best = repo
    if best is None:   # an unusual URL spelling: fall back to the suite alone
        best = next((r for r in repos if f"_dists_{_repo_field(r, 'suite')}_" in fname), None)
    return best


def _read_packages(lists: Path, repos: list[AptRepo]) -> tuple[dict[str, PackageInfo], dict[str, Location]]:
    out: dict[str, PackageInfo] = {}
    locs: dict[str, Location] = {}
    for f in sorted(lists.glob("*_Packages")):
        repo = _repo_of_list(f.name, repos)
        repo_id = str(_repo_field(repo, "id", "") or "") if repo is not None else ""
        base = _base_url(repo) if repo is not None else ""
        with open(f, encoding="utf-8", errors="replace") as fh:
            stanza: dict[str, str] = {}
            last = ""
            for line in [*fh, "\n"]:
                if line == "\n":
                    if "Package" in stanza:
                        stanza["_repo"] = repo_id
                        _add(out, locs, stanza, base)
                    stanza, last = {}, ""
                elif line[0] in " \t":
                    if last == "Description":
                        stanza[last] += "\n" + line.strip()
                else:
                    key, _, value = line.partition(":")
                    last = key
                    if key in _INDEX_KEYS:
                        stanza[key] = value.strip()
    return out, locs


def _source_ref(s: dict[str, str], version: str) -> str:
    """``Source: util-linux (2.38.1-5)`` / ``Source: tmux`` / absent -> ``src=version`` (what
    ``apt-get source`` takes to fetch exactly that source)."""
    m = re.match(r"^(\S+)(?:\s+\((\S+)\))?", s.get("Source", ""))
    name = m.group(1) if m else s["Package"]
    src_version = (m.group(2) if m and m.group(2) else "") or version
    return f"{name}={src_version}"


def _add(out: dict[str, PackageInfo], locs: dict[str, Location], s: dict[str, str], base: str) -> None:
    full = s.get("Version", "")
    prev = out.get(s["Package"])
    # several suites carry a package (bookworm, -updates, -security): show the newest version
    try:
        if prev is not None and debversion.vercmp(full, prev.deb_version) <= 0:
            return
        epoch, version, release = debversion.weldr_fields(full)
    except debversion.VersionError:
        return
    desc = s.get("Description", "")
    summary, _, long = desc.partition("\n")
    long = "\n".join("" if ln == "." else ln for ln in long.splitlines())
    info = PackageInfo(name=s["Package"], summary=summary, description=long or summary,
                       homepage=s.get("Homepage", ""), epoch=epoch, version=version, release=release,
                       arch=s.get("Architecture", ""), repo_id=s.get("_repo", ""),
                       source_ref=_source_ref(s, full), deb_version=full)
    out[info.name] = info
    filename = s.get("Filename", "")
    # a path that climbs out of the repository (file: repositories) is not followed
    if base and filename and s.get("SHA256") and not filename.startswith("/") and ".." not in filename.split("/"):
        size = int(s["Size"]) if s.get("Size", "").isdigit() else 0
        locs[info.name] = Location(f"{base}/{filename}", s["SHA256"].lower(), size)


async def index(distro: Distro, arch: str, repos: Sequence[AptRepo] | None,
                cache_dir: Path) -> tuple[dict[str, PackageInfo], dict[str, Location]]:
    """The newest version of every package in the repositories, and where its .deb is."""
    root = AptRoot(Path(cache_dir), distro.name, arch, _repos_of(distro, arch, repos))
    async with root.lock:
        await root.refresh()
    lists = root.root / "lists"
    mtime = max((f.stat().st_mtime for f in lists.glob("*_Packages")), default=0.0)
    cached = _INDEX.get(str(lists))
    if cached is None or cached[0] != mtime:
        infos, locs = await asyncio.to_thread(_read_packages, lists, root.repos)
        _INDEX[str(lists)] = (mtime, infos, locs)
        return infos, locs
    return cached[1], cached[2]


async def search(distro: Distro, arch: str, repos: list[Repository] | None, patterns: list[str],
                 cache_dir: Path) -> list[PackageInfo]:
    """Packages whose name matches any glob in ``patterns`` (all when empty), sorted by name."""
    found, _ = await index(distro, arch, repos, cache_dir)
    if not patterns:
        return [found[k] for k in sorted(found)]
    return [found[name] for name in sorted(found) if any(fnmatch.fnmatchcase(name, p) for p in patterns)]
