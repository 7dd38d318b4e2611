"""osbuildd extensions of the image-builder API for the web UI: ``GET /composes/{composeId}/logs``
(the build log so far, text/plain), ``.../download`` (the image of a compose kept on the daemon by
its ``local`` upload type, streamed) and ``.../events`` (server-sent events: the compose's status
whenever it changes, until the compose is done). Each checks the organisation's ownership in the
store first (``composes.owned``: another organisation's compose is 404 before the composer is asked).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog
from aiohttp import web

from osbuildd.imagebuilder import mapping
from osbuildd.imagebuilder.composer import ComposerError

from .composes import _composer_failure, owned
from .context import PREFIXES, ImageBuilderError, composer

log = structlog.get_logger("osbuildd.imagebuilder")

POLL_SECONDS = 1.0        # how often a stream asks for the status (in process: a snapshot read)
KEEPALIVE_SECONDS = 15.0  # a comment line so proxies do not close an idle stream
DONE = frozenset({"success", "failure"})
STOPPING = web.AppKey("imagebuilder_streams_stopping", asyncio.Event)


async def compose_logs(request: web.Request) -> web.Response:
    entry = await owned(request)
    try:
        text = await composer(request).logs(entry.id)
    except ComposerError as e:
        raise _composer_failure(e, "logs") from None
    if text is None:
        raise ImageBuilderError(404, f"Compose {entry.id} has no build log yet")
    return web.Response(body=text, content_type="text/plain", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


def _safe_name(name: str) -> str:
    """A file name fit for a quoted Content-Disposition (a remote composer's name is not trusted)."""
    cleaned = "".join(c for c in name.rsplit("/", 1)[-1] if c.isprintable() and c not in '"\\;')
    return cleaned or "image"


async def compose_download(request: web.Request) -> web.StreamResponse:
    entry = await owned(request)
    try:
        d = await composer(request).download(entry.id)
    except ComposerError as e:
        raise _composer_failure(e, "download") from None
    if d is None:
        raise ImageBuilderError(404, f"Compose {entry.id} has no image to download here (not finished, "
                                "or its upload type is not local)")
    headers = {"Content-Disposition": f'attachment; filename="{_safe_name(d.filename)}"',
               "Content-Type": "application/octet-stream", "Cache-Control": "no-store"}
    if d.path is not None:
        return web.FileResponse(d.path, headers=headers)   # read off the loop, sendfile where it can
    assert d.chunks is not None
    resp = web.StreamResponse(headers=headers)
    if d.size is not None:
        resp.content_length = d.size
    try:
        await resp.prepare(request)
        async for chunk in d.chunks:
            await resp.write(chunk)
        await resp.write_eof()
    except ConnectionResetError:
        log.info("download ended by the client", compose_id=entry.id)
    finally:
        await d.close()
    return resp


async def _status(request: web.Request, compose_id: str, ib_request: dict[str, Any]) -> dict[str, Any]:
    try:
        cloud = await composer(request).status(compose_id)
    except ComposerError as e:
        raise _composer_failure(e, "status") from None
    return mapping.compose_status(cloud, ib_request)


async def compose_events(request: web.Request) -> web.StreamResponse:
    """``data: <ComposeStatus JSON>`` first and on every change (asked every POLL_SECONDS), a
    keep-alive comment after KEEPALIVE_SECONDS of silence; the stream ends once the compose is done,
    when it can no longer be read (deleted meanwhile), or when the daemon stops."""
    entry = await owned(request)
    status = await _status(request, entry.id, entry.request)   # an error here is a plain error answer
    stopping = request.app[STOPPING]
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                       "X-Accel-Buffering": "no"})
    loop = asyncio.get_running_loop()
    last, quiet_since = "", loop.time()
    try:
        await resp.prepare(request)
        while True:
            text = json.dumps(status)
            if text != last:
                await resp.write(f"data: {text}\n\n".encode())
                last, quiet_since = text, loop.time()
            elif loop.time() - quiet_since >= KEEPALIVE_SECONDS:
                await resp.write(b": keep-alive\n\n")
                quiet_since = loop.time()
            if (status.get("image_status") or {}).get("status") in DONE:
                break
            try:
                await asyncio.wait_for(stopping.wait(), POLL_SECONDS)
                break
            except TimeoutError:
                pass
            try:
                status = await _status(request, entry.id, entry.request)
            except ImageBuilderError as e:
                await resp.write(f"event: error\ndata: {json.dumps({'detail': e.detail})}\n\n".encode())
                break
        await resp.write_eof()
    except ConnectionResetError:   # the client went away: nothing to report
        pass
    return resp


async def _stop_streams(app: web.Application) -> None:
    app[STOPPING].set()   # open event streams end now, not after the runner's shutdown timeout


def add_routes(app: web.Application) -> None:
    app[STOPPING] = asyncio.Event()
    app.on_shutdown.append(_stop_streams)
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/composes/{{composeId}}/logs", compose_logs)
        app.router.add_get(f"{prefix}/composes/{{composeId}}/download", compose_download)
        app.router.add_get(f"{prefix}/composes/{{composeId}}/events", compose_events)
