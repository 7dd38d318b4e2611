"""Cloud API: GET /composes/, GET and DELETE /composes/{id} (upstream's state machines, notes §1.3).

How a status is made from a compose (one per image; a compose of several images has several):
- ``status``: ``pending`` until every image's build job settled; then ``success`` if all finished
  well, else ``failure`` (a canceled build is a failure; one failed image fails the compose).
- ``image_status.status``: ``pending`` (build job not started), ``building`` (osbuild runs),
  ``uploading`` (the image is built and its targets run), ``registering`` (every byte is sent and a
  cloud is importing the image: EC2 snapshot import, GCE image, Azure image), ``success`` /
  ``failure``. Upstream emits only pending/building/success/failure; the two others are osbuildd's,
  read from what the build job reports (its progress while its targets run).
- ``progress`` while the build job runs: its ``{done, total, subprogress{done, total}}``.
- ``upload_status(es)``: one per target in the build's order once it runs its targets (``running``,
  the spec's options still empty) and once it finished (``success`` / ``failure``, the options of the
  target's result); ``local``: ``{artifact_path}`` of the image in the compose's results.
- ``error``: the build job's error ``{id, reason, details}``; a dependency's failure is upstream's
  chain: ``9`` "Manifest dependency failed" with the manifest job's error in ``details``, whose own
  dependency failure is ``5`` with the depsolve's error (the unresolvable package and why).

A status answers from ``ComposeService.snapshot()`` (no SQL while nobody committed) and the bytes of
each compose's status are kept while the compose object is the same (a changed compose is a new
object in the snapshot), so polling costs a dictionary lookup.
"""

from __future__ import annotations

import json
import weakref
from typing import Any

from aiohttp import web

from osbuildd.api import identity
from osbuildd.compose import Compose, ComposeService, ComposeStateError
from osbuildd.queue import errors as job_errors

from .context import services, visible_statuses
from .errors import BASE, CloudError
from .translate import API_TARGET

routes = web.RouteTableDef()

# the options each target's UploadStatus carries (the spec's required keys)
UPLOAD_OPTIONS = {"aws": ("ami", "region"), "aws.s3": ("url",), "gcp": ("project_id", "image_name"),
                  "azure": ("image_name",), "local": ("artifact_path",)}
REGISTERING_TARGETS = frozenset({"org.osbuild.aws", "org.osbuild.gcp", "org.osbuild.azure.image"})
MANIFEST_DEPENDENCY = (job_errors.MANIFEST_DEPENDENCY, "Manifest dependency failed")
DEPSOLVE_INPUT = frozenset({job_errors.DNF_DEPSOLVE_ERROR, job_errors.DNF_MARKING_ERRORS})


# -- rendering ------------------------------------------------------------------------------------


def compose_status(cid: str, images: list[Compose]) -> dict[str, Any]:
    """ComposeStatus of the compose ``cid`` made of ``images`` (one, or each of several)."""
    statuses = [image_status(i) for i in images]
    states = {str(i.state) for i in images}
    if states & {"failed", "canceled"}:
        status = "failure"
    elif states == {"finished"}:
        status = "success"
    else:
        status = "pending"
    out: dict[str, Any] = {"href": f"{BASE}/composes/{cid}", "id": cid, "kind": "ComposeStatus", "status": status,
                           "image_status": statuses[0]}
    if len(images) > 1:   # as upstream's Koji composes; a one-image compose has image_status only
        out["image_statuses"] = statuses
    return out


def image_value(c: Compose) -> str:
    if c.state in ("failed", "canceled"):
        return "failure"
    if c.state == "finished":
        return "success"
    if c.state != "running":
        return "pending"
    progress = c.progress or {}
    if progress.get("message") != "uploading":
        return "building"
    uploads = [u for u in progress.get("uploads") or [] if isinstance(u, dict)]
    sent_all = bool(uploads) and all(int(u.get("sent") or 0) >= int(u.get("size") or 0) > 0 for u in uploads)
    if sent_all and any(u.get("name") in REGISTERING_TARGETS for u in uploads):
        return "registering"
    return "uploading"


def image_status(c: Compose) -> dict[str, Any]:
    value = image_value(c)
    out: dict[str, Any] = {"status": value}
    if c.state == "running":
        out["progress"] = progress(c.progress or {})
    uploads = upload_statuses(c, value)
    if uploads:
        out["upload_status"], out["upload_statuses"] = uploads[0], uploads
    if value == "failure" and c.error is not None:
        out["error"] = job_error(c.error)
    return out


def progress(p: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"done": int(p.get("done") or 0), "total": int(p.get("total") or 0)}
    sub = p.get("subprogress")
    if isinstance(sub, dict):
        out["subprogress"] = {"done": int(sub.get("done") or 0), "total": int(sub.get("total") or 0)}
    return out


