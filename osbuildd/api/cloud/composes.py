"""Cloud API: GET /composes/, GET and DELETE /composes/{id} (upstream's state machines, notes §1.3)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from osbuildd.api import identity
from osbuildd.compose import Compose, ComposeStateError

from .context import group_of, images_of, services, visible_compose
from .errors import BASE, CloudError
from .translate import API_TARGET

routes = web.RouteTableDef()

_UPLOAD_OPTIONS = {  # the keys of each target result's options upstream's *UploadStatus keeps
    "aws": ("ami", "region"), "aws.s3": ("url",), "gcp": ("project_id", "image_name"),
    "azure": ("image_name",),
}


def compose_status(c: Compose, images: list[Compose] | None = None) -> dict[str, Any]:
    """ComposeStatus of a compose: its one image, or each of ``images`` (the first is ``c``)."""
    images = images or [c]
    statuses = [image_status(i) for i in images]
    states = {i.state for i in images}
    if states & {"waiting", "running"}:
        status = "pending"
    elif states == {"finished"}:
        status = "success"
    else:
        status = "failure"
    out: dict[str, Any] = {"href": f"{BASE}/composes/{c.id}", "id": c.id, "kind": "ComposeStatus", "status": status,
                           "image_status": statuses[0]}
    if len(images) > 1:   # as upstream's Koji composes; a one-image compose has image_status only
        out["image_statuses"] = statuses
    return out


def image_status(c: Compose) -> dict[str, Any]:
    progress = c.progress or {}
    if c.state in ("failed", "canceled"):
        value = "failure"
    elif c.state == "finished":
        value = "success"
    elif c.state == "running":
        value = "uploading" if progress.get("message") == "uploading" else "building"
    else:
        value = "pending"
    out: dict[str, Any] = {"status": value}
    if c.state == "running" or c.state == "finished":
        p: dict[str, Any] = {"done": int(progress.get("done") or 0), "total": int(progress.get("total") or 0)}
        sub = progress.get("subprogress")
        if isinstance(sub, dict):
            p["subprogress"] = {"done": int(sub.get("done") or 0), "total": int(sub.get("total") or 0)}
        if c.state == "finished":
            p["done"] = p["total"] = max(p["total"], 1)
        out["progress"] = p
    uploads = upload_statuses(c)
    if uploads:
        out["upload_status"], out["upload_statuses"] = uploads[0], uploads
    if c.error is not None and value == "failure":
        e = c.error
        err_id = e.get("id")
        out["error"] = {"id": err_id if isinstance(err_id, int) else 10, "reason": str(e.get("reason") or ""),
                        "details": e.get("details")}
    return out


def upload_statuses(c: Compose) -> list[dict[str, Any]]:
    out = []
    for u in c.upload_statuses:
        kind = API_TARGET.get(str(u.get("type")), "")
        if not kind:
            continue
        opts = u.get("options") or {}
        keep = {k: opts[k] for k in _UPLOAD_OPTIONS.get(kind, ()) if k in opts}
        if keep:   # as upstream: a target is listed once its result (with the spec's options) exists
            out.append({"type": kind, "status": u.get("status", "pending"), "options": keep})
    if c.state == "finished" and c.image_path is not None:
        for t in (c.request.get("targets") or []):
            if API_TARGET.get(str(t.get("name"))) == "local":
                out.append({"type": "local", "status": "success", "options": {"artifact_path": str(c.image_path)}})
    return out


@routes.get(f"{BASE}/composes/{{id}}")
async def get_compose(request: web.Request) -> web.Response:
    c = await visible_compose(request)
    return web.json_response(compose_status(c, await images_of(request, c)))


@routes.get(f"{BASE}/composes/")
async def list_composes(request: web.Request) -> web.Response:
    who = identity.of(request)
    snap = await services(request).compose.snapshot()
    items = []
    for c in snap.composes():
        if not who.sees(c.channel) or group_of(c).get("id"):
            continue   # another tenant's, or a later image of a compose listed by its first
        items.append(compose_status(c, await images_of(request, c) if group_of(c) else None))
    # upstream answers a bare array of ComposeStatus here (recorded 076), not the spec's ComposeList
    return web.json_response(items)


@routes.delete(f"{BASE}/composes/{{id}}")
async def delete_compose(request: web.Request) -> web.Response:
    c = await visible_compose(request)
    images = await images_of(request, c)
    busy = [i.id for i in images if i.state in ("waiting", "running")]
    if busy:   # checked for every image first: a compose is deleted whole or not at all
        raise CloudError(31, f"compose {c.id}: image compose {busy[0]} is still running")
    try:
        for i in reversed(images):
            await services(request).compose.delete(i.id)
    except ComposeStateError as e:
        raise CloudError(31, str(e)) from None
    return web.json_response({"href": f"{BASE}/composes/{c.id}", "id": c.id, "kind": "ComposeDeleteStatus"})
