"""``projects/source/*``: system repositories (read-only) and user sources, v0 keyed by name, v1 by id."""

from __future__ import annotations

import asyncio
from typing import Any

import tomli_w
from aiohttp import web

from osbuildd.api.weldr.bodies import BodyError, media_type, parse_json, parse_toml, read_body
from osbuildd.api.weldr.errors import WeldrError, bad_request, error_entry, not_found
from osbuildd.api.weldr.util import (
    V,
    api_version,
    ctx,
    format_param,
    json_response,
    ok,
    text_response,
)
from osbuildd.distro.sourcestore import SOURCE_TYPES, SourceConfig, check_source, repo_source

routes = web.RouteTableDef()


def _system_sources(request: web.Request) -> list[tuple[str, SourceConfig]]:
    c = ctx(request)
    repos = c.system_repos(c.distro(c.host_distro), c.host_arch)
    return [(r.id, repo_source(r)) for r in repos]


async def _all_sources(request: web.Request, v: int) -> list[tuple[str, SourceConfig]]:
    """(key, config): user sources then system ones; v0 keys are names, v1 keys are ids."""
    user = await ctx(request).sources.list()
    if v == 0:
        user = [(cfg.name, cfg) for _, cfg in user]
    return user + _system_sources(request)


@routes.get(V + "/projects/source/list")
async def source_list(request: web.Request) -> web.Response:
    items = await _all_sources(request, api_version(request))
    return json_response({"sources": [k for k, _ in items]})


@routes.get(V + "/projects/source/info/")
async def source_info_empty(request: web.Request) -> web.Response:
    raise not_found()


@routes.get(V + "/projects/source/info/{ids}")
async def source_info(request: web.Request) -> web.Response:
    v = api_version(request)
    fmt = format_param(request)
    wanted = request.match_info["ids"].split(",")
    known = await _all_sources(request, v)
    by_key: dict[str, SourceConfig] = {}
    for k, cfg in known:
        by_key.setdefault(k, cfg)
    found: dict[str, SourceConfig] = {}
    errors = []
    for key in wanted:
        if key == "*":
            found.update(by_key)
        elif key in by_key:
            found[key] = by_key[key]
        else:
            errors.append(error_entry("UnknownSource", f"{key} is not a valid source"))
    if fmt == "toml":
        return text_response(tomli_w.dumps({k: cfg.toml_table() for k, cfg in found.items()}))
    sources = {k: (cfg.v0() if v == 0 else cfg.v1(k)) for k, cfg in found.items()}
    return json_response({"sources": sources, "errors": errors})


def _decode_source(raw: bytes, ctype: str, v: int) -> tuple[str, dict[str, Any]]:
    """(key, fields) of a POSTed source; raises WeldrError with upstream's ids."""
    keyname = "name" if v == 0 else "id"
    try:
        if ctype == "application/json":
            data = parse_json(raw)
        elif ctype == "text/x-toml":
            data = parse_toml(raw)
            # Table form `[id]\n...`: the first table (sorted) is the source; its key may stand for the id.
            if data and all(isinstance(x, dict) for x in data.values()):
                table_key = sorted(data)[0]
                data = dict(data[table_key])
                if v == 1:
                    data.setdefault("id", table_key)
        else:
            raise bad_request("ProjectsError", "Problem parsing POST body: source must be json or toml")
    except BodyError as e:
        raise bad_request("ProjectsError", f"Problem parsing POST body: {e}") from e
    if not isinstance(data, dict):
        raise bad_request("ProjectsError", "Problem parsing POST body: source must be an object")
    for req in (keyname, "name", "url", "type"):
        if not data.get(req):
            raise bad_request("ProjectsError", f"Problem parsing POST body: '{req}' field is missing from request")
    return str(data[keyname]), data


def _source_config(data: dict[str, Any]) -> SourceConfig:
    def want(key: str, kind: type, default: Any) -> Any:
        value = data.get(key, default)
        if kind is list and isinstance(value, list) and all(isinstance(x, str) for x in value):
            return value
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise bad_request("ProjectsError", f"Problem parsing POST body: '{key}' must be a {kind.__name__}")
        return value

    allowed = {"id", "name", "type", "url", "check_gpg", "check_ssl", "system", "proxy", "gpgkeys",
               "distros", "rhsm", "check_repogpg", "suite", "components", "signed_by"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise bad_request("ProjectsError", f"Problem parsing POST body: unknown field '{unknown[0]}'")
    kind = want("type", str, "")
    if kind not in SOURCE_TYPES:
        raise bad_request("ProjectsError", f"Problem parsing POST body: unknown source type '{kind}'")
    if kind == "deb" and not want("suite", str, ""):
        raise bad_request("ProjectsError", "Problem parsing POST body: 'suite' field is missing from request")
    suite = want("suite", str, "")
    return SourceConfig(
        name=want("name", str, ""), type=kind, url=want("url", str, ""),
        # a deb source is verified unless it says check_gpg = false (explicitly unsigned)
        check_gpg=want("check_gpg", bool, kind == "deb"), check_ssl=want("check_ssl", bool, False),
        system=False, proxy=want("proxy", str, ""), gpgkeys=want("gpgkeys", list, []),
        distros=want("distros", list, []), rhsm=want("rhsm", bool, False),
        check_repogpg=want("check_repogpg", bool, False), suite=suite,
        components=want("components", list, []) or (["main"] if kind == "deb" and not suite.endswith("/") else []),
        signed_by=want("signed_by", str, ""),
    )


@routes.post(V + "/projects/source/new")
async def source_new(request: web.Request) -> web.Response:
    v = api_version(request)
    ctype = media_type(request)
    if not ctype:
        raise bad_request("HTTPError", "malformed Content-Type header")
    raw = await read_body(request)
    if not raw.strip():
        raise bad_request("ProjectsError", "Missing source")
    key, data = _decode_source(raw, ctype, v)
    cfg = _source_config(data)
    c = ctx(request)
    if cfg.distros:
        bad = [d for d in cfg.distros if d not in c.distro_names(c.host_arch)]
        if bad:
            raise bad_request("ProjectsError", f"Invalid distributions: {','.join(bad)}")
    if key in {k for k, _ in _system_sources(request)}:
        raise bad_request("SystemSource", f"{key} is a system source, it cannot be changed.")
    if "/" in key or ".." in key:
        raise bad_request("ProjectsError", f"Problem parsing POST body: invalid source id '{key}'")
    # resolves key paths on disk; a RepoCheckError is worded by the middleware
    await asyncio.to_thread(check_source, key, cfg)
    await c.sources.put(key, cfg)
    return ok()


@routes.delete(V + "/projects/source/delete/")
async def source_delete_empty(request: web.Request) -> web.Response:
    raise not_found()


@routes.delete(V + "/projects/source/delete/{id}")
async def source_delete(request: web.Request) -> web.Response:
    v = api_version(request)
    key = request.match_info["id"].split(",")[0]
    if key in {k for k, _ in _system_sources(request)}:
        raise bad_request("SystemSource", f"{key} is a system source, it cannot be deleted.")
    store = ctx(request).sources
    deleted = await (store.delete_by_name(key) if v == 0 else store.delete_by_id(key))
    if not deleted:
        raise WeldrError(400, "UnknownSource", f"{key} is not a valid source.")
    return ok()
