"""The image-builder API's osbuildd extensions the web UI uses, on a real daemon (hosted mode on the
web listener: two organisations; nothing is built): ``?test=2`` / ``?test=1`` fake composes (only
with ``test_composes``), the ``local`` upload type and Debian's ``tar`` image type, and
``.../logs``, ``.../download``, ``.../events`` with their 404 for another organisation's compose."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from imagebuilder.ib_daemon import IB, ORG_A, ORG_B, conforms, identity

from .web_daemon import WebServer, web_server

pytestmark = pytest.mark.asyncio(loop_scope="module")


def compose_request(image_type: str = "guest-image", upload: str = "local") -> dict[str, Any]:
    return {"distribution": "debian-12", "image_name": f"web-{image_type}",
            "image_requests": [{"architecture": "x86_64", "image_type": image_type,
                                "upload_request": {"type": upload, "options": {}}}]}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ib(tmp_path_factory: pytest.TempPathFactory, shared_state_dir: Path) -> AsyncIterator[WebServer]:
    async with web_server(tmp_path_factory.mktemp("web-ext"), mode="hosted", ib_lines="test_composes = true",
                          shared_state=shared_state_dir) as d:
        yield d


async def _events(d: WebServer, cid: str, org: str, *, first_only: bool = False) -> list[str]:
    """The ``data:`` payloads of the compose's event stream (the stream must end by itself)."""
    out: list[str] = []
    async with d.session.get(f"{d.base}{IB}/composes/{cid}/events",
                             headers={"X-Rh-Identity": identity(org)}) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream"), await r.text()
        async for raw in r.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                out.append(line[6:])
                if first_only:
                    break
    return out


async def _fake(d: WebServer, test: str, org: str = ORG_A) -> str:
    a = await d.call("POST", f"compose?test={test}", compose_request(), org=org)
    assert a.status == 201, a.text
    return str(a.json()["id"])


async def test_finished_fake_downloads_its_image(ib: WebServer) -> None:
    cid = await _fake(ib, "2")
    a = await ib.call("GET", f"composes/{cid}", org=ORG_A)
    assert a.status == 200, a.text
    body = a.json()
    conforms(body, "ComposeStatus")
    assert body["image_status"]["status"] == "success"
    assert body["image_status"]["upload_status"] == {
        "status": "success", "type": "local", "options": {"download_path": f"{IB}/composes/{cid}/download"}}
    # the compose list shows it like a real one
    a = await ib.call("GET", "composes", org=ORG_A)
    assert cid in [c["id"] for c in a.json()["data"]]
    async with ib.session.get(f"{ib.base}{IB}/composes/{cid}/download",
                              headers={"X-Rh-Identity": identity(ORG_A)}) as r:
        data = await r.read()
        assert r.status == 200, data[:300]
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert int(r.headers["Content-Length"]) == len(data)   # the fake's placeholder may be empty
        disposition = r.headers["Content-Disposition"]
    files = [p for p in (ib.state / "results" / cid).iterdir() if p.is_file()]
    assert len(files) == 1 and files[0].read_bytes() == data
    assert disposition == f'attachment; filename="{cid}-{files[0].name}"'
    # its event stream: the final status once, then the stream ends
    events = await _events(ib, cid, ORG_A)
    assert [json.loads(e) for e in events] == [body]


async def test_failed_fake_carries_its_reason(ib: WebServer) -> None:
    cid = await _fake(ib, "1")
    a = await ib.call("GET", f"composes/{cid}", org=ORG_A)
    body = a.json()
    conforms(body, "ComposeStatus")
    status = body["image_status"]
    assert status["status"] == "failure"
    assert isinstance(status["error"]["id"], int) and status["error"]["reason"], status
    a = await ib.call("GET", f"composes/{cid}/download", org=ORG_A)
    assert a.status == 404 and "no image" in a.text, a.text
    events = await _events(ib, cid, ORG_A)
    assert len(events) == 1 and json.loads(events[0])["image_status"]["status"] == "failure"


