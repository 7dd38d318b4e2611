"""What the compose service stores for a request, as plain data: the checks a request passes, the
arguments of its depsolve, manifest and build jobs, upstream's target JSON and its ``composes`` row.
``ComposeService`` (service.py) runs the steps; nothing here touches the database."""

from __future__ import annotations

import datetime
import platform
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osbuildd.common.redact import redact
from osbuildd.depsolve import PackageSetRequest
from osbuildd.distro import Arch, Distro, ImageType, Repository, repocheck
from osbuildd.queue import GraphJob

from .model import LOCAL_TARGETS, ComposeRequest, ComposeRequestError, UploadTarget

# Upload targets the build job knows how to run (osbuildd/upload); upstream names.
KNOWN_TARGETS = frozenset({
    "org.osbuild.aws", "org.osbuild.aws.s3", "org.osbuild.gcp", "org.osbuild.azure",
    "org.osbuild.azure.image", *LOCAL_TARGETS,
})
MAX_SIZE = 64 << 40   # 64 TiB: anything bigger is a typo, not an image
DEPSOLVE, MANIFEST = "depsolve", "manifest-id-only"
BUILD_SET = "build"   # the package set of the build root; the others are the image's (payload)


def host_arch() -> str:
    m = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def build_type(arch: str) -> str:
    return f"osbuild:{arch}"


def check_repositories(repos: list[Repository], where: str = "repositories") -> None:
    for i, r in enumerate(repos):
        at = f"{where}[{i}]"
        if not (r.baseurl or r.mirrorlist or r.metalink):
            raise ComposeRequestError(at, "must specify baseurl, mirrorlist, or metalink", topic="repositories")
        if r.check_gpg and not r.gpgkeys and not r.signed_by and not r.suite:
            raise ComposeRequestError(at, "check_gpg is set but no gpgkey is given", topic="repositories")
        try:
            repocheck.check(r)
        except repocheck.RepoCheckError as e:
            raise ComposeRequestError(f"{at}.{e.field}", str(e), topic="repositories") from None


def check_size(size: object) -> None:
    if size is None:
        return
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ComposeRequestError("size", f"must be a non-negative number of bytes, got {size!r}")
    if size > MAX_SIZE:
        raise ComposeRequestError("size", f"{size} bytes is larger than the maximum of {MAX_SIZE}")


def check_targets(targets: list[UploadTarget]) -> None:
    for i, t in enumerate(targets):
        if t.name not in KNOWN_TARGETS:
            raise ComposeRequestError(f"targets[{i}].name", f"unknown upload target {t.name!r}")
        if not isinstance(t.options, dict):
            raise ComposeRequestError(f"targets[{i}].options", "must be an object")


def package_sets_json(sets: dict[str, PackageSetRequest], req: ComposeRequest) -> dict[str, Any]:
    """The depsolve job's package sets: the request's repositories (else each set's defaults), and
    its payload repositories added to the image's sets only (upstream: not to the build root's)."""
    out = {}
    for name, s in sets.items():
        repos = list(req.repositories if req.repositories is not None else s.repositories)
        if name != BUILD_SET:
            repos += req.payload_repositories or []
        out[name] = [{"include": list(s.include), "exclude": list(s.exclude), "repos": [r.to_dict() for r in repos]}]
    return out


def target_json(t: UploadTarget, export: str, filename: str, created: float) -> dict[str, Any]:
    """Upstream's ``target.Target`` JSON as the osbuild job carries it."""
    return {
        "uuid": str(uuid.uuid4()), "image_name": t.image_name or filename, "name": t.name,
        "created": datetime.datetime.fromtimestamp(created, datetime.UTC).isoformat().replace("+00:00", "Z"),
        "status": "WAITING", "options": t.options,
        "osbuild_artifact": {"export_filename": filename, "export_name": export},
    }


def depsolve_args(d: Distro, arch: Arch, it: ImageType, package_sets: dict[str, Any]) -> dict[str, Any]:
    return {"package_sets": package_sets, "module_platform_id": d.module_platform_id, "arch": arch.name,
            "releasever": d.release_version, "distro": d.name, "image_type": it.name}


def manifest_args(d: Distro, arch: Arch, it: ImageType, request: dict[str, Any], size: int | None,
                  seed: int) -> dict[str, Any]:
    return {"distro": d.name, "arch": arch.name, "image_type": it.name, "blueprint": request["blueprint"],
            "size": size, "seed": seed}


def request_json(req: ComposeRequest, d: Distro, arch: Arch, it: ImageType, seed: int) -> dict[str, Any]:
    """The ``composes.request`` column: what was asked, secrets redacted."""
    return {
        "distro": d.name, "arch": arch.name, "image_type": it.name, "blueprint": req.blueprint.to_dict(),
        "size": req.size, "seed": seed, "origin": req.origin, "channel": req.channel,
        "repositories": None if req.repositories is None else [r.to_dict() for r in req.repositories],
        **({"payload_repositories": [r.to_dict() for r in req.payload_repositories]}
           if req.payload_repositories else {}),
        # the build job needs the target options as given; the stored request never shows secrets
        "targets": [{**t.to_dict(), "options": redact(t.options)} for t in req.targets],
        **({"api_request": req.api_request} if req.api_request is not None else {}),
    }


@dataclass
class Prepared:
    """A request ready to store: what it resolved to, its depsolve and manifest jobs (finished when
    the request ran them, pending when the executor will)."""
    d: Distro
    arch: Arch
    it: ImageType
    request: dict[str, Any]
    depsolve: GraphJob
    manifest: GraphJob


def pending(req: ComposeRequest, d: Distro, arch: Arch, it: ImageType, package_sets: dict[str, Any]) -> Prepared:
    """The depsolve and manifest jobs of ``req``, pending (the executor runs them)."""
    seed = req.seed if req.seed is not None else random.getrandbits(63)
    request = request_json(req, d, arch, it, seed)
    dep = GraphJob(DEPSOLVE, depsolve_args(d, arch, it, package_sets), [], id=str(uuid.uuid4()))
    mani = GraphJob(MANIFEST, manifest_args(d, arch, it, request, req.size, seed), [dep.id], id=str(uuid.uuid4()))
    return Prepared(d, arch, it, request, dep, mani)


def build_job(req: ComposeRequest, p: Prepared, created: float) -> GraphJob:
    """The ``osbuild:<arch>`` job after ``p``'s manifest job (its id is the compose id). Target
    credentials are still in clear here: the caller seals them."""
    it = p.it
    export = it.exports[-1] if it.exports else ""
    args = {
        "targets": [target_json(t, export, it.filename, created) for t in req.targets],
        "pipeline_names": None,     # filled from the manifest job's result when the build starts
        "image_boot_mode": it.boot_mode,
        "export": export, "filename": it.filename,
    }
    return GraphJob(build_type(p.arch.name), args, [p.manifest.id], id=str(uuid.uuid4()))


def compose_row(cid: str, req: ComposeRequest, p: Prepared, created: float, fake: bool = False) -> dict[str, Any]:
    it = p.it
    return {
        "id": cid, "depsolve_job": p.depsolve.id, "manifest_job": p.manifest.id, "request": p.request,
        "blueprint_name": req.blueprint.name, "blueprint_version": req.blueprint.version or "",
        "image_type": it.name, "distro": p.d.name, "arch": p.arch.name, "origin": req.origin,
        "channel": req.channel, "created": created, "size": req.size or it.default_size,
        "image_filename": it.filename, "fake": int(fake),
    }


def placeholder(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
