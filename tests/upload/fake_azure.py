"""Fake of the Azure Resource Manager calls org.osbuild.azure.image makes (no ARM emulator exists).

Replays upstream's: AAD client-credentials token, ResourceGroups.Get, StorageAccounts.List (by tag)
and ListKeys, and Images.BeginCreateOrUpdate with its Azure-AsyncOperation polling. The storage
account it hands out is azurite's dev account, so the VHD really goes to azurite; the image
creation checks with the azurite client that the ``blobUri`` exists at that moment.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob.aio import BlobClient

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
TOKEN = "fake-arm-token"
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
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response({"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})

    def _check(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}" or "api-version" not in request.query:
            raise web.HTTPUnauthorized(text='{"error":{"message":"bad token or no api-version"}}')

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
        op = request.match_info["op"]
        self.ops[op] += 1
        return web.json_response({"status": "InProgress" if self.ops[op] == 1 else "Succeeded"})
