"""Retries are not multiplied across layers: the Azure SDK's own retry policy is off, so one call of
the SDK is one HTTP request and the project's retry loop (upload/common.retry) is the only one."""

from __future__ import annotations

import pytest
from aiohttp import web
from azure.core.exceptions import HttpResponseError

from osbuildd.upload.azure_blob import service_client

from .conftest import serve


async def test_sdk_does_not_retry_on_its_own():
    hits: list[str] = []

    async def busy(request: web.Request) -> web.Response:
        hits.append(request.method)
        return web.Response(status=503, text="busy")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", busy)
    runner, url = await serve(app)
    try:
        svc = service_client(f"{url}/acct", "acct", "a2V5")
        async with svc:
            with pytest.raises(HttpResponseError):
                await svc.get_blob_client("c", "b.vhd").create_page_blob(512)
        assert hits == ["PUT"]   # the SDK default would have sent it 4 times
    finally:
        await runner.cleanup()
