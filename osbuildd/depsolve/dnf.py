"""dnf solver: libdnf through Debian's /usr/bin/python3 + python3-dnf, as a helper process (JSON in/out).

The helper (`dnf_helper.py`) resolves against the request's repositories with its metadata cache
under `<cache_dir>/dnf/`. One helper process per call; the event loop only waits on its pipes.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osbuildd.depsolve import DepsolveError, PackageInfo, PackageSetRequest, PackageSpec
from osbuildd.distro import repocheck

if TYPE_CHECKING:
    from osbuildd.distro import Distro, Repository

HELPER = Path(__file__).with_name("dnf_helper.py")
SYSTEM_PYTHON = os.environ.get("OSBUILDD_DNF_PYTHON", "/usr/bin/python3")


# One helper at a time per metadata cache: concurrent libdnf downloads into one cachedir race.
_CACHE_LOCKS: dict[tuple[int, str], asyncio.Lock] = {}


def _repo_json(repo: Repository) -> dict[str, Any]:
    # checked again at use: a bad field from the database or config never reaches dnf
    try:
        repocheck.check_rpm(repo)
    except repocheck.RepoCheckError as e:
        raise DepsolveError("repository", f"repository {repo.id}: {e}", repository=str(repo.id)) from None
    return {"id": repo.id, "name": repo.name or repo.id, "baseurl": list(repo.baseurl or []),
            "metalink": repo.metalink or "", "mirrorlist": repo.mirrorlist or "",
            "gpgkeys": list(repo.gpgkeys or []), "check_gpg": bool(repo.check_gpg),
            "check_repogpg": bool(repo.check_repogpg), "sslverify": bool(repo.sslverify)}


async def _run(request: dict[str, Any]) -> dict[str, Any]:
    key = (id(asyncio.get_running_loop()), request["cachedir"])   # a Lock belongs to one loop
    lock = _CACHE_LOCKS.setdefault(key, asyncio.Lock())
    async with lock:
        return await _run_helper(request)


async def _run_helper(request: dict[str, Any]) -> dict[str, Any]:
    try:
        proc = await asyncio.create_subprocess_exec(
            SYSTEM_PYTHON, "-I", str(HELPER), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"})
    except FileNotFoundError:
        raise DepsolveError("repository", f"dnf depsolve needs {SYSTEM_PYTHON} with python3-dnf") from None
    try:
        out, err = await proc.communicate(json.dumps(request).encode())
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    try:
        reply: dict[str, Any] = json.loads(out or b"{}")
    except ValueError:
        reply = {}
    if "error" in reply:
        e = reply["error"]
        kind = e.get("kind", "repository")
        if kind == "request":
            kind = "repository"
        raise DepsolveError(kind, e.get("reason", "dnf depsolve failed"), package=e.get("package", ""),
                            repository=e.get("repository", ""))
    if proc.returncode != 0 or not reply:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise DepsolveError("repository", f"dnf helper failed (exit {proc.returncode}): {tail[0]}")
    return reply


def _base_request(distro: Distro, arch: str, command: str, repos: list[Repository], cache_dir: Path) -> dict[str, Any]:
    return {"command": command, "arch": arch, "releasever": distro.release_version,
            "module_platform_id": distro.module_platform_id,
            "cachedir": str(Path(cache_dir) / "dnf" / f"{distro.name}-{arch}"),
            "repos": [_repo_json(r) for r in repos]}


async def depsolve(distro: Distro, arch: str, sets: dict[str, PackageSetRequest],
                   cache_dir: Path) -> dict[str, list[PackageSpec]]:
    repos: dict[str, Repository] = {}
    set_reqs = []
    for name, req in sets.items():
        set_repos = req.repositories or distro.arch(arch).repositories
        for r in set_repos:
            repos.setdefault(r.id, r)
        set_reqs.append({"name": name, "include": list(req.include), "exclude": list(req.exclude),
                         "repo_ids": [r.id for r in set_repos]})
    if not repos:
        raise DepsolveError("repository", f"no repositories for {distro.name}/{arch}")
    request = _base_request(distro, arch, "depsolve", list(repos.values()), cache_dir)
    request["sets"] = set_reqs
    reply = await _run(request)
    return {name: [PackageSpec.from_dict(p) for p in pkgs] for name, pkgs in reply["sets"].items()}


async def search(distro: Distro, arch: str, repos: list[Repository], patterns: list[str],
                 cache_dir: Path) -> list[PackageInfo]:
    repos = repos or distro.arch(arch).repositories
    request = _base_request(distro, arch, "search", repos, cache_dir)
    request["patterns"] = list(patterns)
    reply = await _run(request)
    return [PackageInfo(**p) for p in reply["packages"]]
