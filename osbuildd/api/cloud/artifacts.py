"""Cloud API: ``/composes/{id}/metadata|logs|manifests|sboms|download`` (upstream ``handler.go``).

Each route reads the compose's images through ``visible_images`` (another tenant's compose is 404 id
15) and answers one entry per image, in upstream's shapes; keys are written in the order upstream's
generated types marshal them (alphabetical).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from osbuildd.compose import Compose, ComposeState, sbom
from osbuildd.depsolve import PackageSpec
from osbuildd.queue import Job, JobNotFound

from .context import services, visible_images
from .errors import BASE, COMPOSE_NOT_FOUND, CloudError
from .packages import package_metadata

routes = web.RouteTableDef()

MALFORMED_RESULT, ARTIFACT_NOT_FOUND = 1012, 1022
DEPSOLVE, MANIFEST = "depsolve", "manifest-id-only"
# upstream's OSBuildJobResult, as a build that never ran marshals it (recorded/087)
EMPTY_RESULT: dict[str, Any] = {"success": False, "upload_status": "", "host_os": "", "arch": ""}
_RESULT_ORDER = ("success", "osbuild_output", "target_results", "upload_status", "pipeline_names", "host_os",
                 "arch")


def _ref(cid: str, kind: str, suffix: str) -> dict[str, Any]:
    return {"href": f"{BASE}/composes/{cid}/{suffix}", "id": cid, "kind": kind}


# -- metadata ---------------------------------------------------------------------------------------


def _rpm_entry(md: dict[str, Any]) -> dict[str, Any]:
    """PackageMetadata from an ``org.osbuild.rpm`` stage's metadata (upstream's source of the list)."""
    out: dict[str, Any] = {"arch": md.get("arch") or ""}
    if md.get("epoch") not in (None, "", 0, "0"):
        out["epoch"] = str(md["epoch"])
    out["name"] = md.get("name") or ""
    out["release"] = md.get("release") or ""
    sig = md.get("sigpgp") or md.get("siggpg")
    if sig:
        out["signature"] = sig
    out.update({"type": "rpm", "version": md.get("version") or "", "sigmd5": md.get("sigmd5") or ""})
    return out


def _payload_pipelines(image: Compose) -> list[str]:
    names = (image.result or {}).get("pipeline_names") or {}
    payload = names.get("payload") if isinstance(names, dict) else None
    if payload:
        return [str(n) for n in payload]
    return [p.get("name", "") for p in (image.manifest or {}).get("pipelines", []) if p.get("name") != "build"]


def _stage_metadata(image: Compose, output: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """(rpm stage packages, ostree commit) from the payload pipelines' stage metadata."""
    raw = output.get("metadata")
    metadata: dict[str, Any] = raw if isinstance(raw, dict) else {}
    rpms: list[dict[str, Any]] = []
    commit = None
    for name in _payload_pipelines(image):
        found = metadata.get(name)
        stages: dict[str, Any] = found if isinstance(found, dict) else {}
        for stage, md in stages.items():
            if not isinstance(md, dict):
                continue
            if stage == "org.osbuild.rpm":
                rpms += [p for p in md.get("packages") or [] if isinstance(p, dict)]
            elif stage == "org.osbuild.ostree.commit":
                commit = ((md.get("compose") or {}).get("ostree-commit")) or commit
    return rpms, commit


def _metadata_fields(image: Compose) -> dict[str, Any]:
    """ostree_commit/packages of one image: none while it is not finished (or failed, canceled), 1012
    for a finished build without osbuild output; the packages from the build's rpm stage metadata when
    it has some (upstream), else from the depsolve result (Debian, the bundled engine)."""
    if image.state != ComposeState.FINISHED:
        return {}
    output = (image.result or {}).get("osbuild_output")
    if not isinstance(output, dict) or not output.get("log"):
        raise CloudError(MALFORMED_RESULT, f"the build of compose {image.id} recorded no osbuild output")
    rpms, commit = _stage_metadata(image, output)
    out: dict[str, Any] = {}
    if commit:
        out["ostree_commit"] = commit
    out["packages"] = [_rpm_entry(m) for m in rpms] if rpms else [package_metadata(p) for p in image.packages]
    return out


@routes.get(BASE + "/composes/{id}/metadata")
async def compose_metadata(request: web.Request) -> web.Response:
    cid, images = await visible_images(request)
    body = _ref(cid, "ComposeMetadata", "metadata")
    fields: dict[str, Any] = {}
    for image in images:
        for key, value in _metadata_fields(image).items():
            if key == "packages":
                fields.setdefault("packages", []).extend(value)
            else:
                fields.setdefault(key, value)
    body.update(sorted(fields.items()))
    api_request = images[0].request.get("api_request") if images else None
    if api_request is not None:
        body["request"] = api_request
    return web.json_response(body)


# -- logs, manifests --------------------------------------------------------------------------------


