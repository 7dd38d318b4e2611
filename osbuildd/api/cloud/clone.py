"""Cloud API: ``POST /composes/{id}/clone`` and ``GET /clones/{id}`` (AWS only, as upstream).

The clone is a chain of jobs after the compose's build (``osbuildd.clone``): ``aws-ec2-copy`` to the
requested region, ``aws-ec2-share`` with the accounts; its id is the last job's. Both routes look the
job up first and answer another tenant's job as "not found" (id 15), as upstream's EnsureJobChannel.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from osbuildd import clone
from osbuildd.api import identity
from osbuildd.queue import Job, JobNotFound

from .context import compose_id, services
from .errors import BASE, BODY_DECODING, COMPOSE_NOT_FOUND, VALIDATION, CloudError

routes = web.RouteTableDef()

# upstream's ids (cloudapi/v2/errors.go) for what only these routes say
INVALID_JOB_TYPE, COMPOSE_BAD_STATE, UNSUPPORTED_IMAGE = 26, 31, 32
_REFUSED = {"state": COMPOSE_BAD_STATE, "unsupported": UNSUPPORTED_IMAGE}


async def _visible_job(request: web.Request) -> Job:
    """The job the path names if the caller may see it (else 404 id 15, like an unknown one)."""
    jid = compose_id(request)
    try:
        job = await services(request).jobs.get(jid)
    except JobNotFound:
        raise CloudError(COMPOSE_NOT_FOUND, f"job {jid} not found") from None
    if not identity.of(request).sees(job.channel):
        raise CloudError(COMPOSE_NOT_FOUND, f"job {jid} not found")
    return job


async def _clone_body(request: web.Request) -> tuple[str, list[str]]:
    """(region, share_with_accounts) of an AWSEC2CloneCompose body; 20 undecodable, 30 invalid."""
    try:
        body: Any = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise CloudError(BODY_DECODING, f"request body: {e}") from None
    if not isinstance(body, dict):
        raise CloudError(VALIDATION, "request body: an object with region (and share_with_accounts) is required")
    unknown = sorted(set(body) - {"region", "share_with_accounts"})
    if unknown:
        raise CloudError(VALIDATION, f"request body: property {unknown[0]!r} is unsupported")
    region = body.get("region")
    if not isinstance(region, str) or not region:
        raise CloudError(VALIDATION, "request body: property 'region' is missing or not a non-empty string")
    shares = body.get("share_with_accounts")
    if shares is None:
        shares = []
    if not isinstance(shares, list) or not all(isinstance(a, str) and a for a in shares):
        raise CloudError(VALIDATION, "request body: property 'share_with_accounts' must be a list of account ids")
    return region, shares


@routes.post(f"{BASE}/composes/{{id}}/clone")
async def post_clone(request: web.Request) -> web.Response:
    build = await _visible_job(request)
    if not build.type.startswith("osbuild:"):
        raise CloudError(INVALID_JOB_TYPE, f"job {build.id} is a {build.type} job, not a compose")
    region, shares = await _clone_body(request)
    try:
        final = await clone.enqueue(services(request).jobs, build, region, shares,
                                    identity.of(request).new_channel)
    except clone.CloneRefused as e:
        raise CloudError(_REFUSED[e.why], e.reason) from None
    return web.json_response({"href": f"{BASE}/composes/{build.id}/clone", "id": final,
                              "kind": "CloneComposeId"}, status=201)


@routes.get(f"{BASE}/clones/{{id}}")
async def get_clone(request: web.Request) -> web.Response:
    job = await _visible_job(request)
    if job.type not in clone.JOB_TYPES:
        raise CloudError(INVALID_JOB_TYPE, f"job {job.id} is a {job.type} job, not a clone")
    st = clone.status(job)
    out: dict[str, Any] = {"href": f"{BASE}/clones/{job.id}", "id": job.id, "kind": "CloneComposeStatus",
                           "status": st.status, "type": "aws", "options": {"ami": st.ami, "region": st.region}}
    if st.error is not None:
        out["error"] = st.error
    return web.json_response(out)
