"""``compose`` downloads: log, logs, metadata, results, image."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp import web

from osbuildd.api.weldr.compose import existing
from osbuildd.api.weldr.composeview import error_field, state
from osbuildd.api.weldr.context import WeldrCompose
from osbuildd.api.weldr.errors import WeldrError, bad_request
from osbuildd.api.weldr.tarstream import Member, stream_tar
from osbuildd.api.weldr.util import V, ctx, json_response
from osbuildd.compose import failure

routes = web.RouteTableDef()
EMPTY_RESULT = "The compose result is empty.\n"


def _manifest_bytes(compose: WeldrCompose) -> bytes:
    return json.dumps(compose.manifest or {}, separators=(",", ":")).encode()


def _log_path(compose: WeldrCompose) -> Path | None:
    p = compose.log_path
    return Path(p) if p else None


def _mtime(compose: WeldrCompose) -> float:
    return float(compose.finished or compose.created or 0)


async def _failure_text(compose: WeldrCompose, path: Path | None) -> str:
    """A FAILED compose's failure block, unless the log on disk ends with it already (the executor
    appends it there; a compose that failed before its build ran, or by a crash, has none)."""
    if state(compose) != "FAILED":
        return ""
    if path is not None and await asyncio.to_thread(failure.has_block, path):
        return ""
    return failure.render(compose.error)


async def _stream_log(request: web.Request, head: str, path: Path | None, empty: str,
                      tail: str = "") -> web.StreamResponse:
    """``head``, the osbuild log as it is on disk (chunked: a running build's log keeps growing),
    then ``tail``; ``empty`` when there was neither log nor tail."""
    fh = None
    if path is not None:
        try:
            fh = await asyncio.to_thread(open, path, "rb")
        except OSError:
            fh = None
    resp = web.StreamResponse(headers={"Content-Type": "application/json; charset=utf-8"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    if head:
        await resp.write(head.encode())
    wrote = False
    try:
        while fh is not None:
            chunk = await asyncio.to_thread(fh.read, 1 << 20)
            if not chunk:
                break
            wrote = True
            await resp.write(chunk)
    finally:
        if fh is not None:
            await asyncio.to_thread(fh.close)
    if tail:
        await resp.write(((("\n" if wrote else "") + tail)).encode())
    elif not wrote and empty:
        await resp.write(empty.encode())
    await resp.write_eof()
    return resp


@routes.get(V + "/compose/log/{uuid}")
async def compose_log(request: web.Request) -> web.StreamResponse:
    """Upstream's text for a waiting/running compose; osbuildd adds the log so far after the running
    line (composer-cli prints the body as it is), and sends a finished compose's whole log."""
    compose = await existing(request, request.match_info["uuid"])
    st = state(compose)
    if st == "WAITING":  # upstream sends this error with status 200
        return json_response(WeldrError(200, "BuildInWrongState",
                                        f"Build {compose.id} has not started yet. No logs to view.").body())
    if st == "RUNNING":
        return await _stream_log(request, f"Build {compose.id} is still running.\n", _log_path(compose), "")
    path = _log_path(compose)
    return await _stream_log(request, "", path, EMPTY_RESULT, await _failure_text(compose, path))


def _finished_or_failed(compose: WeldrCompose, msg: str) -> None:
    if state(compose) not in ("FINISHED", "FAILED"):
        raise bad_request("BuildInWrongState", msg)


async def _log_members(compose: WeldrCompose) -> list[Member]:
    """``logs/osbuild.log`` (ending with the failure block when the compose FAILED) and, for a
    FAILED compose, ``logs/error.json``: the error as compose/info shows it."""
    path = _log_path(compose)
    exists = path is not None and await asyncio.to_thread(lambda: path.is_file() and path.stat().st_size > 0)
    tail = await _failure_text(compose, path if exists else None)
    if exists:
        members = [Member("logs/osbuild.log", 0o644, _mtime(compose), path=path,
                          suffix=("\n" + tail).encode() if tail else b"")]
    else:
        members = [Member("logs/osbuild.log", 0o644, _mtime(compose), data=(tail or EMPTY_RESULT).encode())]
    if state(compose) == "FAILED":
        data = json.dumps(error_field(compose), indent=2).encode() + b"\n"
        members.append(Member("logs/error.json", 0o644, _mtime(compose), data=data))
    return members


@routes.get(V + "/compose/logs/{uuid}")
async def compose_logs(request: web.Request) -> web.StreamResponse:
    compose = await existing(request, request.match_info["uuid"])
    _finished_or_failed(compose, f"Build {compose.id} not in FINISHED or FAILED state.")
    return await stream_tar(request, f"{compose.id}-logs.tar", await _log_members(compose))


@routes.get(V + "/compose/metadata/{uuid}")
async def compose_metadata(request: web.Request) -> web.StreamResponse:
    compose = await existing(request, request.match_info["uuid"])
    _finished_or_failed(compose, f"Build {compose.id} is in wrong state: {state(compose)}")
    members = [Member(f"{compose.id}.json", 0o600, _mtime(compose), data=_manifest_bytes(compose))]
    if compose.timings is not None:   # osbuildd's addition: the build's per-stage timings
        members.append(Member(f"{compose.id}-timings.json", 0o600, _mtime(compose),
                              data=json.dumps(compose.timings, indent=2).encode() + b"\n"))
    return await stream_tar(request, f"{compose.id}-metadata.tar", members)


def _image_path(compose: WeldrCompose) -> Path | None:
    p = compose.image_path
    return Path(p) if p else None


@routes.get(V + "/compose/results/{uuid}")
async def compose_results(request: web.Request) -> web.StreamResponse:
    compose = await existing(request, request.match_info["uuid"])
    _finished_or_failed(compose, f"Build {compose.id} is in wrong state: {state(compose)}")
    members = [Member(f"{compose.id}.json", 0o644, _mtime(compose), data=_manifest_bytes(compose)),
               *await _log_members(compose)]
    image = _image_path(compose)
    if image is not None and await asyncio.to_thread(image.is_file):
        members.append(Member(f"{compose.id}-{compose.image_filename}", 0o644, _mtime(compose), path=image))
    return await stream_tar(request, f"{compose.id}.tar", members)


@routes.get(V + "/compose/image/{uuid}")
async def compose_image(request: web.Request) -> web.StreamResponse:
    compose = await existing(request, request.match_info["uuid"])
    if state(compose) != "FINISHED":
        raise bad_request("BuildInWrongState", f"Build {compose.id} is in wrong state: {state(compose)}")
    image = _image_path(compose)
    if image is None or not await asyncio.to_thread(image.is_file):
        raise bad_request("InternalServerError", f"Error accessing image file for compose {compose.id}")
    return web.FileResponse(image, headers={
        "Content-Type": _mime(request, compose),
        "Content-Disposition": f"attachment; filename={compose.id}-{compose.image_filename}",
    })


def _mime(request: web.Request, compose: WeldrCompose) -> str:
    c = ctx(request)
    try:
        return c.distro(compose.distro).arch(compose.arch).image_type(compose.image_type).mime_type
    except LookupError:
        return "application/octet-stream"

