"""Fake of the GCP compute v1 image calls and the OAuth token endpoint (upstream's compute client).

Replays ``images.insert``, ``globalOperations.wait``, ``images.get``, ``images.getIamPolicy`` /
``setIamPolicy`` and the service-account token exchange. The insert checks, *at that moment*, that
``rawDisk.source`` names an object that exists in gcp-storage-emulator (catches "deleted before import").
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

TOKEN = "fake-gcp-access-token"
SOURCE_PREFIX = "https://storage.googleapis.com/"


@dataclass
class FakeCompute:
    gcs: str
    fail_import: bool = False
    flaky_waits: int = 0            # answer this many operations.wait calls with 503 first
    inserts: list[dict[str, Any]] = field(default_factory=list)     # body + what the object looked like
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    ops: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self.token)
        base = "/compute/v1/projects/{project}/global"
        app.router.add_post(base + "/images", self.insert)
        app.router.add_post(base + "/operations/{op}/wait", self.wait)
        app.router.add_get(base + "/images/{name}", self.get_image)
        app.router.add_get(base + "/images/{name}/getIamPolicy", self.get_policy)
        app.router.add_post(base + "/images/{name}/setIamPolicy", self.set_policy)
        return app

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not form.get("assertion"):
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response({"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    async def insert(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": {"code": 401, "message": "no token"}}, status=401)
        body = await request.json()
        source = body["rawDisk"]["source"]
        bucket, _, obj = source.removeprefix(SOURCE_PREFIX).partition("/")
        async with aiohttp.ClientSession() as s, \
                s.get(f"{self.gcs}/storage/v1/b/{bucket}/o/{quote(obj, safe='')}") as r:
            meta = await r.json(content_type=None) if r.status == 200 else None
        self.inserts.append({"body": body, "object": meta})
        op = f"operation-{next(self._ids)}"
        failed = meta is None or self.fail_import
        self.ops[op] = {"name": op, "status": "PENDING", "polls": 0, "failed": failed, "image": body["name"]}
        return web.json_response(self._op(op))

    def _op(self, op: str) -> dict[str, Any]:
        o = self.ops[op]
        out: dict[str, Any] = {"kind": "compute#operation", "name": op, "status": o["status"]}
        if o["status"] == "DONE" and o["failed"]:
            out["httpErrorStatusCode"] = 400
            out["error"] = {"errors": [{"code": "INVALID_IMAGE", "message": "source object unusable"}]}
        return out

    async def wait(self, request: web.Request) -> web.Response:
        if self.flaky_waits > 0:
            self.flaky_waits -= 1
            return web.json_response({"error": {"code": 503, "message": "backend unavailable"}}, status=503)
        o = self.ops[request.match_info["op"]]
        o["polls"] += 1
        o["status"] = "RUNNING" if o["polls"] == 1 else "DONE"
        if o["status"] == "DONE" and not o["failed"]:
            self.images[o["image"]] = {"name": o["image"], "status": "READY"}
        return web.json_response(self._op(request.match_info["op"]))

    async def get_image(self, request: web.Request) -> web.Response:
        image = self.images.get(request.match_info["name"])
        if image is None:
            return web.json_response({"error": {"code": 404, "message": "not found"}}, status=404)
        return web.json_response(image)

    async def get_policy(self, request: web.Request) -> web.Response:
        return web.json_response(self.policies.get(request.match_info["name"], {"etag": "BwE="}))

    async def set_policy(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body["policy"].get("etag") != "BwE=":
            return web.json_response({"error": {"code": 409, "message": "etag mismatch"}}, status=409)
        self.policies[request.match_info["name"]] = body["policy"]
        return web.json_response(body["policy"])
