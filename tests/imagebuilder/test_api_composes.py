"""``GET /composes`` (paging, newest first, ``ignoreImageTypes``, the 14-day window), ``GET``/``DELETE
/composes/{id}``, ``/metadata`` of an unfinished compose, on a daemon that builds nothing; and on one
that does (the local executor), a compose whose depsolve fails: its image-builder status is
``failure`` with the root cause, unwrapped from the Cloud API's dependency error as upstream does."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from .ib_daemon import IBDaemon, conforms, ib_daemon

pytestmark = pytest.mark.asyncio(loop_scope="module")
MISSING = "00000000-0000-4000-8000-000000000000"


def compose(image_type: str = "guest-image", packages: list[str] | None = None) -> dict[str, Any]:
    return {"distribution": "debian-12", "image_name": f"img-{image_type}",
            "image_requests": [{"architecture": "x86_64", "image_type": image_type,
                                "upload_request": {"type": "aws.s3", "options": {}}}],
            "customizations": {"packages": packages or ["tmux"]}}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ib(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[IBDaemon]:
    async with ib_daemon(tmp_path_factory.mktemp("composes")) as d:
        yield d


async def start(ib: IBDaemon, body: dict[str, Any], org: str) -> str:
    r = await ib.call("POST", "compose", body, org=org)
    assert r.status == 201, r.text
    return str(r.json()["id"])


def insert_old(ib: IBDaemon, org: str, age_days: float) -> str:
    """A compose row written directly, ``age_days`` old (the API cannot make one in the past)."""
    cid = str(uuid.uuid4())
    with sqlite3.connect(ib.state / "osbuildd.db", timeout=30) as conn:
        conn.execute("INSERT INTO ib_composes (job_id, request, created_at, org_id, image_name, client_id)"
                     " VALUES (?, ?, ?, ?, ?, ?)",
                     (cid, json.dumps(compose()), time.time() - age_days * 86400, org, "old", "api"))
    return cid


async def test_list_paging_order_and_window(ib: IBDaemon) -> None:
    org = "700001"
    ids = []
    for kind in ("guest-image", "vsphere", "guest-image", "vsphere", "guest-image"):
        ids.append(await start(ib, compose(kind), org))
    old = insert_old(ib, org, 15)
    recent = insert_old(ib, org, 13)   # inside the window: listed, oldest
    r = await ib.call("GET", "composes", org=org)
    assert r.status == 200
    body = r.json()
    conforms(body, "ComposesResponse")
    listed = [c["id"] for c in body["data"]]
    assert listed == [*reversed(ids), recent]            # newest first; the 15-day-old one is not there
    assert old not in listed and body["meta"]["count"] == 6
    for c in body["data"]:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c["created_at"]), c
        assert c["client_id"] == "api" and "blueprint_id" not in c
    assert body["data"][0]["request"]["image_requests"][0]["image_type"] == "guest-image"
    assert body["data"][0]["image_name"] == "img-guest-image"
    assert body["links"] == {"first": "/api/image-builder/v1.0/composes?limit=100&offset=0",
                             "last": "/api/image-builder/v1.0/composes?limit=100&offset=0"}
    # a page is a slice of the same order
    assert (await ib.call("GET", "composes?limit=2&offset=1", org=org)).json()["data"] == body["data"][1:3]
    r = await ib.call("GET", "composes?limit=4", org=org)
    assert r.json()["links"] == {"first": "/api/image-builder/v1.0/composes?limit=4&offset=0",
                                 "last": "/api/image-builder/v1.0/composes?limit=4&offset=4"}
    assert len(r.json()["data"]) == 4 and r.json()["meta"]["count"] == 6
    r = await ib.call("GET", "composes?offset=6", org=org)
    assert (r.json()["data"], r.json()["meta"]["count"]) == ([], 6)
    r = await ib.call("GET", "composes?ignoreImageTypes=vsphere", org=org)
    assert [c["id"] for c in r.json()["data"]] == [ids[4], ids[2], ids[0], recent]
    assert r.json()["meta"]["count"] == 4
    r = await ib.call("GET", "composes?ignoreImageTypes=vsphere&ignoreImageTypes=guest-image", org=org)
    assert (r.json()["data"], r.json()["meta"]["count"]) == ([], 0)
    r = await ib.call("GET", "composes?ignoreImageTypes=not-a-type", org=org)
    assert r.status == 400 and 'parameter "ignoreImageTypes" in query' in r.error()[1]


async def test_status_delete_and_404(ib: IBDaemon) -> None:
    org = "700002"
    cid = await start(ib, compose(), org)
    r = await ib.call("GET", f"composes/{cid}", org=org)
    assert r.status == 200, r.text
    conforms(r.json(), "ComposeStatus")
    assert r.json()["image_status"]["status"] in ("pending", "building")
    assert r.json()["request"]["customizations"]["packages"] == ["tmux"]
    r = await ib.call("DELETE", f"composes/{cid}", org=org)
    assert (r.status, r.text) == (200, "")
    for path in (f"composes/{cid}", f"composes/{cid}/metadata"):
        r = await ib.call("GET", path, org=org)
        assert r.status == 404, (path, r.text)
        assert r.error()[1] == f"Compose entry {cid} not found compose entry not found"
    r = await ib.call("DELETE", f"composes/{MISSING}", org=org)
    assert (r.status, r.error()) == (404, ("404", "compose entry not found"))
    assert cid not in [c["id"] for c in (await ib.call("GET", "composes", org=org)).json()["data"]]
    # soft delete: the row stays (the quota counts it)
    assert ib.rows("SELECT deleted FROM ib_composes WHERE job_id = ?", (cid,)) == [(1,)]
    r = await ib.call("GET", "composes/not-a-uuid", org=org)
    assert r.status == 400 and "composeId" in r.error()[1]


async def test_metadata_of_an_unfinished_compose(ib: IBDaemon) -> None:
    # upstream passes the composer's answer through: no packages until the build is done
    org = "700003"
    cid = await start(ib, compose(), org)
    r = await ib.call("GET", f"composes/{cid}/metadata", org=org)
    assert r.status == 200, r.text
    conforms(r.json(), "ComposeMetadata")
    assert r.json() == {"packages": []}


@pytest.mark.parametrize("composer", ["local", "remote"])
async def test_depsolve_failure_status(tmp_path: Path, shared_state_dir: Path, composer: str) -> None:
    org = "700004"
    async with ib_daemon(tmp_path, builder="local_executor = true", shared_state=shared_state_dir,
                         composer=composer) as ib:
        cid = await start(ib, compose(packages=["osbuildd-no-such-package-xyz"]), org)
        status: dict[str, Any] = {}
        for _ in range(240):
            r = await ib.call("GET", f"composes/{cid}", org=org)
            assert r.status == 200, r.text
            status = r.json()
            if status["image_status"]["status"] in ("success", "failure"):
                break
            await asyncio.sleep(0.5)
        conforms(status, "ComposeStatus")
        image = status["image_status"]
        assert image["status"] == "failure", status
        err = image["error"]
        # the root cause, not the Cloud API's "dependency failed" wrapper (ids 5, 9, 26, 28)
        assert int(err["id"]) not in (5, 9, 26, 28), err
        assert "package not found" in err["reason"] and "osbuildd-no-such-package-xyz" in err["reason"], err
