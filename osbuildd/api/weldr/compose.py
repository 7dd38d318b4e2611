"""``compose`` routes: start (real or ``?test=1|2``), types, queue/finished/failed/status/info, cancel,
delete, and the downloads (log, logs, metadata, results, image)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid as uuidlib
from pathlib import Path
from typing import Any

from aiohttp import web

from osbuildd.api.weldr import bpstore
from osbuildd.api.weldr.bodies import BodyError, media_type, parse_json, read_body
from osbuildd.api.weldr.composeview import PROVIDER_TARGETS, SETTINGS, entry, state, uploads
from osbuildd.api.weldr.errors import WeldrError, bad_request, error_entry, not_found
from osbuildd.api.weldr.packages import depsolved, repositories
from osbuildd.api.weldr.tarstream import Member, stream_tar
from osbuildd.api.weldr.util import (
    SERVICES,
    V,
    api_version,
    check_name,
    ctx,
    distro_arch,
    json_response,
)

routes = web.RouteTableDef()
EMPTY_RESULT = "The compose result is empty.\n"
_OSTREE_REF = re.compile(r"^(?:[\w\d][-._\w\d]*/)*[\w\d][-._\w\d]*$")


def _service(request: web.Request) -> Any:
    svc = ctx(request).compose or getattr(request.app[SERVICES], "compose", None)
    if svc is None:
        raise WeldrError(503, "ComposeError", "the compose service is not running on this daemon")
    return svc


def _parse_uuid(raw: str) -> str | None:
    try:
        return str(uuidlib.UUID(raw))
    except ValueError:
        return None


async def _lookup(request: web.Request, compose_id: str) -> Any | None:
    try:
        return await _service(request).get(compose_id)
    except LookupError:
        return None
    except Exception as e:  # ComposeNotFound of the compose service
        if "NotFound" in type(e).__name__:
            return None
        raise


async def _existing(request: web.Request, raw: str) -> Any:
    """The compose named in the path for the download routes (upstream's two UnknownUUID texts)."""
    cid = _parse_uuid(raw)
    if cid is None:
        raise bad_request("UnknownUUID", f"{raw} is not a valid build uuid")
    compose = await _lookup(request, cid)
    if compose is None:
        raise bad_request("UnknownUUID", f"Compose {cid} doesn't exist")
    return compose


# ---------------------------------------------------------------------------------------------- start


def _targets(upload: Any) -> list[Any]:
    """The v1 ``upload`` object as compose targets; an unknown provider is a decode error (404)."""
    from osbuildd.compose import UploadTarget

    if upload is None:
        return []
    if not isinstance(upload, dict) or upload.get("provider") not in PROVIDER_TARGETS:
        raise not_found()
    provider = upload["provider"]
    settings = upload.get("settings") or {}
    if not isinstance(settings, dict) or set(settings) - SETTINGS[provider]:
        raise not_found()
    name = upload.get("image_name", "")
    if not isinstance(name, str):
        raise not_found()
    return [UploadTarget(name=PROVIDER_TARGETS[provider], image_name=name, options=dict(settings))]


def _check_ostree(ostree: Any) -> None:
    if not ostree:
        return
    if not isinstance(ostree, dict):
        raise not_found()
    ref, parent, url = ostree.get("ref", ""), ostree.get("parent", ""), ostree.get("url", "")
    for r in (ref, parent):
        if r and not _OSTREE_REF.match(r):
            raise bad_request("OSTreeOptionsError", f'Invalid ostree ref or commit "{r}"')
    if parent and not url:
        raise bad_request("ManifestCreationFailed",
                          "failed to initialize osbuild manifest: ostree parent ref specified, but no URL to retrieve it")


@routes.post(V + "/compose")
async def compose_start(request: web.Request) -> web.Response:
    from osbuildd.compose import ComposeRequest

    c = ctx(request)
    v = api_version(request)
    if media_type(request) != "application/json":
        raise bad_request("MissingPost", "blueprint must be json")
    raw = await read_body(request)
    try:
        body = parse_json(raw)
    except BodyError as e:
        raise not_found() from e  # upstream answers an undecodable compose body with 404
    if not isinstance(body, dict) or not isinstance(body.get("blueprint_name", ""), str) \
            or not isinstance(body.get("compose_type", ""), str):
        raise not_found()
    size = body.get("size", 0) or 0
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise not_found()
    targets = _targets(body.get("upload")) if v >= 1 else []
    name = body.get("blueprint_name", "")
    check_name(name)
    bp = await bpstore.committed(c.blueprints, name)
    if bp is None:
        raise bad_request("UnknownBlueprint", f"Unknown blueprint name: {name}")
    distro_name = getattr(bp, "distro", "") or c.host_distro
    arch_name = getattr(bp, "arch", "") or c.host_arch
    try:
        distro = c.distro(distro_name)
        arch = distro.arch(arch_name)
    except LookupError as e:
        raise bad_request("DistroError", f"Unknown distribution: {distro_name} for arch {arch_name}") from e
    image_type_name = body.get("compose_type", "")
    try:
        image_type = arch.image_type(image_type_name)
    except LookupError as e:
        raise bad_request("ComposeError",
                          f'Failed to get compose type "{image_type_name}": invalid image type: {image_type_name}') from e
    _check_ostree(body.get("ostree"))
    if arch_name not in c.worker_arches:
        raise bad_request("ComposePushErrored", f"No worker for arch '{arch_name}'  available")
    repos = await repositories(c, distro, arch_name)
    system = c.system_repos(distro, arch_name)
    req = ComposeRequest(
        distro=distro.name, arch=arch_name, image_type=image_type.name, blueprint=bp, size=size or None,
        repositories=repos if len(repos) != len(system) else None, targets=targets, origin="weldr",
    )
    svc = _service(request)
    test = request.query.get("test", "")
    try:
        if test in ("1", "2"):
            compose_id = await svc.create_fake(req, finished=(test == "2"))
        else:
            compose_id = await svc.start(req)
        _lists(request).changed()
    except Exception as e:
        kind = type(e).__name__
        if kind == "ComposeRequestError":
            if getattr(e, "kind", "") == "blueprint":
                raise bad_request("ManifestCreationFailed", f"failed to initialize osbuild manifest: {e}") from e
            raise bad_request("ComposeError", str(e)) from e
        if kind == "DepsolveError":
            raise WeldrError(500, "DepsolveError", str(e)) from e
        if kind == "BlueprintError":
            raise bad_request("ManifestCreationFailed", f"failed to initialize osbuild manifest: {e}") from e
        raise
    return json_response({"build_id": compose_id, "status": True, "warnings": []})


# --------------------------------------------------------------------------------------- listings


@routes.get(V + "/compose/types")
async def compose_types(request: web.Request) -> web.Response:
    distro, arch_name = distro_arch(request)
    arch = distro.arches.get(arch_name)
    names = sorted(arch.image_types) if arch is not None else []
    return json_response({"types": [{"name": n, "enabled": True} for n in names]})


class ListCoalescer:
    """Concurrent listings share one ``ComposeService.list()`` call (cockpit and composer-cli poll it).

    A request only joins a call started after the last compose change made through this API, so a
    client always sees its own start/cancel/delete.
    """

    def __init__(self) -> None:
        self.generation = 0
        self._inflight: tuple[int, asyncio.Future[list[Any]]] | None = None

    def changed(self) -> None:
        self.generation += 1

    async def list(self, service: Any) -> list[Any]:
        if self._inflight is not None and self._inflight[0] == self.generation:
            return await asyncio.shield(self._inflight[1])
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._inflight = (self.generation, fut)
        try:
            result = list(await service.list())
            fut.set_result(result)
            return result
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved here so a failure nobody joined is not reported as lost
            raise
        finally:
            if self._inflight is not None and self._inflight[1] is fut:
                self._inflight = None


LISTS = web.AppKey("weldr_compose_lists", ListCoalescer)


def _lists(request: web.Request) -> ListCoalescer:
    return request.app[LISTS]


async def _all(request: web.Request) -> list[Any]:
    return await _lists(request).list(_service(request))


@routes.get(V + "/compose/queue")
async def compose_queue(request: web.Request) -> web.Response:
    v = api_version(request)
    composes = await _all(request)
    return json_response({
        "new": [entry(x, v) for x in composes if state(x) == "WAITING"],
        "run": [entry(x, v) for x in composes if state(x) == "RUNNING"],
    })


@routes.get(V + "/compose/finished")
async def compose_finished(request: web.Request) -> web.Response:
    v = api_version(request)
    composes = sorted(await _all(request), key=lambda x: x.id)
    return json_response({"finished": [entry(x, v) for x in composes if state(x) == "FINISHED"]})


@routes.get(V + "/compose/failed")
async def compose_failed(request: web.Request) -> web.Response:
    v = api_version(request)
    composes = sorted(await _all(request), key=lambda x: x.id)
    return json_response({"failed": [entry(x, v) for x in composes if state(x) == "FAILED"]})


@routes.get(V + "/compose/status/{uuids}")
async def compose_status(request: web.Request) -> web.Response:
    v = api_version(request)
    q = request.query
    bp_filter = q.get("blueprint")
    if bp_filter is not None:
        check_name(bp_filter)
    raw = request.match_info["uuids"]
    if raw == "*":
        composes = await _all(request)
    else:
        composes = []
        for item in raw.split(","):
            cid = _parse_uuid(item)
            if cid is None:
                raise bad_request("UnknownUUID", f"{item} is not a valid build uuid")
            found = await _lookup(request, cid)
            if found is not None:
                composes.append(found)
    out = []
    for x in sorted(composes, key=lambda x: x.id):
        if bp_filter is not None and x.blueprint_name != bp_filter:
            continue
        if "status" in q and state(x) != q["status"]:
            continue
        if "type" in q and x.image_type != q["type"]:
            continue
        out.append(entry(x, v))
    return json_response({"uuids": out})


@routes.get(V + "/compose/info/{uuid}")
async def compose_info(request: web.Request) -> web.Response:
    v = api_version(request)
    raw = request.match_info["uuid"]
    cid = _parse_uuid(raw)
    compose = await _lookup(request, cid) if cid else None
    if compose is None:
        raise bad_request("UnknownUUID", f"{raw} is not a valid build uuid")
    req = compose.request or {}
    blueprint = req.get("blueprint") if isinstance(req, dict) else None
    if not isinstance(blueprint, dict):
        blueprint = {"name": compose.blueprint_name, "version": compose.blueprint_version}
    packages = sorted(compose.packages or [], key=lambda p: p.name)
    out: dict[str, Any] = {
        "id": compose.id, "config": "", "blueprint": blueprint, "commit": "",
        "deps": {"packages": [depsolved(p) for p in packages]}, "compose_type": compose.image_type,
        "queue_status": state(compose), "image_size": int(compose.size or 0),
    }
    if v >= 1:
        ups = uploads(compose)
        if ups:
            out["uploads"] = ups
    return json_response(out)


# ------------------------------------------------------------------------------- cancel / delete


@routes.delete(V + "/compose/cancel/{uuid}")
async def compose_cancel(request: web.Request) -> web.Response:
    compose = await _existing(request, request.match_info["uuid"])
    if state(compose) not in ("WAITING", "RUNNING"):
        raise bad_request("BuildInWrongState", f"Build {compose.id} is not in WAITING or RUNNING.")
    try:
        await _service(request).cancel(compose.id)
    except Exception as e:
        if "State" in type(e).__name__:  # it finished meanwhile
            raise bad_request("BuildInWrongState", f"Build {compose.id} is not in WAITING or RUNNING.") from e
        if "NotFound" in type(e).__name__:
            raise bad_request("UnknownUUID", f"Compose {compose.id} doesn't exist") from e
        raise
    finally:
        _lists(request).changed()
    return json_response({"uuid": compose.id, "status": True})


@routes.delete(V + "/compose/delete/{uuids}")
async def compose_delete(request: web.Request) -> web.Response:
    done, errors = [], []
    for item in request.match_info["uuids"].split(","):
        cid = _parse_uuid(item)
        if cid is None:
            errors.append(error_entry("UnknownUUID", f"{item} is not a valid uuid"))
            continue
        compose = await _lookup(request, cid)
        if compose is None:
            errors.append(error_entry("UnknownUUID", f"compose {cid} doesn't exist"))
            continue
        if state(compose) not in ("FINISHED", "FAILED"):
            errors.append(error_entry("BuildInWrongState", f"Compose {cid} is not in FINISHED or FAILED."))
            continue
        try:
            await _service(request).delete(cid)
        except Exception as e:  # one bad item must not hide the others' results
            if "State" in type(e).__name__:
                errors.append(error_entry("BuildInWrongState", f"Compose {cid} is not in FINISHED or FAILED."))
            elif "NotFound" in type(e).__name__:
                errors.append(error_entry("UnknownUUID", f"compose {cid} doesn't exist"))
            else:
                raise
            continue
        finally:
            _lists(request).changed()
        done.append({"uuid": cid, "status": True})
    return json_response({"uuids": done, "errors": errors})


# -------------------------------------------------------------------------------------- downloads


def _manifest_bytes(compose: Any) -> bytes:
    return json.dumps(compose.manifest or {}, separators=(",", ":")).encode()


def _log_path(compose: Any) -> Path | None:
    p = getattr(compose, "log_path", None)
    return Path(p) if p else None


def _mtime(compose: Any) -> float:
    return float(compose.finished or compose.created or 0)


async def _stream_log(request: web.Request, head: str, path: Path | None, empty: str) -> web.StreamResponse:
    """``head`` then the osbuild log as it is on disk (chunked: a running build's log keeps growing)."""
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
    if not wrote and empty:
        await resp.write(empty.encode())
    await resp.write_eof()
    return resp


@routes.get(V + "/compose/log/{uuid}")
async def compose_log(request: web.Request) -> web.StreamResponse:
    """Upstream's text for a waiting/running compose; osbuildd adds the log so far after the running
    line (composer-cli prints the body as it is), and sends a finished compose's whole log."""
    compose = await _existing(request, request.match_info["uuid"])
    st = state(compose)
    if st == "WAITING":  # upstream sends this error with status 200
        return json_response(WeldrError(200, "BuildInWrongState",
                                        f"Build {compose.id} has not started yet. No logs to view.").body())
    if st == "RUNNING":
        return await _stream_log(request, f"Build {compose.id} is still running.\n", _log_path(compose), "")
    return await _stream_log(request, "", _log_path(compose), EMPTY_RESULT)


def _finished_or_failed(compose: Any, msg: str) -> None:
    if state(compose) not in ("FINISHED", "FAILED"):
        raise bad_request("BuildInWrongState", msg)


async def _log_member(compose: Any) -> Member:
    path = _log_path(compose)
    exists = path is not None and await asyncio.to_thread(lambda: path.is_file() and path.stat().st_size > 0)
    if exists:
        return Member("logs/osbuild.log", 0o644, _mtime(compose), path=path)
    return Member("logs/osbuild.log", 0o644, _mtime(compose), data=EMPTY_RESULT.encode())


@routes.get(V + "/compose/logs/{uuid}")
async def compose_logs(request: web.Request) -> web.StreamResponse:
    compose = await _existing(request, request.match_info["uuid"])
    _finished_or_failed(compose, f"Build {compose.id} not in FINISHED or FAILED state.")
    return await stream_tar(request, f"{compose.id}-logs.tar", [await _log_member(compose)])


@routes.get(V + "/compose/metadata/{uuid}")
async def compose_metadata(request: web.Request) -> web.StreamResponse:
    compose = await _existing(request, request.match_info["uuid"])
    _finished_or_failed(compose, f"Build {compose.id} is in wrong state: {state(compose)}")
    member = Member(f"{compose.id}.json", 0o600, _mtime(compose), data=_manifest_bytes(compose))
    return await stream_tar(request, f"{compose.id}-metadata.tar", [member])


def _image_path(compose: Any) -> Path | None:
    p = getattr(compose, "image_path", None)
    return Path(p) if p else None


@routes.get(V + "/compose/results/{uuid}")
async def compose_results(request: web.Request) -> web.StreamResponse:
    compose = await _existing(request, request.match_info["uuid"])
    _finished_or_failed(compose, f"Build {compose.id} is in wrong state: {state(compose)}")
    members = [Member(f"{compose.id}.json", 0o644, _mtime(compose), data=_manifest_bytes(compose)),
               await _log_member(compose)]
    image = _image_path(compose)
    if image is not None and await asyncio.to_thread(image.is_file):
        members.append(Member(f"{compose.id}-{compose.image_filename}", 0o644, _mtime(compose), path=image))
    return await stream_tar(request, f"{compose.id}.tar", members)


@routes.get(V + "/compose/image/{uuid}")
async def compose_image(request: web.Request) -> web.StreamResponse:
    compose = await _existing(request, request.match_info["uuid"])
    if state(compose) != "FINISHED":
        raise bad_request("BuildInWrongState", f"Build {compose.id} is in wrong state: {state(compose)}")
    image = _image_path(compose)
    if image is None or not await asyncio.to_thread(image.is_file):
        raise bad_request("InternalServerError", f"Error accessing image file for compose {compose.id}")
    return web.FileResponse(image, headers={
        "Content-Type": _mime(request, compose),
        "Content-Disposition": f"attachment; filename={compose.id}-{compose.image_filename}",
    })


def _mime(request: web.Request, compose: Any) -> str:
    c = ctx(request)
    try:
        return c.distro(compose.distro).arch(compose.arch).image_type(compose.image_type).mime_type
    except LookupError:
        return "application/octet-stream"

