"""The blueprint lifecycle on the real daemon, as image-builder answers it: create (201 ``{id}``, 422
for a taken name), list (``name``, ``search``, paging, links, count), get (latest, an older version,
an invalid or unknown one), update (a new version), delete (204, the name free again), export (no
ids, no passwords, metadata), compose from a blueprint and the composes of one. Composes stay queued
(``local_executor = false``): nothing is built."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from .ib_daemon import ORG_A, IBDaemon, conforms, ib_daemon

pytestmark = pytest.mark.asyncio(loop_scope="module")
MISSING = "00000000-0000-4000-8000-000000000000"
GUEST = {"architecture": "x86_64", "image_type": "guest-image", "upload_request": {"type": "aws.s3", "options": {}}}
VSPHERE = {"architecture": "x86_64", "image_type": "vsphere", "upload_request": {"type": "aws.s3", "options": {}}}


def blueprint(name: str, *, packages: list[str] | None = None, description: str = "lifecycle test",
              image_requests: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": name, "description": description, "distribution": "debian-12",
            "image_requests": image_requests or [GUEST],
            "customizations": {"packages": packages or ["tmux"],
                               "users": [{"name": "bob", "password": "bp-s3cret", "ssh_key": "ssh-ed25519 AAAA bob"}]}}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ib(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[IBDaemon]:
    async with ib_daemon(tmp_path_factory.mktemp("blueprints")) as d:
        yield d


async def create(ib: IBDaemon, body: dict[str, Any], org: str = ORG_A) -> str:
    r = await ib.call("POST", "blueprints", body, org=org)
    assert r.status == 201, r.text
    conforms(r.json(), "CreateBlueprintResponse")
    return str(r.json()["id"])


async def test_create_and_name_taken(ib: IBDaemon) -> None:
    bid = await create(ib, blueprint("taken"))
    r = await ib.call("POST", "blueprints", blueprint("taken", packages=["vim"]))
    assert r.status == 422
    assert r.error() == ("Name not unique", "A blueprint with the same name already exists.")
    # nothing was stored for the refused one
    assert ib.rows("SELECT COUNT(*) FROM ib_blueprints WHERE name = 'taken'") == [(1,)]
    r = await ib.call("POST", "blueprints", blueprint("   "))
    assert r.status == 422
    assert r.error() == ("Invalid blueprint name", "The blueprint name must contain at least two characters.")
    r = await ib.call("GET", f"blueprints/{bid}")
    assert r.status == 200
    conforms(r.json(), "BlueprintResponse")
    assert (r.json()["id"], r.json()["name"], r.json()["description"]) == (bid, "taken", "lifecycle test")
    assert r.json()["customizations"]["users"] == [{"name": "bob", "hasPassword": True,
                                                    "ssh_key": "ssh-ed25519 AAAA bob"}]


async def test_list_name_search_paging(ib: IBDaemon) -> None:
    org = "555001"
    ids = [await create(ib, blueprint(f"paging-{i}"), org=org) for i in range(5)]
    await create(ib, blueprint("other-thing"), org=org)
    r = await ib.call("GET", "blueprints", org=org)
    conforms(r.json(), "BlueprintsResponse")
    assert r.json()["meta"]["count"] == 6 and len(r.json()["data"]) == 6
    item = r.json()["data"][0]
    assert set(item) == {"id", "name", "description", "version", "last_modified_at"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", item["last_modified_at"])
    assert r.json()["links"] == {"first": "/api/image-builder/v1.0/blueprints?limit=100&offset=0",
                                 "last": "/api/image-builder/v1.0/blueprints?limit=100&offset=0"}
    r = await ib.call("GET", "blueprints?search=paging&limit=2&offset=2", org=org)
    body = r.json()
    assert body["meta"]["count"] == 5 and len(body["data"]) == 2
    assert all(b["name"].startswith("paging-") for b in body["data"])
    assert body["links"] == {"first": "/api/image-builder/v1.0/blueprints?limit=2&offset=0&search=paging",
                             "last": "/api/image-builder/v1.0/blueprints?limit=2&offset=4&search=paging"}
    pages = [b["id"] for off in (0, 2, 4)
             for b in (await ib.call("GET", f"blueprints?search=paging&limit=2&offset={off}", org=org)).json()["data"]]
    assert sorted(pages) == sorted(ids)
    r = await ib.call("GET", "blueprints?name=paging-3", org=org)
    assert [b["id"] for b in r.json()["data"]] == [ids[3]] and r.json()["meta"]["count"] == 1
    assert r.json()["links"]["first"] == "/api/image-builder/v1.0/blueprints?limit=100&name=paging-3&offset=0"
    # name is an exact match: a prefix finds nothing
    r = await ib.call("GET", "blueprints?name=paging", org=org)
    assert (r.json()["meta"]["count"], r.json()["data"]) == (0, [])
    r = await ib.call("GET", "blueprints?offset=100", org=org)
    assert (r.json()["meta"]["count"], r.json()["data"]) == (6, [])


@pytest.mark.parametrize(("query", "detail"), [
    ("limit=0", 'parameter "limit" in query has an error: number must be at least 1'),
    ("limit=-5", 'parameter "limit" in query has an error: number must be at least 1'),
    ("limit=101", 'parameter "limit" in query has an error: number must be at most 100'),
    ("offset=-1", 'parameter "offset" in query has an error: number must be at least 0'),
    ("offset=abc", 'parameter "offset" in query has an error: value abc: an invalid integer: invalid syntax'),
])
async def test_list_bad_paging(ib: IBDaemon, query: str, detail: str) -> None:
    # upstream's request validator refuses what the spec's bounds exclude (limit 1..100, offset >= 0)
    for path in ("blueprints", f"blueprints/{MISSING}/composes", "composes"):
        r = await ib.call("GET", f"{path}?{query}")
        assert r.status == 400, (path, r.text)
        assert r.error() == ("400", detail), path


async def test_versions_get_and_update(ib: IBDaemon) -> None:
    bid = await create(ib, blueprint("versioned", packages=["tmux"]))
    r = await ib.call("PUT", f"blueprints/{bid}", {**blueprint("versioned-2", packages=["vim"],
                                                               description="second"),
                                                  "customizations": {"packages": ["vim"],
                                                                     "users": [{"name": "bob"}]}})
    assert r.status == 200, r.text
    assert r.json() == {"id": bid}
    # the list shows the blueprint once, at its new version, under its new name
    r = await ib.call("GET", "blueprints?search=versioned")
    assert [(b["id"], b["name"], b["version"], b["description"]) for b in r.json()["data"]] == \
        [(bid, "versioned-2", 2, "second")]
    latest = (await ib.call("GET", f"blueprints/{bid}")).json()
    assert latest == (await ib.call("GET", f"blueprints/{bid}?version=-1")).json()
    assert latest["customizations"]["packages"] == ["vim"] and latest["name"] == "versioned-2"
    # a user sent without password or key keeps the stored ones (upstream MergeForUpdate)
    assert latest["customizations"]["users"] == [{"name": "bob", "hasPassword": True,
                                                  "ssh_key": "ssh-ed25519 AAAA bob"}]
    older = (await ib.call("GET", f"blueprints/{bid}?version=1")).json()
    conforms(older, "BlueprintResponse")
    assert older["customizations"]["packages"] == ["tmux"]
    assert ib.rows("SELECT version FROM ib_blueprint_versions WHERE blueprint_id = ? ORDER BY version",
                   (bid,)) == [(1,), (2,)]
    for bad in (0, -2):
        r = await ib.call("GET", f"blueprints/{bid}?version={bad}")
        assert (r.status, r.error()) == (400, ("400", "Invalid version number")), bad
    r = await ib.call("GET", f"blueprints/{bid}?version=3")
    assert (r.status, r.error()) == (404, ("404", "blueprint not found"))
    r = await ib.call("GET", f"blueprints/{bid}?version=x")
    assert r.status == 400
    r = await ib.call("PUT", f"blueprints/{MISSING}", blueprint("nobody"))
    assert (r.status, r.error()) == (404, ("404", "blueprint not found"))
    # a new user without a name is refused (upstream's 422 "Invalid user")
    bad_user = {**blueprint("versioned-2"), "customizations": {"users": [{"name": " ", "password": "x"}]}}
    r = await ib.call("PUT", f"blueprints/{bid}", bad_user)
    assert (r.status, r.error()) == (422, ("Invalid user", "missing user name"))


async def test_delete_frees_the_name(ib: IBDaemon) -> None:
    bid = await create(ib, blueprint("deleted-one"))
    r = await ib.call("DELETE", f"blueprints/{bid}")
    assert (r.status, r.text) == (204, "")
    r = await ib.call("DELETE", f"blueprints/{bid}")
    assert (r.status, r.error()) == (404, ("404", "Not Found"))   # upstream's bare 404
    for method, path in (("GET", f"blueprints/{bid}"), ("DELETE", f"blueprints/{bid}"),
                         ("GET", f"blueprints/{bid}/export"), ("POST", f"blueprints/{bid}/compose")):
        assert (await ib.call(method, path)).status == 404, (method, path)
    r = await ib.call("GET", "blueprints?name=deleted-one")
    assert r.json()["meta"]["count"] == 0
    again = await create(ib, blueprint("deleted-one"))
    assert again != bid


async def test_export(ib: IBDaemon) -> None:
    body = blueprint("exported")
    body["customizations"]["cacerts"] = {"pem_certs": ["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"]}
    bid = await create(ib, body)
    r = await ib.call("GET", f"blueprints/{bid}/export")
    assert r.status == 200, r.text
    out = r.json()
    conforms(out, "BlueprintExportResponse")
    assert "id" not in out and "image_requests" not in out and "lint" not in out
    assert (out["name"], out["description"], out["distribution"]) == ("exported", "lifecycle test", "debian-12")
    assert out["customizations"]["packages"] == ["tmux"]
    assert out["customizations"]["users"] == [{"name": "bob", "hasPassword": True, "ssh_key": "ssh-ed25519 AAAA bob"}]
    assert "cacerts" not in out["customizations"]
    assert "bp-s3cret" not in r.text and "$6$" not in r.text
    meta = out["metadata"]
    assert meta["parent_id"] == bid and meta["is_on_prem"] is False
    # Go's time.Time.String() of a UTC time, as upstream writes it
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC", meta["exported_at"]), meta


async def test_compose_from_blueprint_and_its_composes(ib: IBDaemon) -> None:
    org = "555002"
    bid = await create(ib, blueprint("composed", image_requests=[GUEST, VSPHERE]), org=org)
    r = await ib.call("POST", f"blueprints/{bid}/compose", {"image_types": ["vsphere"]}, org=org)
    assert r.status == 201, r.text
    assert len(r.json()) == 1
    conforms(r.json()[0], "ComposeResponse")
    v1_vsphere = r.json()[0]["id"]
    # a type the blueprint lacks composes nothing (upstream skips it)
    r = await ib.call("POST", f"blueprints/{bid}/compose", {"image_types": ["wsl"]}, org=org)
    assert (r.status, r.json()) == (201, [])
    r = await ib.call("PUT", f"blueprints/{bid}", blueprint("composed", packages=["vim"],
                                                           image_requests=[GUEST, VSPHERE]), org=org)
    assert r.status == 200, r.text
    r = await ib.call("POST", f"blueprints/{bid}/compose", org=org)   # no body: every image request
    assert r.status == 201, r.text
    v2 = [c["id"] for c in r.json()]
    assert len(v2) == 2

    r = await ib.call("GET", f"blueprints/{bid}/composes", org=org)
    conforms(r.json(), "ComposesResponse")
    assert r.json()["meta"]["count"] == 3
    assert [c["id"] for c in r.json()["data"]] == [*reversed(v2), v1_vsphere]   # newest first
    assert r.json()["links"]["first"] == \
        f"/api/image-builder/v1.0/composes?blueprint_id={bid}&limit=100&offset=0"
    for version, want in ((1, [v1_vsphere]), (2, list(reversed(v2))), (-1, list(reversed(v2))), (7, [])):
        r = await ib.call("GET", f"blueprints/{bid}/composes?blueprint_version={version}", org=org)
        assert [c["id"] for c in r.json()["data"]] == want, version
        assert r.json()["meta"]["count"] == len(want), version
        shown = 2 if version == -1 else version
        assert r.json()["links"]["last"] == (f"/api/image-builder/v1.0/composes?blueprint_id={bid}"
                                             f"&blueprint_version={shown}&limit=100&offset=0"), version
    r = await ib.call("GET", f"blueprints/{bid}/composes?ignoreImageTypes=vsphere&limit=1", org=org)
    assert r.json()["meta"]["count"] == 1 and len(r.json()["data"]) == 1
    assert r.json()["data"][0]["request"]["image_requests"][0]["image_type"] == "guest-image"
    r = await ib.call("GET", f"blueprints/{MISSING}/composes", org=org)
    assert (r.status, r.error()) == (404, ("404", "blueprint not found"))

    r = await ib.call("GET", "composes", org=org)
    conforms(r.json(), "ComposesResponse")
    items = {c["id"]: c for c in r.json()["data"]}
    assert set(items) == {v1_vsphere, *v2}
    assert (items[v1_vsphere]["blueprint_id"], items[v1_vsphere]["blueprint_version"]) == (bid, 1)
    assert all((items[i]["blueprint_id"], items[i]["blueprint_version"]) == (bid, 2) for i in v2)
    assert items[v1_vsphere]["image_name"] == "composed" and items[v1_vsphere]["client_id"] == "api"
    assert "bp-s3cret" not in r.text
