"""Tenant isolation on the real daemon: organisation A's composes and blueprints are, for
organisation B, exactly what something that does not exist is: 404 on every route that takes an id,
absent from every list and every count. A keeps all of it (B's deletes deleted nothing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from .ib_daemon import ORG_A, ORG_B, IBDaemon, conforms, ib_daemon

pytestmark = pytest.mark.asyncio(loop_scope="module")
MISSING = "00000000-0000-4000-8000-000000000000"
IMAGE = {"architecture": "x86_64", "image_type": "guest-image", "upload_request": {"type": "aws.s3", "options": {}}}
COMPOSE = {"distribution": "debian-12", "image_requests": [IMAGE],
           "customizations": {"users": [{"name": "alice", "password": "s3cret-pw"}]}}


def blueprint(name: str) -> dict[str, Any]:
    return {"name": name, "description": "tenant test", "distribution": "debian-12", "image_requests": [IMAGE],
            "customizations": {"packages": ["tmux"], "users": [{"name": "bob", "password": "bp-s3cret"}]}}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    async with ib_daemon(tmp_path_factory.mktemp("tenants")) as ib:
        r = await ib.call("POST", "compose", COMPOSE, org=ORG_A)
        assert r.status == 201, r.text
        compose = r.json()["id"]
        r = await ib.call("POST", "blueprints", blueprint("shared-name"), org=ORG_A)
        assert r.status == 201, r.text
        bp = r.json()["id"]
        r = await ib.call("POST", f"blueprints/{bp}/compose", org=ORG_A)
        assert r.status == 201, r.text
        bp_compose = r.json()[0]["id"]
        # B's blueprint of the same name: names are unique per organisation only
        r = await ib.call("POST", "blueprints", blueprint("shared-name"), org=ORG_B)
        assert r.status == 201, r.text
        yield {"ib": ib, "compose": compose, "bp": bp, "bp_compose": bp_compose, "b_bp": r.json()["id"]}


ID_ROUTES = [
    ("GET", "composes/{compose}", None), ("GET", "composes/{compose}/metadata", None),
    ("DELETE", "composes/{compose}", None),
    ("GET", "composes/{bp_compose}", None), ("DELETE", "composes/{bp_compose}", None),
    ("GET", "blueprints/{bp}", None), ("PUT", "blueprints/{bp}", blueprint("taken-over")),
    ("GET", "blueprints/{bp}/export", None), ("POST", "blueprints/{bp}/compose", None),
    ("GET", "blueprints/{bp}/composes", None), ("GET", "blueprints/{bp}/composes?blueprint_version=-1", None),
    ("POST", "experimental/blueprints/{bp}/fixup", None), ("DELETE", "blueprints/{bp}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ID_ROUTES, ids=[f"{m} {p}" for m, p, _ in ID_ROUTES])
async def test_another_org_gets_404_for_every_id(world: dict[str, Any], method: str, path: str, body: Any) -> None:
    ib: IBDaemon = world["ib"]
    key = path.split("{")[1].split("}")[0]
    theirs = await ib.call(method, path.format(**world), body, org=ORG_B)
    missing = await ib.call(method, path.replace("{" + key + "}", MISSING).format(**world), body, org=ORG_B)
    assert theirs.status == 404, theirs.text
    assert missing.status == 404, missing.text
    # the same answer as for an id nobody has (the id itself aside)
    assert theirs.error()[1].replace(world[key], MISSING) == missing.error()[1]
    # and A still has it all
    assert (await ib.call("GET", f"composes/{world['compose']}", org=ORG_A)).status == 200
    assert (await ib.call("GET", f"blueprints/{world['bp']}", org=ORG_A)).json()["name"] == "shared-name"


async def test_lists_and_counts_exclude_the_other_org(world: dict[str, Any]) -> None:
    ib: IBDaemon = world["ib"]
    r = await ib.call("GET", "composes", org=ORG_B)
    conforms(r.json(), "ComposesResponse")
    assert (r.json()["meta"]["count"], r.json()["data"]) == (0, [])
    r = await ib.call("GET", "composes", org=ORG_A)
    assert {c["id"] for c in r.json()["data"]} == {world["compose"], world["bp_compose"]}
    assert r.json()["meta"]["count"] == 2
    for query in ("", "?search=shared", "?name=shared-name"):
        r = await ib.call("GET", f"blueprints{query}", org=ORG_B)
        conforms(r.json(), "BlueprintsResponse")
        assert [b["id"] for b in r.json()["data"]] == [world["b_bp"]], query
        assert r.json()["meta"]["count"] == 1, query
    r = await ib.call("GET", "blueprints?name=shared-name", org=ORG_A)
    assert [b["id"] for b in r.json()["data"]] == [world["bp"]]
    r = await ib.call("GET", f"blueprints/{world['b_bp']}/composes", org=ORG_B)
    assert (r.json()["meta"]["count"], r.json()["data"]) == (0, [])
    # an organisation with nothing at all
    r = await ib.call("GET", "blueprints", org="424242")
    assert (r.json()["meta"]["count"], r.json()["data"]) == (0, [])


async def test_passwords_are_never_read_back(world: dict[str, Any]) -> None:
    ib: IBDaemon = world["ib"]
    answers = [await ib.call("GET", f"composes/{world['compose']}", org=ORG_A),
               await ib.call("GET", "composes", org=ORG_A),
               await ib.call("GET", f"blueprints/{world['bp']}", org=ORG_A),
               await ib.call("GET", f"blueprints/{world['bp']}/export", org=ORG_A),
               await ib.call("GET", f"blueprints/{world['bp']}/composes", org=ORG_A)]
    for a in answers:
        assert a.status == 200, a.text
        assert "s3cret" not in a.text and '"password"' not in a.text, a.text
    status = answers[0].json()
    conforms(status, "ComposeStatus")
    assert status["request"]["customizations"]["users"] == [{"name": "alice", "hasPassword": True}]
    assert answers[2].json()["customizations"]["users"][0]["hasPassword"] is True
    # nor stored in the clear
    stored = ib.rows("SELECT request FROM ib_composes") + ib.rows("SELECT body FROM ib_blueprint_versions")
    assert stored and not any("s3cret" in str(row[0]) for row in stored)
    assert all("$6$" in str(row[0]) for row in stored)
