"""The Cloud API's ComposeStatus of a compose's images, as ``GET /composes/{id}`` answers it (upstream's
state machines, notes §1.3). Pure: the caller finds the images (``lookup``).

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
"""

from __future__ import annotations

from typing import Any

from osbuildd.compose import Compose
from osbuildd.queue import errors as job_errors

from .errors import BASE
from .request import API_TARGET

# the options each target's UploadStatus carries (the spec's required keys)
UPLOAD_OPTIONS = {"aws": ("ami", "region"), "aws.s3": ("url",), "gcp": ("project_id", "image_name"),
                  "azure": ("image_name",), "local": ("artifact_path",)}
REGISTERING_TARGETS = frozenset({"org.osbuild.aws", "org.osbuild.gcp", "org.osbuild.azure.image"})
MANIFEST_DEPENDENCY = (job_errors.MANIFEST_DEPENDENCY, "Manifest dependency failed")
DEPSOLVE_INPUT = frozenset({job_errors.DNF_DEPSOLVE_ERROR, job_errors.DNF_MARKING_ERRORS})


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
