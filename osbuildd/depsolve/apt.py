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
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from osbuildd.depsolve import DepsolveError, PackageInfo, PackageSpec
from osbuildd.distro import repocheck

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


def _repo_field(repo: Any, name: str, default: Any = None) -> Any:
    if isinstance(repo, dict):
        return repo.get(name, default)
    return getattr(repo, name, default)


def _sources_list(repos: list[Any], key_dir: Path | None = None) -> str:
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


def _as_dict(repo: Any) -> dict[str, Any]:
    if isinstance(repo, dict):
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

    def __init__(self, cache_dir: Path, distro: str, arch: str, repos: list[Any]) -> None:
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

    def _update_error(self, text: str) -> Exception:
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
        wanted = [await self._pin(spec) for spec in include]
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
            name, version, arch = unquote(fname)[: -len(".deb")].split("_")
            epoch = 0
            if ":" in version:
                e, version = version.split(":", 1)
                epoch = int(e)
            algo, _, hexd = digest.partition(":")
            if algo.upper() != "SHA256":
                raise _error("repository", f"no SHA256 for {name} in the index ({digest})", name)
            pkgs.append(PackageSpec(name=name, epoch=epoch, version=version, release="", arch=arch, url=url,
                                    checksum=f"sha256:{hexd.lower()}", size=int(size),
                                    repo_id=self._repo_for(url), check_gpg=False))
        if not pkgs:
            raise _error("conflict", f"apt resolved no packages: {err.strip()[:300]}", "")
        return sorted(pkgs, key=lambda p: p.name)

    async def _pin(self, spec: str) -> str:
        """``name``, ``name=1.2*`` or ``name-1.2*`` → an argument apt-get understands (exact version)."""
        spec = spec.strip()
        name, version = spec, ""
        if "=" in spec:
            name, version = spec.split("=", 1)
        else:
            # RPM-style "name-version" only when it is not itself a package name (e.g. "libfoo-1.2")
            m = re.match(r"^(.+?)-(\d[^-]*(?:-[^-]+)?)$", spec)
            if m and not await self._known(spec) and await self._known(m.group(1)):
                name, version = m.group(1), m.group(2)
        if not re.match(r"^[a-z0-9][a-z0-9+.-]+$", name):
            raise _error("not-found", f"invalid package name: {name!r}", name)
        if not version:
            return name
        if not any(c in version for c in "*?["):
            return f"{name}={version}"
        versions = await self._versions(name)
        matching = [v for v in versions if fnmatch.fnmatchcase(v, version)
                    or fnmatch.fnmatchcase(v.split(":", 1)[-1], version)]
        if not matching:
            raise _error("not-found", f"package {name}: no version matches {version!r} "
                         f"(available: {', '.join(versions) or 'none'})", name)
        return f"{name}={matching[0]}"  # madison lists newest first

    async def _known(self, name: str) -> bool:
        if not re.match(r"^[a-z0-9][a-z0-9+.-]+$", name):
            return False
        return bool(await self._versions(name))

    async def _versions(self, name: str) -> list[str]:
        rc, out, _ = await self._apt("apt-cache", "madison", name)
        return [parts[1].strip() for line in out.splitlines() if (parts := line.split("|")) and len(parts) >= 3]

    def _resolve_error(self, text: str, include: list[str]) -> Exception:
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


def _flock(path: Path) -> Any:
    f = open(path, "a")  # noqa: SIM115 - closed by the caller
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


# ---------------------------------------------------------------------------------------------
# public entry points (dispatched from osbuildd.depsolve)


def _repos_of(distro: Any, arch: str, repos: list[Any] | None) -> list[Any]:
    if repos:
        return list(repos)
    return list(distro.arch(arch).repositories)


async def depsolve(distro: Any, arch: str, sets: dict[str, Any], cache_dir: Path) -> dict[str, list[PackageSpec]]:
    """Resolve each package set (plus the required base) to pinned packages from the mirror."""
    result: dict[str, list[PackageSpec]] = {}
    for name, req in sets.items():
        include = list(_repo_field(req, "include") or [])
        exclude = list(_repo_field(req, "exclude") or [])
        root = AptRoot(Path(cache_dir), distro.name, arch, _repos_of(distro, arch, _repo_field(req, "repositories")))
        async with root.lock:
            result[name] = await root.resolve(include, exclude)
    return result


