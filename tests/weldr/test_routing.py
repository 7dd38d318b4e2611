"""build_app registers each ``/api/v{version}/...`` route also per version (``/api/v0/...``,
``/api/v1/...``) so that aiohttp finds it by its index: every request must still reach the very handler
(or the very 404/405) the variable routes alone would give, with the same path variables."""

from __future__ import annotations

import itertools
import re

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from osbuildd.api.weldr import app as weldr_app
from osbuildd.api.weldr import blueprints, compose, composefiles, projects, sources, status, upload
from osbuildd.api.weldr.util import api_version

MODULES = (status, blueprints, compose, composefiles, projects, sources, upload)
FILLS = ("x", "*", "a,b", "30000000-0000-0000-0000-000000000002", "info", "list", "types", "queue", "log")
VERSIONS = ("0", "1", "2", "01", "x")


def _apps() -> tuple[web.Application, web.Application]:
    plain = web.Application()
    for m in MODULES:
        plain.router.add_routes(m.routes)
    indexed = web.Application()
    for m in MODULES:
        weldr_app._add_versioned(indexed.router, m.routes)
    for m in MODULES:
        indexed.router.add_routes(m.routes)
    return plain, indexed


def _paths() -> set[str]:
    out = {"/api/status", "/api/v1/", "/api/v1/compose", "/api/v1/compose/", "/nothing"}
    for m in MODULES:
        for r in m.routes:
            variables = [s for s in re.findall(r"\{[^}]+\}", r.path) if s != "{version}"]
            for combo in itertools.product(FILLS, repeat=min(len(variables), 2)):
                for v in VERSIONS:
                    p = r.path.replace("{version}", v)
                    for var, value in zip(variables, list(combo) + ["x"] * len(variables), strict=False):
                        p = p.replace(var, value, 1)
                    out.add(p)
    return out


def _outcome(match: web.UrlMappingMatchInfo) -> tuple:
    exc = match.http_exception
    if exc is not None:
        return (exc.status, tuple(sorted(getattr(exc, "allowed_methods", ()) or ())))
    return (match.handler, {k: v for k, v in match.items() if k != "version"})


async def test_indexed_routes_resolve_as_the_variable_ones() -> None:
    plain, indexed = _apps()
    paths = _paths()
    assert len(paths) > 1000
    for path in sorted(paths):
        for method in ("GET", "HEAD", "POST", "DELETE", "PUT"):
            want = _outcome(await plain.router.resolve(make_mocked_request(method, path, app=plain)))
            got = _outcome(await indexed.router.resolve(make_mocked_request(method, path, app=indexed)))
            assert got == want, (method, path)


async def test_api_version_of_an_indexed_route() -> None:
    _, indexed = _apps()
    for path, v in (("/api/v0/compose/types", 0), ("/api/v1/compose/types", 1), ("/api/v01/compose/types", 1)):
        req = make_mocked_request("GET", path, app=indexed)
        match = await indexed.router.resolve(req)
        req._match_info = match
        assert api_version(req) == v, path
        # the version-specific routes carry no {version}; the variable one still does
        assert ("version" in match) == (path == "/api/v01/compose/types")
