#!/usr/bin/python3 -I
"""dnf depsolve helper, run with the system Python that has python3-dnf (libdnf/hawkey).

Not imported by osbuildd itself (its venv has no dnf): `dnf.py` runs it as a subprocess with a JSON
request on stdin and reads one JSON object from stdout, in the manner of upstream's
osbuild-depsolve-dnf. Request:

    {"command": "depsolve" | "search",
     "arch": "x86_64", "releasever": "43", "module_platform_id": "platform:f43", "cachedir": "/...",
     "repos": [{"id", "name", "baseurl": [...], "metalink", "mirrorlist", "gpgkeys": [...],
                "check_gpg", "check_repogpg", "sslverify"}],
     "sets": [{"name": "os", "include": [...], "exclude": [...], "repo_ids": [...]}],   # depsolve
     "patterns": ["glob", ...]}                                                        # search

Reply: {"sets": {"os": [package, ...]}} / {"packages": [info, ...]}, or on failure
{"error": {"kind": "not-found" | "conflict" | "repository" | "request", "reason": "...",
           "package": "...", "repository": "..."}} with exit status 1.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from typing import Any

import dnf
import dnf.exceptions
import hawkey


class HelperError(Exception):
    def __init__(self, kind: str, reason: str, package: str = "", repository: str = "") -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.package = package
        self.repository = repository


# JSON documents are dict[str, Any]; dnf's objects are Any (python3-dnf ships no type information)
Request = dict[str, Any]


def make_base(req: Request, repos: list[dict[str, Any]]) -> Any:
    base = dnf.Base()
    conf = base.conf
    conf.config_file_path = "/dev/null"
    conf.reposdir = []
    conf.cachedir = req["cachedir"]
    conf.persistdir = os.path.join(req["cachedir"], "persist")
    conf.module_platform_id = req.get("module_platform_id") or None
    conf.zchunk = False          # one cache for several arches; zchunk deltas get confused by that
    conf.install_weak_deps = True
    conf.substitutions["arch"] = req["arch"]
    conf.substitutions["basearch"] = dnf.rpm.basearch(req["arch"])
    conf.substitutions["releasever"] = req.get("releasever") or ""
    for r in repos:
        repo = dnf.repo.Repo(r["id"], conf)
        repo.name = r.get("name") or r["id"]
        if r.get("baseurl"):
            repo.baseurl = list(r["baseurl"])
        if r.get("metalink"):
            repo.metalink = r["metalink"]
        if r.get("mirrorlist"):
            repo.mirrorlist = r["mirrorlist"]
        repo.sslverify = r.get("sslverify", True)
        repo.gpgcheck = bool(r.get("check_gpg"))
        repo.repo_gpgcheck = bool(r.get("check_repogpg"))
        repo.gpgkey = [k for k in r.get("gpgkeys") or [] if "://" in k]
        repo.metadata_expire = "20s" if any(u.startswith("file:") for u in repo.baseurl) else "6h"
        repo.skip_if_unavailable = False
        base.repos.add(repo)
    try:
        base.fill_sack(load_system_repo=False)
    except dnf.exceptions.RepoError as e:
        rid = getattr(e, "repo_id", "") or _repo_in(str(e), repos)
        raise HelperError("repository", f"repository {rid or '?'}: {e}", repository=rid) from None
    try:
        base.read_comps(arch_filter=True)
    except dnf.exceptions.Error:
        pass   # repositories without comps: only @group specs will fail, by name
    return base


def _repo_in(text: str, repos: list[dict[str, Any]]) -> str:
    for r in repos:
        if r["id"] in text:
            return str(r["id"])
    return ""


def _checksum(pkg: Any) -> str:
    kind, value = pkg.chksum
    return f"{hawkey.chksum_name(kind)}:{value.hex()}"


def _url(pkg: Any) -> str | None:
    try:
        url: str | None = pkg.remote_location()
    except Exception:   # noqa: BLE001 - libdnf raises plain errors for repos without mirrors
        url = None
    if not url and pkg.repo.baseurl:
        url = str(pkg.repo.baseurl[0]).rstrip("/") + "/" + str(pkg.location)
    return url


def depsolve(req: Request) -> dict[str, Any]:
    repos = req["repos"]
    result: dict[str, list[dict[str, Any]]] = {}
    bases: dict[tuple[str, ...], Any] = {}
    for s in req["sets"]:
        ids = tuple(sorted(s.get("repo_ids") or [r["id"] for r in repos]))
        if ids not in bases:
            bases[ids] = make_base(req, [r for r in repos if r["id"] in ids])
        base = bases[ids]
        base.reset(goal=True)
        base.sack.reset_excludes()
        try:
            base.install_specs(s["include"], exclude=s.get("exclude") or [])
        except dnf.exceptions.MarkingErrors as e:
            missing = list(e.no_match_pkg_specs or []) + ["@" + g for g in (e.no_match_group_specs or [])]
            missing += list(getattr(e, "error_pkg_specs", []) or []) + list(getattr(e, "module_depsolv_errors", []) or [])
            name = str(missing[0]) if missing else ""
            raise HelperError("not-found", f"no package matches {', '.join(map(str, missing)) or e}"
                              f" in package set {s['name']!r}", package=name) from None
        try:
            base.resolve()
        except dnf.exceptions.DepsolveError as e:
            text = " ".join(str(e).split())
            m = re.search(r"needed by (\S+)|package (\S+)", text)
            pkg = (m.group(1) or m.group(2)) if m else ""
            raise HelperError("conflict", f"package set {s['name']!r}: {text}", package=pkg) from None
        pkgs = []
        for p in sorted(base.transaction.install_set, key=lambda p: (p.name, p.arch, p.evr)):
            pkgs.append({"name": p.name, "epoch": p.epoch, "version": p.version, "release": p.release,
                         "arch": p.arch, "url": _url(p), "checksum": _checksum(p),
                         "size": p.downloadsize, "repo_id": p.reponame,
                         "check_gpg": bool(p.repo.gpgcheck)})
        result[s["name"]] = pkgs
    return {"sets": result}


def search(req: Request) -> dict[str, Any]:
    base = make_base(req, req["repos"])
    q = base.sack.query().available()
    patterns = req.get("patterns") or []
    if patterns:
        q = q.filter(name__glob=patterns)
    out = []
    for p in sorted(q.latest(), key=lambda p: (p.name, p.arch)):
        out.append({"name": p.name, "summary": p.summary or "", "description": p.description or "",
                    "homepage": p.url or "", "license": p.license or "", "epoch": p.epoch,
                    "version": p.version, "release": p.release, "arch": p.arch,
                    "build_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(p.buildtime))
                    if p.buildtime else "",
                    "repo_id": p.reponame, "source_ref": p.sourcerpm or ""})
    return {"packages": out}


def main() -> int:
    try:
        req = json.load(sys.stdin)
        os.makedirs(req["cachedir"], exist_ok=True)
        if req.get("command") == "depsolve":
            out = depsolve(req)
        elif req.get("command") == "search":
            out = search(req)
        else:
            raise HelperError("request", f"unknown command {req.get('command')!r}")
    except HelperError as e:
        json.dump({"error": {"kind": e.kind, "reason": e.reason, "package": e.package,
                             "repository": e.repository}}, sys.stdout)
        return 1
    except (ValueError, KeyError) as e:
        json.dump({"error": {"kind": "request", "reason": f"bad request: {e}"}}, sys.stdout)
        return 1
    except dnf.exceptions.Error as e:
        json.dump({"error": {"kind": "repository", "reason": str(e)}}, sys.stdout)
        return 1
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
