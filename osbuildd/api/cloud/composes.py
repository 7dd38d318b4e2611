"""Cloud API: GET /composes/, GET and DELETE /composes/{id} (upstream's state machines, notes §1.3)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from osbuildd.api import identity
from osbuildd.compose import Compose, ComposeStateError

from .context import services, visible_compose
from .errors import BASE, CloudError
from .translate import API_TARGET

routes = web.RouteTableDef()

_UPLOAD_OPTIONS = {  # the keys of each target result's options upstream's *UploadStatus keeps
    "aws": ("ami", "region"), "aws.s3": ("url",), "gcp": ("project_id", "image_name"),
    "azure": ("image_name",),
}


def compose_status(c: Compose) -> dict[str, Any]:
    """ComposeStatus of one compose (its one image)."""
    image = image_status(c)
    status = {"finished": "success", "failed": "failure", "canceled": "failure"}.get(c.state, "pending")
    # image_statuses only for several images, as upstream (koji): a one-image compose has image_status
    return {"href": f"{BASE}/composes/{c.id}", "id": c.id, "kind": "ComposeStatus", "status": status,
            "image_status": image}


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
    return web.json_response(compose_status(await visible_compose(request)))


@routes.get(f"{BASE}/composes/")
async def list_composes(request: web.Request) -> web.Response:
    who = identity.of(request)
    snap = await services(request).compose.snapshot()
    items = [compose_status(c) for c in snap.composes() if who.sees(c.channel)]
    # upstream answers a bare array of ComposeStatus here (recorded 076), not the spec's ComposeList
    return web.json_response(items)


@routes.delete(f"{BASE}/composes/{{id}}")
async def delete_compose(request: web.Request) -> web.Response:
    c = await visible_compose(request)
    try:
        await services(request).compose.delete(c.id)
    except ComposeStateError as e:
        raise CloudError(31, str(e)) from None
    return web.json_response({"href": f"{BASE}/composes/{c.id}", "id": c.id, "kind": "ComposeDeleteStatus"})