def job_error(e: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """ComposeStatusError from a job error; a dependency's failure as upstream's chain (see above)."""
    eid, reason, details = e.get("id"), str(e.get("reason") or ""), e.get("details")
    if eid in job_errors.DEPENDENCY_ERRORS and isinstance(details, dict) and "dependency" in details:
        inner = details.get("error")
        chain = [job_error(inner, depth + 1)] if isinstance(inner, dict) else []
        if eid == job_errors.DEPENDENCY_FAILED and depth == 0:
            eid, reason = MANIFEST_DEPENDENCY
        elif eid == job_errors.DEPENDENCY_FAILED and depth == 1:
            eid = job_errors.DEPSOLVE_DEPENDENCY
            reason = ("Error in depsolve job dependency input, bad package set requested"
                      if chain and chain[0]["id"] in DEPSOLVE_INPUT else "Error in depsolve job dependency")
        out: dict[str, Any] = {"id": eid, "reason": reason}
        if chain:
            out["details"] = chain
        return out
    out = {"id": eid if isinstance(eid, int) and not isinstance(eid, bool) else job_errors.BUILD_JOB, "reason": reason}
    if details is not None:
        out["details"] = details
    return out


def upload_statuses(c: Compose, value: str) -> list[dict[str, Any]]:
    """One UploadStatus per target of the build, in its order (see the module's docstring)."""
    remote = iter(c.upload_statuses)   # the build's remote targets, in order
    out = []
    for t in c.request.get("targets") or []:
        kind = API_TARGET.get(str(t.get("name")), "")
        if kind == "local":
            if c.state == "finished" and c.image_path is not None:
                out.append({"type": "local", "status": "success", "options": {"artifact_path": str(c.image_path)}})
            continue
        u = next(remote, None)
        if not kind or u is None:
            continue
        status = str(u.get("status") or "pending")
        if status == "pending" or (status == "running" and value not in ("uploading", "registering")):
            continue   # not yet at the targets: listed once they run (upstream: once they finished)
        if status == "failure" and not u.get("error") and not u.get("options"):
            continue   # the build failed before its targets ran: they have no result
        opts = u.get("options") or {}
        out.append({"type": kind, "status": status,
                    "options": {k: str(opts.get(k) or "") for k in UPLOAD_OPTIONS[kind]}})
    return out


def _dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


class _Rendered:
    """Status bytes per compose, kept while the snapshot hands out the same compose object."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Compose, bytes]] = {}
        self.lists: dict[str | None, tuple[object, int, bytes]] = {}

    def status(self, c: Compose) -> bytes:
        hit = self.entries.get(c.id)
        if hit is not None and hit[0] is c:
            return hit[1]
        body = _dumps(compose_status(c.id, [c]))
        self.entries[c.id] = (c, body)
        return body

    def prune(self, alive: int) -> None:
        if len(self.entries) > 2 * alive + 256:   # deleted composes' entries
            self.entries.clear()


_RENDERED: weakref.WeakKeyDictionary[ComposeService, _Rendered] = weakref.WeakKeyDictionary()


def _rendered(svc: ComposeService) -> _Rendered:
    found = _RENDERED.get(svc)
    if found is None:
        found = _RENDERED[svc] = _Rendered()
    return found


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


# -- routes ---------------------------------------------------------------------------------------


@routes.get(f"{BASE}/composes/{{id}}")
async def get_compose(request: web.Request) -> web.Response:
    cid, images, several = await visible_statuses(request)
    if several:
        return _json(_dumps(compose_status(cid, images)))
    return _json(_rendered(services(request).compose).status(images[0]))


@routes.get(f"{BASE}/composes/")
async def list_composes(request: web.Request) -> web.Response:
    """The caller's composes as a bare array of ComposeStatus sorted by id, as upstream answers
    (recorded 076; the spec says ComposeList). Later images of a compose of several are in their
    compose's entry, not on their own."""
    who = identity.of(request)
    svc = services(request).compose
    snap, groups = await svc.view()
    cache = _rendered(svc)
    hit = cache.lists.get(who.channel)
    if hit is not None and hit[0] is snap and hit[1] == groups.version:
        return _json(hit[2])
    entries = []
    for part in (snap.settled, snap.live):
        for c in part:
            if not who.sees(c.channel) or groups.hidden(c.id):
                continue
            if c.id in groups.members:
                images = [i for i in (snap.find(m) for m in groups.members[c.id]) if i is not None]
                entries.append((c.id, _dumps(compose_status(c.id, images))))
            else:
                entries.append((c.id, cache.status(c)))
    entries.sort(key=lambda e: e[0])
    body = b"[" + b",".join(e[1] for e in entries) + b"]"
    cache.prune(len(snap.settled) + len(snap.live))
    cache.lists[who.channel] = (snap, groups.version, body)
    return _json(body)


@routes.delete(f"{BASE}/composes/{{id}}")
async def delete_compose(request: web.Request) -> web.Response:
    """Delete a compose (every image of it) with its jobs and artifacts, once none of its builds is
    waiting or running. Upstream refuses that with a 500 (id 1023, "Cannot delete job before job is
    finished"); here it is the caller's 400 id 31 with the same words in details."""
    cid, _images, _several = await visible_statuses(request)
    try:
        await services(request).compose.delete_group(cid)
    except ComposeStateError as e:
        raise CloudError(31, f"Cannot delete job before job is finished: {cid} ({e})") from None
    return web.json_response({"href": f"{BASE}/composes/delete/{cid}", "id": cid, "kind": "ComposeDeleteStatus"})
