"""``RemoteComposer``'s osbuildd extensions against a Cloud API of the test's own (plain HTTP on
loopback): ``download`` streams the composer's ``/composes/{id}/download`` through in chunks (the
name from its Content-Disposition, the size from its Content-Length), None while the composer has no
artifact (400 id 1022), a ComposerError 404 for a compose it does not know; ``logs`` and ``?test=``
composes are refused as not available from a remote composer."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web
from foundation.daemon_helpers import free_port

from osbuildd.config import ImageBuilderConfig
from osbuildd.imagebuilder.composer import ComposerError
from osbuildd.imagebuilder.remote import RemoteComposer

pytestmark = pytest.mark.asyncio(loop_scope="module")
BASE = "/api/image-builder-composer/v2"
READY, WAITING = str(uuid.uuid4()), str(uuid.uuid4())
BLOCK = bytes(range(256)) * 4096     # 1 MiB
BLOCKS = 5


def _error(status: int, error_id: int, reason: str) -> web.Response:
    return web.Response(status=status, content_type="application/json",
                        text=json.dumps({"kind": "Error", "id": str(error_id), "code": f"IMAGE-BUILDER-COMPOSER-{error_id}",
                                         "reason": reason, "href": "", "operation_id": "x"}))


async def _download(request: web.Request) -> web.StreamResponse:
    cid = request.match_info["id"]
    if cid == WAITING:
        return _error(400, 1022, "Artifact not found")
    if cid != READY:
        return _error(404, 15, "Compose with given id not found")
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream",
                                       "Content-Disposition": f"attachment; filename={cid}-disk.qcow2"})
    resp.content_length = len(BLOCK) * BLOCKS
    await resp.prepare(request)
    for _ in range(BLOCKS):
        await resp.write(BLOCK)
    await resp.write_eof()
    return resp


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def composer() -> AsyncIterator[RemoteComposer]:
    app = web.Application()
    app.router.add_get(BASE + "/composes/{id}/download", _download)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    c = RemoteComposer(ImageBuilderConfig(osbuild_url=f"http://127.0.0.1:{port}"))
    try:
        yield c
    finally:
        await c.close()
        await runner.cleanup()


async def test_download_is_streamed_through(composer: RemoteComposer) -> None:
    d = await composer.download(READY)
    assert d is not None and d.path is None and d.chunks is not None
    assert (d.filename, d.size) == (f"{READY}-disk.qcow2", len(BLOCK) * BLOCKS)
    sizes, total = [], bytearray()
    async for chunk in d.chunks:
        sizes.append(len(chunk))
        total += chunk
    await d.close()
    assert bytes(total) == BLOCK * BLOCKS
    assert max(sizes) <= 1 << 20   # chunks, never the whole image at once


async def test_download_closed_early_releases_the_connection(composer: RemoteComposer) -> None:
    d = await composer.download(READY)
    assert d is not None and d.chunks is not None
    first = await anext(d.chunks)
    assert first
    await d.close()
    again = await composer.download(READY)   # the session still works
    assert again is not None
    await again.close()


async def test_no_artifact_yet_and_unknown_compose(composer: RemoteComposer) -> None:
    assert await composer.download(WAITING) is None
    with pytest.raises(ComposerError) as err:
        await composer.download(str(uuid.uuid4()))
    assert err.value.status == 404 and err.value.error_id == 15, err.value.body


async def test_logs_and_test_composes_are_not_remote(composer: RemoteComposer) -> None:
    with pytest.raises(ComposerError) as err:
        await composer.logs(READY)
    assert err.value.status == 404 and "not available from a remote composer" in err.value.reason
    with pytest.raises(ComposerError) as err:
        await composer.compose({"distribution": "debian-12"}, org_id="000000", test=2)
    assert err.value.status == 400 and "not available from a remote composer" in err.value.reason