async def test_another_organisation_gets_404(ib: WebServer) -> None:
    cid = await _fake(ib, "2")
    for route in ("logs", "download", "events"):
        a = await ib.call("GET", f"composes/{cid}/{route}", org=ORG_B)
        assert a.status == 404, (route, a.text)
        assert a.json()["errors"][0]["detail"].startswith(f"Compose entry {cid} not found"), a.text
    a = await ib.call("GET", "composes", org=ORG_B)
    assert cid not in [c["id"] for c in a.json()["data"]]


async def test_logs_of_a_compose(ib: WebServer) -> None:
    a = await ib.call("POST", "compose", compose_request(), org=ORG_A)   # queued: nothing builds here
    assert a.status == 201, a.text
    cid = a.json()["id"]
    a = await ib.call("GET", f"composes/{cid}/logs", org=ORG_A)
    assert a.status == 404 and "no build log" in a.text, a.text
    log = ib.state / "results" / cid / "logs" / "osbuild.log"   # as the executor writes it while it builds
    log.parent.mkdir(parents=True)
    log.write_text("Pipeline build: 1f2e\nBuild\n  root: <host>\n")
    a = await ib.call("GET", f"composes/{cid}/logs", org=ORG_A)
    assert a.status == 200 and a.text == log.read_text()
    assert a.headers["Content-Type"].startswith("text/plain")
    a = await ib.call("GET", f"composes/{cid}/download", org=ORG_A)
    assert a.status == 404, a.text
    # a pending compose's stream: its first status, then the client goes away (no error logged)
    events = await _events(ib, cid, ORG_A, first_only=True)
    assert json.loads(events[0])["image_status"]["status"] == "pending"


async def test_tar_only_with_the_local_upload_type(ib: WebServer) -> None:
    a = await ib.call("POST", "compose", compose_request("tar", "aws.s3"), org=ORG_A)
    assert a.status == 400, a.text
    assert a.json()["errors"][0]["detail"].startswith("image_requests[0].image_type: "), a.text
    a = await ib.call("POST", "compose", compose_request("tar", "local"), org=ORG_A)
    assert a.status == 201, a.text
    a = await ib.call("GET", "distributions/debian-12", org=ORG_A)
    assert "tar" in a.text


@pytest.mark.parametrize("image_type", ["aws", "gcp", "azure", "vsphere"])
async def test_local_upload_takes_any_image_type(ib: WebServer, image_type: str) -> None:
    a = await ib.call("POST", "compose", compose_request(image_type, "local"), org=ORG_A)
    assert a.status == 201, a.text


async def test_no_error_logged_for_streams(ib: WebServer) -> None:
    lines = [json.loads(x) for x in ib.log.read_text().splitlines() if x.startswith("{")]
    bad = [x for x in lines if x.get("level") in ("error", "critical")]
    assert bad == [] and "Traceback" not in ib.log.read_text(), bad[:3]


async def test_test_param_ignored_without_test_composes(tmp_path: Path, shared_state_dir: Path) -> None:
    async with web_server(tmp_path, mode="hosted", shared_state=shared_state_dir) as d:
        a = await d.call("POST", "compose?test=2", compose_request(), org=ORG_A)
        assert a.status == 201, a.text
        a = await d.call("GET", f"composes/{a.json()['id']}", org=ORG_A)
        assert a.json()["image_status"]["status"] == "pending", a.text


async def test_blueprint_compose_test_fakes(ib: WebServer) -> None:
    bp = {"name": "web-fake-bp", "description": "", "distribution": "debian-12", "customizations": {},
          "image_requests": compose_request("tar")["image_requests"]}
    a = await ib.call("POST", "blueprints", bp, org=ORG_A)
    assert a.status == 201, a.text
    bp_id = a.json()["id"]
    for test, want in (("2", "success"), ("1", "failure")):
        a = await ib.call("POST", f"blueprints/{bp_id}/compose?test={test}", {}, org=ORG_A)
        assert a.status == 201, a.text
        (cid,) = [c["id"] for c in a.json()]
        a = await ib.call("GET", f"composes/{cid}", org=ORG_A)
        assert a.json()["image_status"]["status"] == want, a.text
    a = await ib.call("GET", f"blueprints/{bp_id}/composes", org=ORG_A)
    assert a.status == 200 and a.json()["meta"]["count"] == 2, a.text
