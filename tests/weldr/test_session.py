"""A composer-cli session against the real daemon on its unix socket: the host distro (Debian), the real
blueprint store, and depsolve/freeze through apt against the Debian mirror."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .realdaemon import real_daemon, share_cache

BLUEPRINT = """name = "session"
description = "composer-cli session"
version = "0.1.0"

[[packages]]
name = "tmux"
version = "*"

[customizations]
hostname = "session-host"

[[customizations.user]]
name = "admin"
password = "plain-secret"
groups = ["sudo"]
"""


@pytest.fixture
async def daemon(tmp_path: Path, shared_state_dir: Path):
    share_cache(tmp_path / "state", shared_state_dir)
    async with real_daemon(tmp_path / "state", builder={"local_executor": False}) as client:
        yield client


async def test_composer_cli_session(daemon) -> None:
    c = daemon
    status = (await c.get("/api/status")).json()
    assert status["api"] == "1" and status["backend"] == "osbuild-composer"

    # blueprints push (TOML, as composer-cli sends it)
    r = await c.request("POST", "/api/v1/blueprints/new", BLUEPRINT, "text/x-toml")
    assert r.status == 200, r.text
    # blueprints list: composer-cli asks limit=0 first, then the total
    assert (await c.get("/api/v1/blueprints/list?limit=0")).json() == {
        "total": 1, "offset": 0, "limit": 0, "blueprints": []}
    assert (await c.get("/api/v1/blueprints/list?limit=1")).json()["blueprints"] == ["session"]

    # blueprints show: TOML with the password crypted, never the plain text
    shown = (await c.get("/api/v1/blueprints/info/session?format=toml")).text
    assert 'hostname = "session-host"' in shown and "plain-secret" not in shown
    assert re.search(r'password = "\$6\$', shown)

    # push again unchanged -> version bump; changes newest first
    assert (await c.request("POST", "/api/v1/blueprints/new", BLUEPRINT, "text/x-toml")).status == 200
    info = (await c.get("/api/v1/blueprints/info/session")).json()
    assert info["blueprints"][0]["version"] == "0.1.1" and info["changes"] == [{"changed": False, "name": "session"}]
    changes = (await c.get("/api/v1/blueprints/changes/session")).json()["blueprints"][0]
    assert changes["total"] == 2
    first, second = changes["changes"][1]["commit"], changes["changes"][0]["commit"]
    assert re.fullmatch(r"[0-9a-f]{40}", first) and first != second

    # tag -> revision 1 on the newest change
    assert (await c.request("POST", "/api/v1/blueprints/tag/session")).status == 200
    changes = (await c.get("/api/v1/blueprints/changes/session")).json()["blueprints"][0]
    assert changes["changes"][0]["revision"] == 1 and changes["changes"][1]["revision"] is None

    # undo to the first commit: a new change with upstream's message
    assert (await c.request("POST", f"/api/v1/blueprints/undo/session/{first}")).status == 200
    changes = (await c.get("/api/v1/blueprints/changes/session")).json()["blueprints"][0]
    assert changes["total"] == 3 and changes["changes"][0]["message"] == f"session.toml reverted to commit {first}"
    # the blueprint as stored at a commit (v1 only)
    at = (await c.get(f"/api/v1/blueprints/change/session/{first}")).json()
    assert at["name"] == "session" and at["version"] == "0.1.0"
    assert (await c.get(f"/api/v0/blueprints/change/session/{first}")).status == 404

    # workspace: info shows it as changed, diff shows the package change
    ws = BLUEPRINT.replace('name = "tmux"', 'name = "less"')
    assert (await c.request("POST", "/api/v1/blueprints/workspace", ws, "text/x-toml")).status == 200
    info = (await c.get("/api/v1/blueprints/info/session")).json()
    assert info["changes"] == [{"changed": True, "name": "session"}]
    diff = (await c.get("/api/v1/blueprints/diff/session/NEWEST/WORKSPACE")).json()["diff"]
    assert {"new": {"Package": {"name": "less", "version": "*"}}, "old": None} in diff
    assert {"new": None, "old": {"Package": {"name": "tmux", "version": "*"}}} in diff
    assert (await c.delete("/api/v1/blueprints/workspace/session")).status == 200
    assert (await c.get("/api/v1/blueprints/info/session")).json()["changes"][0]["changed"] is False

    # depsolve: apt against the Debian mirror
    dep = (await c.get("/api/v1/blueprints/depsolve/session")).json()
    assert dep["errors"] == [], dep["errors"]
    names = {p["name"]: p for p in dep["blueprints"][0]["dependencies"]}
    assert "tmux" in names and "libevent-core-2.1-7" in names
    assert names["tmux"]["remote_location"].startswith("http") and names["tmux"]["checksum"].startswith("sha256:")

    # freeze: tmux pinned to the exact version apt chose
    frozen = (await c.get("/api/v1/blueprints/freeze/session")).json()
    assert frozen["errors"] == []
    pkgs = frozen["blueprints"][0]["blueprint"]["packages"]
    tmux = names["tmux"]
    evra = f"{tmux['version']}-{tmux['release']}.{tmux['arch']}"   # upstream's frozen form
    expected = f"{tmux['epoch']}:{evra}" if tmux["epoch"] else evra
    assert pkgs == [{"name": "tmux", "version": expected}]
    frozen_toml = (await c.get("/api/v1/blueprints/freeze/session?format=toml")).text
    assert f'version = "{expected}"' in frozen_toml

    # projects: the host distro's packages
    info = (await c.get("/api/v1/projects/info/tmux")).json()
    assert info["projects"][0]["name"] == "tmux" and info["projects"][0]["builds"]
    assert (await c.get("/api/v1/projects/info/no-such-package-xyz")).json()["errors"][0]["id"] == "UnknownProject"

    # compose types and distros of the Debian host, system sources read-only
    types = [t["name"] for t in (await c.get("/api/v1/compose/types")).json()["types"]]
    assert "qcow2" in types and types == sorted(types)
    assert "debian-12" in (await c.get("/api/v1/distros/list")).json()["distros"]
    sources = (await c.get("/api/v1/projects/source/list")).json()["sources"]
    assert sources
    for s in sources:
        assert (await c.get(f"/api/v1/projects/source/info/{s}")).json()["sources"][s]["system"] is True
    r = await c.delete(f"/api/v1/projects/source/delete/{sources[0]}")
    assert r.status == 400 and r.json()["errors"][0]["id"] == "SystemSource"

    # delete: gone from the list, the history stays
    assert (await c.delete("/api/v1/blueprints/delete/session")).status == 200
    assert (await c.get("/api/v1/blueprints/list")).json()["total"] == 0
    assert (await c.get("/api/v1/blueprints/changes/session")).json()["blueprints"][0]["total"] == 3
    r = await c.delete("/api/v1/blueprints/delete/session")
    assert r.status == 400 and r.json()["errors"] == [{"id": "BlueprintsError", "msg": "Unknown blueprint: session"}]


async def test_max_body_size_comes_from_config(tmp_path: Path) -> None:
    async with real_daemon(tmp_path / "state", weldr={"max_body_size": 2048},
                           builder={"local_executor": False}) as c:
        small = '{"name": "fits", "description": "' + "x" * 1000 + '"}'
        assert (await c.request("POST", "/api/v1/blueprints/new", small, "application/json")).status == 200
        big = '{"name": "too-big", "description": "' + "x" * 4000 + '"}'
        r = await c.request("POST", "/api/v1/blueprints/new", big, "application/json")
        assert r.status == 413 and "2048" in r.json()["errors"][0]["msg"]
        assert (await c.get("/api/v1/blueprints/list")).json()["blueprints"] == ["fits"]
