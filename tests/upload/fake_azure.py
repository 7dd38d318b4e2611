"""Fake of the Azure Resource Manager calls org.osbuild.azure.image makes (no ARM emulator exists).

Replays upstream's: the AAD v2 client-credentials token request (``POST /{tenant}/oauth2/v2.0/token``,
answered in AAD's shape: token_type, expires_in, ext_expires_in, access_token), ResourceGroups.Get, StorageAccounts.List (by tag)
and ListKeys, and Images.BeginCreateOrUpdate with its Azure-AsyncOperation polling. The storage
account it hands out is azurite's dev account, so the VHD really goes to azurite; the image
creation checks with the azurite client that the ``blobUri`` exists at that moment.

Each token request mints a new token living ``token_lifetime`` seconds; an ARM call with an unknown
or expired token is a 401 (counted in ``rejected``), so a client that does not refresh fails. The
fake is served over TLS (azure-identity accepts only an https authority).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob.aio import BlobClient

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
TRANSIT = 0.5   # seconds a token may take from the client's expiry check to arriving here
RG = "/subscriptions/{sub}/resourceGroups/{rg}"


@dataclass
class FakeARM:
    client_id: str
    client_secret: str
    location: str = "eastus"
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    blob_existed: list[bool] = field(default_factory=list)
    ops: dict[str, int] = field(default_factory=dict)
    base: str = ""
    token_lifetime: int = 3600
    polls_until_done: int = 2      # an image operation answers InProgress until its Nth poll
    keys_delay: float = 0.0        # listKeys answers this late (a token outlives it or not)
    token_requests: int = 0
    tokens: dict[str, float] = field(default_factory=dict)       # token -> expiry (time.time())
    used: list[str] = field(default_factory=list)                # token of each accepted ARM call
    rejected: list[str] = field(default_factory=list)            # why each ARM call was refused
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self.token)
        app.router.add_get(RG, self.resource_group)
        app.router.add_get(RG + "/providers/Microsoft.Storage/storageAccounts", self.accounts)
        app.router.add_post(RG + "/providers/Microsoft.Storage/storageAccounts/{acc}/listKeys", self.keys)
        app.router.add_put(RG + "/providers/Microsoft.Compute/images/{name}", self.create_image)
        app.router.add_get("/operations/{op}", self.operation)
        return app

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if (form.get("grant_type"), form.get("client_id"), form.get("client_secret")) != \
                ("client_credentials", self.client_id, self.client_secret):
            return web.json_response({"error": "invalid_client", "error_description": "AADSTS7000215: "
                                      "Invalid client secret provided."}, status=401)
        self.token_requests += 1
        token = f"fake-arm-token-{self.token_requests}"
        self.tokens[token] = time.time() + self.token_lifetime
        return web.json_response({"token_type": "Bearer", "expires_in": self.token_lifetime,
                                  "ext_expires_in": self.token_lifetime, "access_token": token})

    def _check(self, request: web.Request) -> None:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        expiry = self.tokens.get(token) if auth.startswith("Bearer ") else None
        why = ("no api-version" if "api-version" not in request.query else
               "unknown token" if expiry is None else
               "expired token" if time.time() > expiry + TRANSIT else "")
        if why:
            self.rejected.append(f"{request.method} {request.path}: {why}")
            raise web.HTTPUnauthorized(text=f'{{"error":{{"message":"{why}"}}}}',
                                       content_type="application/json")
        self.used.append(token)

    async def resource_group(self, request: web.Request) -> web.Response:
        self._check(request)
        return web.json_response({"name": request.match_info["rg"], "location": self.location})

    async def accounts(self, request: web.Request) -> web.Response:
        self._check(request)
        return web.json_response({"value": [
            {"name": "otheraccount", "tags": {"imageBuilderStorageAccount": "location=westeurope"}},
            {"name": ACCOUNT, "tags": {"imageBuilderStorageAccount": f"location={self.location}"}},
        ]})

    async def keys(self, request: web.Request) -> web.Response:
        self._check(request)
        await asyncio.sleep(self.keys_delay)
        return web.json_response({"keys": [{"keyName": "key1", "value": KEY, "permissions": "FULL"}]})

    async def create_image(self, request: web.Request) -> web.Response:
        self._check(request)
        body = await request.json()
        disk = body["properties"]["storageProfile"]["osDisk"]
        blob = BlobClient.from_blob_url(disk["blobUri"], credential={"account_name": ACCOUNT, "account_key": KEY})
        async with blob:
            try:
                await blob.get_blob_properties()
                self.blob_existed.append(True)
            except ResourceNotFoundError:
                self.blob_existed.append(False)
        if not self.blob_existed[-1]:
            return web.json_response({"error": {"code": "InvalidParameter", "message": "blob not found"}},
                                     status=400)
        name = request.match_info["name"]
        self.images[name] = body
        op = f"op{next(self._ids)}"
        self.ops[op] = 0
        headers = {"Azure-AsyncOperation": f"{self.base}/operations/{op}?api-version=2024-03-01"}
        return web.json_response({"name": name, **body}, status=201, headers=headers)

    async def operation(self, request: web.Request) -> web.Response:
        self._check(request)
        op = request.match_info["op"]
        self.ops[op] += 1
        return web.json_response({"status": "InProgress" if self.ops[op] < self.polls_until_done else "Succeeded"})
