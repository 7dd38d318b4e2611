"""``osbuildd manifest``: depsolve and print the osbuild manifest (as image-builder's CLI ``manifest``).

The output can be inspected, or fed to ``osbuildd-engine`` / upstream osbuild by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:   # imported lazily at run time: the CLI starts fast
    from osbuildd.blueprint import Blueprint
    from osbuildd.distro import Distro, Repository

USAGE_EXIT = 2
FAILED_EXIT = 1


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:   # one line, exit 2 (not argparse's whole usage)
        raise UsageError(message)


def _default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/cache/osbuildd")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "osbuildd"


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="osbuildd manifest", description="Depsolve and print the osbuild manifest of an image.")
    p.add_argument("--distro", help="distribution, e.g. debian-12 (default: the host's)")
    p.add_argument("--type", required=True, dest="image_type", help="image type, e.g. qcow2")
    p.add_argument("--arch", help="architecture (default: the host's)")
    p.add_argument("--blueprint", metavar="FILE", help="blueprint, TOML or JSON")
    p.add_argument("--repo", action="append", default=[], metavar="URL",
                   help="use this repository instead of the distribution's (repeatable)")
    p.add_argument("--state-dir", metavar="DIR", help=f"where the depsolve cache lives (default: {_default_state_dir()})")
    p.add_argument("--seed", type=int, default=0, help="seed for UUIDs in the manifest (default 0)")
    p.add_argument("--size", type=int, help="disk size in bytes (default: the image type's)")
    return p


def _load_blueprint(path: str | None) -> Blueprint:
    from osbuildd.blueprint import Blueprint
    if path is None:
        bp = Blueprint.from_json({"name": "osbuildd-manifest", "version": "0.0.1"})
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--blueprint: cannot read {path}: {exc.strerror}") from None
        bp = Blueprint.from_json(text) if path.endswith(".json") else Blueprint.from_toml(text)
    bp.initialize()
    return bp


def _repositories(distro: Distro, urls: list[str]) -> list[Repository]:
    from urllib.parse import unquote, urlsplit

    from osbuildd.distro import Repository, repocheck
    repos = []
    for i, url in enumerate(urls):
        if "://" not in url:
            raise UsageError(f"--repo: {url!r} is not a URL")
        if url.startswith("file:"):
            # the operator named this directory on the command line: allow it for this run
            repocheck.allow_local_dir(unquote(urlsplit(url).path))
        try:
            repocheck.check_url(url, "--repo")
        except repocheck.RepoCheckError as e:
            raise UsageError(str(e)) from None
        if distro.family == "debian":
            keyring = next((r.signed_by for r in distro.arch(next(iter(distro.arches))).repositories if r.signed_by),
                           None)
            repos.append(Repository(id=f"repo-{i}", name=url, baseurl=[url], suite=distro.codename,
                                    components=["main"], signed_by=keyring))
        else:
            repos.append(Repository(id=f"repo-{i}", name=url, baseurl=[url]))
    return repos


async def _manifest(args: argparse.Namespace) -> dict[str, Any]:
    from osbuildd import depsolve, distro, manifest
    try:
        d = distro.get(args.distro or distro.host())
        arch = d.arch(args.arch or platform.machine())
        it = arch.image_type(args.image_type)
    except LookupError as exc:
        raise UsageError(str(exc)) from None
    bp = _load_blueprint(args.blueprint)
    sets = manifest.package_sets(d, arch.name, it, bp)
    if args.repo:
        repos = _repositories(d, args.repo)
        for req in sets.values():
            req.repositories = repos
    state = Path(args.state_dir)   # made absolute (and locked) by main()
    depsolved = await depsolve.depsolve(d, arch.name, sets, state / "cache" / "depsolve")
    return manifest.generate(d, arch.name, it, bp, depsolved, args.seed, args.size).manifest


def main(argv: list[str] | None = None) -> int:
    from osbuildd import statedir
    from osbuildd.blueprint import BlueprintError
    from osbuildd.depsolve import DepsolveError
    lock = None
    try:
        args = parser().parse_args(argv)
        # apt resolves a relative cache path against its own root: one absolute path from here on
        args.state_dir = str(statedir.absolute(args.state_dir or _default_state_dir()))
        statedir.private_umask()
        try:
            lock = statedir.acquire(Path(args.state_dir))   # the depsolve cache is the state dir's
        except statedir.StateDirBusy as exc:
            raise UsageError(str(exc)) from None
        except OSError as exc:
            raise UsageError(f"--state-dir {args.state_dir}: {exc.strerror or exc}") from None
        out = asyncio.run(_manifest(args))
    except UsageError as exc:
        print(f"osbuildd manifest: {exc}", file=sys.stderr)
        return USAGE_EXIT
    except BlueprintError as exc:
        # a compose-time check names its field in the message already (Weldr shows only the message)
        where = f"{exc.field}: " if exc.field and not exc.message.startswith(exc.field) else ""
        print(f"osbuildd manifest: blueprint: {where}{exc.message}", file=sys.stderr)
        return USAGE_EXIT
    except DepsolveError as exc:
        print(f"osbuildd manifest: depsolve failed: {exc}", file=sys.stderr)
        return FAILED_EXIT
    finally:
        if lock is not None:
            lock.release()
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
