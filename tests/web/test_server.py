"""The ``[web]`` listener on a real daemon: the UI's files with their caching and security headers,
the single-page app's fallback, the 503 of an unbuilt UI, and the image-builder API beside it:
local mode injects the built-in organisation and refuses cross-origin and foreign-Host requests;
hosted mode authenticates X-Rh-Identity as the API does and keeps organisations apart; the
image-builder listener with ``web = true`` serves the UI too."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from imagebuilder.ib_daemon import ORG_A, ORG_B

from osbuildd.web import CSP

from .web_daemon import APP_JS, INDEX, WebServer, web_server

pytestmark = pytest.mark.asyncio(loop_scope="module")
ORG_LOCAL = "4242"
BLUEPRINT = {"name": "web-bp", "description": "", "distribution": "debian-12", "customizations": {},
             "image_requests": [{"architecture": "x86_64", "image_type": "guest-image",
                                 "upload_request": {"type": "aws.s3", "options": {}}}]}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def local(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WebServer]:
    async with web_server(tmp_path_factory.mktemp("web-local"), web_lines=f'org_id = "{ORG_LOCAL}"',
                          ib_listener=True) as d:
        yield d


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hosted(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WebServer]:
    async with web_server(tmp_path_factory.mktemp("web-hosted"), mode="hosted") as d:
        yield d


def _security_headers(headers: object) -> None:
    assert headers["Content-Security-Policy"] == CSP      # type: ignore[index]
    assert "'unsafe-inline'" not in CSP.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in CSP and "connect-src 'self'" in CSP
    assert headers["X-Content-Type-Options"] == "nosniff"  # type: ignore[index]
    assert headers["Referrer-Policy"] == "no-referrer"     # type: ignore[index]


# -- the UI's files ------------------------------------------------------------------------------

async def test_root_is_index_html_not_cached(local: WebServer) -> None:
    a = await local.call("GET", "/")
    assert a.status == 200 and a.text == INDEX
    assert a.headers["Content-Type"].startswith("text/html")
    assert a.headers["Cache-Control"] == "no-cache"
    _security_headers(a.headers)


@pytest.mark.parametrize("path", ["/blueprints", "/composes/0b7e1c2d-aaaa-bbbb-cccc-000000000000", "/wizard/x"])
async def test_client_routes_fall_back_to_index(local: WebServer, path: str) -> None:
    a = await local.call("GET", path)
    assert a.status == 200 and a.text == INDEX and a.headers["Cache-Control"] == "no-cache"


async def test_assets_are_immutable_and_compressed(local: WebServer) -> None:
    async with local.session.get(local.base + "/assets/app-1a2b3c.js",
                                 headers={"Accept-Encoding": "gzip"}, auto_decompress=False) as r:
        raw = await r.read()
        assert r.status == 200, raw[:200]
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert r.headers.get("Content-Encoding") == "gzip"
        assert gzip.decompress(raw).decode() == APP_JS
        _security_headers(r.headers)
    # the pre-compressed sibling is what is sent when there is one
    async with local.session.get(local.base + "/assets/style-9f8e.css",
                                 headers={"Accept-Encoding": "gzip"}, auto_decompress=False) as r:
        raw = await r.read()
        assert r.status == 200 and r.headers.get("Content-Encoding") == "gzip"
        assert r.headers["Content-Type"].startswith("text/css")
        assert gzip.decompress(raw) == b"body { color: black; }\n" * 100
    a = await local.call("GET", "/assets/app-1a2b3c.js", headers={"Accept-Encoding": "identity"})
    assert a.status == 200 and a.text == APP_JS and "Content-Encoding" not in a.headers


async def test_missing_asset_is_404_not_index(local: WebServer) -> None:
    a = await local.call("GET", "/assets/app-000000.js")
    assert a.status == 404 and INDEX not in a.text


async def test_other_static_files_and_no_escape(local: WebServer) -> None:
    a = await local.call("GET", "/favicon.svg")
    assert a.status == 200 and a.text.startswith("<svg")
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"):
        a = await local.call("GET", path)
        assert "outside the static dir" not in a.text, path


async def test_unknown_api_path_is_json_404_not_index(local: WebServer) -> None:
    a = await local.call("GET", "/api/image-builder/v1/no-such-thing")
    assert a.status == 404 and a.json()["errors"], a.text
    a = await local.call("GET", "/api/image-builder/v1/compose")   # POST only: as without the UI
    assert a.status == 405, a.text
    a = await local.call("GET", "/api/other")
    assert a.status == 404 and INDEX not in a.text


async def test_ui_not_built_answers_503(tmp_path: Path) -> None:
    async with web_server(tmp_path, static=False) as d:
        a = await d.call("GET", "/")
        assert a.status == 503
        assert "the web UI is not built: run scripts/setup.sh (npm ci && npm run build in web/)" in a.text
        a = await d.call("GET", "/composes")
        assert a.status == 503
        a = await d.call("GET", "distributions")   # the API works without the UI
        assert a.status == 200, a.text
        log = d.log.read_text()
        assert "THE WEB UI IS NOT BUILT" in log and "Traceback" not in log


# -- local mode ------------------------------------------------------------------------------------

async def test_local_mode_api_needs_no_identity(local: WebServer) -> None:
    a = await local.call("POST", "blueprints", BLUEPRINT, headers={"Origin": local.base})
    assert a.status == 201, a.text
    bp_id = a.json()["id"]
    a = await local.call("GET", "blueprints")
    assert a.status == 200 and [b["id"] for b in a.json()["data"]] == [bp_id]
    _security_headers(a.headers)
    # it is the built-in organisation's: the hosted image-builder listener shows it to that org only
    a = await local.ib("GET", "blueprints", org=ORG_LOCAL)
    assert [b["id"] for b in a.json()["data"]] == [bp_id]
    a = await local.ib("GET", "blueprints", org=ORG_A)
    assert a.json()["data"] == []


async def test_local_mode_replaces_a_sent_identity(local: WebServer) -> None:
    a = await local.call("POST", "blueprints", {**BLUEPRINT, "name": "web-bp-org-b"}, org=ORG_B)
    assert a.status == 201, a.text
    a = await local.ib("GET", "blueprints", org=ORG_B)
    assert a.json()["data"] == []
    a = await local.ib("GET", "blueprints", org=ORG_LOCAL)
    assert "web-bp-org-b" in [b["name"] for b in a.json()["data"]]


async def test_local_mode_refuses_cross_origin_writes(local: WebServer) -> None:
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        a = await local.call("POST", "blueprints", {**BLUEPRINT, "name": "evil"}, headers=headers)
        assert a.status == 403, (headers, a.text)
        assert "cross" in a.json()["errors"][0]["detail"]
    a = await local.ib("GET", "blueprints", org=ORG_LOCAL)
    assert "evil" not in [b["name"] for b in a.json()["data"]]
    # reads from another origin are the browser's business (no CORS headers are given)
    a = await local.call("GET", "blueprints", headers={"Origin": "http://evil.example"})
    assert a.status == 200 and "Access-Control-Allow-Origin" not in a.headers


async def test_local_mode_refuses_a_foreign_host(local: WebServer) -> None:
    for path in ("/", f"{'/api/image-builder/v1'}/blueprints"):
        a = await local.call("GET", path, headers={"Host": "evil.example"})
        assert a.status == 403 and "evil.example" in a.text, a.text
    port = local.base.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"[::1]:{port}", f"127.0.0.1:{port}"):
        a = await local.call("GET", "/", headers={"Host": host})
        assert a.status == 200, host


# -- hosted mode ------------------------------------------------------------------------------------

async def test_hosted_mode_needs_identity(hosted: WebServer) -> None:
    a = await hosted.call("GET", "blueprints")
    assert a.status == 401, a.text
    a = await hosted.call("GET", "/")   # the UI itself is public; its API calls carry the gateway's header
    assert a.status == 200 and a.text == INDEX


async def test_hosted_mode_keeps_organisations_apart(hosted: WebServer) -> None:
    a = await hosted.call("POST", "blueprints", {**BLUEPRINT, "name": "bp-a"}, org=ORG_A)
    assert a.status == 201, a.text
    a = await hosted.call("POST", "blueprints", {**BLUEPRINT, "name": "bp-b"}, org=ORG_B)
    assert a.status == 201, a.text
    a = await hosted.call("GET", "blueprints", org=ORG_A)
    assert [b["name"] for b in a.json()["data"]] == ["bp-a"]
    a = await hosted.call("GET", "blueprints", org=ORG_B)
    assert [b["name"] for b in a.json()["data"]] == ["bp-b"]


async def test_image_builder_listener_serves_the_ui_when_asked(tmp_path: Path) -> None:
    async with web_server(tmp_path, ib_listener=True, ib_lines="web = true") as d:
        a = await d.ib("GET", "/")
        assert a.status == 200 and a.text == INDEX, a.text
        _security_headers(a.headers)
        a = await d.ib("GET", "blueprints")
        assert a.status == 401, a.text   # hosted: no identity is injected there