def build_result(image: Compose) -> dict[str, Any]:
    """The build job's result as upstream marshals an OSBuildJobResult: its fields in order, the empty
    ones upstream omits left out (``success``, ``upload_status``, ``host_os``, ``arch`` always there)."""
    result = {**EMPTY_RESULT, **(image.result or {})}
    out = {k: result[k] for k in _RESULT_ORDER if k in result}
    out.update((k, v) for k, v in result.items() if k not in out)
    return {k: v for k, v in out.items() if k in EMPTY_RESULT or v not in (None, [], {}, "")}


@routes.get(BASE + "/composes/{id}/logs")
async def compose_logs(request: web.Request) -> web.Response:
    cid, images = await visible_images(request)
    return web.json_response({"href": f"{BASE}/composes/{cid}/logs", "id": cid,
                              "image_builds": [build_result(i) for i in images], "kind": "ComposeLogs"})


@routes.get(BASE + "/composes/{id}/manifests")
async def compose_manifests(request: web.Request) -> web.Response:
    """The manifest each image was (or will be) built from: the manifest job's result, null until then."""
    cid, images = await visible_images(request)
    body = _ref(cid, "ComposeManifests", "manifests")
    body["manifests"] = [i.manifest for i in images]
    return web.json_response(body)


# -- sboms ------------------------------------------------------------------------------------------


async def _dependency(request: web.Request, job_id: str, job_type: str) -> Job | None:
    """The job of ``job_type`` that ``job_id`` depends on, if any."""
    jobs = services(request).jobs
    try:
        job = await jobs.get(job_id)
        for dep in job.dependencies:
            found = await jobs.get(dep)
            if found.type == job_type:
                return found
    except JobNotFound:
        return None
    return None


def _vendor(request: web.Request, image: Compose) -> str:
    """The purl namespace of the image's RPMs: the distro's vendor ("fedora", "redhat", "centos")."""
    try:
        d = services(request).distros.get(image.distro)
    except LookupError:
        return image.distro.split("-")[0]
    return d.vendor or d.name.split("-")[0]


def _purpose(name: str, pipeline_names: dict[str, Any]) -> str:
    if name in (pipeline_names.get("build") or []):
        return "buildroot"
    if name in (pipeline_names.get("payload") or []):
        return "image"
    return "buildroot" if name == "build" else "image"


async def image_sboms(request: web.Request, image: Compose) -> list[dict[str, Any]]:
    """One ImageSBOM per package set of the image's depsolve job (named after the pipeline that
    installs it), sorted by pipeline name as upstream."""
    manifest_job = await _dependency(request, image.id, MANIFEST)
    depsolve_job = await _dependency(request, manifest_job.id, DEPSOLVE) if manifest_job is not None else None
    specs = ((depsolve_job.result or {}).get("package_specs") if depsolve_job is not None else None)
    if not isinstance(specs, dict):
        raise CloudError(COMPOSE_NOT_FOUND, f"compose {image.id}: no depsolve result to make SBOMs from")
    names = (manifest_job.result or {}).get("pipeline_names") if manifest_job is not None else None
    pipeline_names = names if isinstance(names, dict) else {}
    created = (depsolve_job.finished_at if depsolve_job is not None else None) or image.created
    vendor = _vendor(request, image)

    def make() -> list[dict[str, Any]]:
        out = []
        for name in sorted(specs):
            pkgs = [PackageSpec.from_dict(p) for p in specs[name] or []]
            doc = sbom.spdx_document(pkgs, name=f"sbom-by-osbuildd-{name}", key=f"{image.id}/{name}",
                                     created=created, vendor=vendor)
            out.append({"pipeline_name": name, "pipeline_purpose": _purpose(name, pipeline_names), "sbom": doc,
                        "sbom_type": "spdx"})
        return out

    return await asyncio.to_thread(make)   # a few thousand packages: keep the loop free


@routes.get(BASE + "/composes/{id}/sboms")
async def compose_sboms(request: web.Request) -> web.Response:
    cid, images = await visible_images(request)
    items = [await image_sboms(request, i) for i in images]
    return web.json_response({"href": f"{BASE}/composes/{cid}/sboms", "id": cid, "items": items,
                              "kind": "ComposeSBOMs"})


# -- download ---------------------------------------------------------------------------------------


@routes.get(BASE + "/composes/{id}/download")
async def compose_download(request: web.Request) -> web.StreamResponse:
    """The artifact kept in the compose's results (its local target), streamed as
    ``<compose id>-<filename>``; the first image that has one. 400 id 1022 while there is none."""
    cid, images = await visible_images(request)
    for image in images:
        path = image.image_path if image.state == ComposeState.FINISHED else None
        if path is not None and await asyncio.to_thread(path.is_file):
            return web.FileResponse(path, headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f"attachment; filename={cid}-{image.image_filename}"})
    states = ", ".join(str(i.state) for i in images)
    raise CloudError(ARTIFACT_NOT_FOUND, f"compose {cid} has no artifact to download (state: {states})")