_INDEX: dict[str, tuple[float, dict[str, PackageInfo]]] = {}


def _read_packages(lists: Path, suites: dict[str, str]) -> dict[str, PackageInfo]:
    out: dict[str, PackageInfo] = {}
    for f in sorted(lists.glob("*_Packages")):
        repo_id = next((rid for suite, rid in suites.items() if f"_dists_{suite}_" in f.name), "")
        with open(f, encoding="utf-8", errors="replace") as fh:
            stanza: dict[str, str] = {}
            last = ""
            for line in [*fh, "\n"]:
                if line == "\n":
                    if "Package" in stanza:
                        stanza["_repo"] = repo_id
                        _add(out, stanza)
                    stanza, last = {}, ""
                elif line[0] in " \t":
                    if last == "Description":
                        stanza[last] += "\n" + line.strip()
                else:
                    key, _, value = line.partition(":")
                    last = key
                    if key in ("Package", "Version", "Architecture", "Description", "Homepage"):
                        stanza[key] = value.strip()
    return out


def _add(out: dict[str, PackageInfo], s: dict[str, str]) -> None:
    desc = s.get("Description", "")
    summary, _, long = desc.partition("\n")
    long = "\n".join("" if ln == "." else ln for ln in long.splitlines())
    version = s.get("Version", "")
    epoch = 0
    if ":" in version:
        e, version = version.split(":", 1)
        epoch = int(e)
    info = PackageInfo(name=s["Package"], summary=summary, description=long or summary,
                       homepage=s.get("Homepage", ""), epoch=epoch, version=version,
                       arch=s.get("Architecture", ""), repo_id=s.get("_repo", ""))
    prev = out.get(info.name)
    # several suites carry a package (bookworm, -updates, -security): show the newest version
    if prev is None or _newer(s.get("Version", ""), _full(prev)):
        out[info.name] = info


def _full(p: PackageInfo) -> str:
    return f"{p.epoch}:{p.version}" if p.epoch else p.version


def _newer(a: str, b: str) -> bool:
    """Debian version comparison (dpkg's algorithm) for choosing what search shows."""
    return _vercmp(a, b) > 0


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


def _vercmp(a: str, b: str) -> int:
    ea, _, ra = a.rpartition(":") if ":" in a else ("0", "", a)
    eb, _, rb = b.rpartition(":") if ":" in b else ("0", "", b)
    if int(ea or 0) != int(eb or 0):
        return int(ea or 0) - int(eb or 0)
    ua, _, da = ra.rpartition("-") if "-" in ra else (ra, "", "0")
    ub, _, db = rb.rpartition("-") if "-" in rb else (rb, "", "0")
    return _cmp_part(ua, ub) or _cmp_part(da, db)


async def search(distro: Any, arch: str, repos: list[Any] | None, patterns: list[str],
                 cache_dir: Path) -> list[PackageInfo]:
    """Packages whose name matches any glob in ``patterns`` (all when empty), sorted by name."""
    root = AptRoot(Path(cache_dir), distro.name, arch, _repos_of(distro, arch, repos))
    async with root.lock:
        await root.refresh()
    lists = root.root / "lists"
    mtime = max((f.stat().st_mtime for f in lists.glob("*_Packages")), default=0.0)
    cached = _INDEX.get(str(lists))
    if cached is None or cached[0] != mtime:
        suites = {str(_repo_field(r, "suite")): str(_repo_field(r, "id", "")) for r in root.repos}
        index = await asyncio.to_thread(_read_packages, lists, suites)
        _INDEX[str(lists)] = (mtime, index)
    else:
        index = cached[1]
    if not patterns:
        return [index[k] for k in sorted(index)]
    hits = []
    for name in sorted(index):
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            hits.append(index[name])
    return hits
