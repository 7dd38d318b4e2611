"""Cloud API: ``/composes/{id}/metadata|logs|manifests|sboms|download`` (upstream ``handler.go``).

Each route reads the compose's images through ``visible_images`` (another tenant's compose is 404 id
15) and answers one entry per image, in upstream's shapes; keys are written in the order upstream's
generated types marshal them (alphabetical). The metadata is made by ``osbuildd.compose.cloud.metadata``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from osbuildd.compose import Compose, ComposeState, sbom
from osbuildd.compose.cloud import metadata
from osbuildd.depsolve import PackageSpec
from osbuildd.queue import Job, JobNotFound

from .context import services, visible_images
from .errors import BASE, COMPOSE_NOT_FOUND, CloudError

routes = web.RouteTableDef()

ARTIFACT_NOT_FOUND = 1022
DEPSOLVE, MANIFEST = "depsolve", "manifest-id-only"
# upstream's OSBuildJobResult, as a build that never ran marshals it (recorded/087)
EMPTY_RESULT: dict[str, Any] = {"success": False, "upload_status": "", "host_os": "", "arch": ""}
_RESULT_ORDER = ("success", "osbuild_output", "target_results", "upload_status", "pipeline_names", "host_os",
                 "arch")


def _ref(cid: str, kind: str, suffix: str) -> dict[str, Any]:
    return {"href": f"{BASE}/composes/{cid}/{suffix}", "id": cid, "kind": kind}


@routes.get(BASE + "/composes/{id}/metadata")
async def compose_metadata(request: web.Request) -> web.Response:
    cid, images = await visible_images(request)
    return web.json_response(metadata.compose_metadata(cid, images))


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
