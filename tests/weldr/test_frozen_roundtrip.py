"""Over the real socket, against the Debian 12 mirror: Debian versions in upstream's fields (no
``tmux-3.3a-3-.amd64``), ``blueprints freeze`` -> push the frozen copy -> depsolve gives exactly
the frozen versions, and ``projects info`` carries build time, license and source."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from .realdaemon import real_daemon, share_cache

BLUEPRINT = """name = "roundtrip"
description = "frozen versions build again"
version = "0.1.0"
distro = "debian-12"

[[packages]]
name = "tmux"
version = "*"

[[packages]]
name = "bsdutils"

[[packages]]
name = "adduser"

[[packages]]
name = "libc6"
version = "2.36*"
"""

BAD = ("-.", "--")


def nevra_python(p: dict[str, Any]) -> str:
    """How lorax's composer-cli prints a package."""
    evr = f"{p['version']}-{p['release']}"
    return f"{p['name']}-{p['epoch']}:{evr}.{p['arch']}" if p["epoch"] else f"{p['name']}-{evr}.{p['arch']}"


def nevra_go(p: dict[str, Any]) -> str:
    """How weldr-client's composer-cli prints a depsolved package."""
    evr = f"{p['version']}-{p['release']}.{p['arch']}"
    return f"{p['name']}-{p['epoch']}:{evr}" if p["epoch"] else f"{p['name']}-{evr}"


def build_line(b: dict[str, Any]) -> str:
    """weldr-client's projects info build line."""
    vr = f"{b['source']['version']}-{b['release']}.{b['arch']}"
    vr = f"{b['epoch']}:{vr}" if b["epoch"] else vr
    return f"{vr} at {b['build_time']} for {b['changelog']}"


def evra(p: dict[str, Any]) -> str:
    vra = f"{p['version']}-{p['release']}.{p['arch']}"
    return f"{p['epoch']}:{vra}" if p["epoch"] else vra


def assert_reads_right(pkgs: list[dict[str, Any]]) -> None:
    assert pkgs
    for p in pkgs:
        for text in (nevra_python(p), nevra_go(p)):
            assert not any(b in text for b in BAD), text
        assert p["release"], p   # Debian revision, "0" for a native package


@pytest.fixture
async def daemon(tmp_path: Path, shared_state_dir: Path):
    share_cache(tmp_path / "state", shared_state_dir)
    async with real_daemon(tmp_path / "state", builder={"local_executor": False}) as client:
        yield client


async def _deps(c: Any, name: str) -> dict[str, dict[str, Any]]:
    r = (await c.get(f"/api/v1/blueprints/depsolve/{name}")).json()
    assert r["errors"] == [], r["errors"]
    deps = r["blueprints"][0]["dependencies"]
    assert_reads_right(deps)
    return {p["name"]: p for p in deps}


async def test_freeze_push_depsolve_gives_the_frozen_versions(daemon: Any) -> None:
    c = daemon
    assert (await c.request("POST", "/api/v1/blueprints/new", BLUEPRINT, "text/x-toml")).status == 200
    first = await _deps(c, "roundtrip")
    # upstream's fields: tmux 3.3a-3 -> version 3.3a, release 3; bsdutils keeps its epoch; adduser is native
    assert first["tmux"]["version"] == "3.3a" and re.fullmatch(r"3(\+deb12u\d+)?", first["tmux"]["release"])
    assert first["bsdutils"]["epoch"] == 1 and "-" not in first["bsdutils"]["version"]
    assert first["adduser"]["release"] == "0" and "-" not in first["adduser"]["version"]

    frozen_toml = (await c.get("/api/v1/blueprints/freeze/roundtrip?format=toml")).text
    frozen = tomllib.loads(frozen_toml)
    pins = {p["name"]: p["version"] for p in frozen["packages"]}
    assert set(pins) >= {"tmux", "bsdutils", "adduser", "libc6"}
    for name, version in pins.items():
        assert version == evra(first[name]), name        # [epoch:]version-release.arch, as upstream
        assert not any(b in version for b in BAD)
    # (a Debian 12 point release may add "+deb12uN"; the shape stays)
    assert re.fullmatch(r"3\.3a-3(\+deb12u\d+)?\.amd64", pins["tmux"])
    assert re.fullmatch(r"1:2\.38\.1-5\+deb12u\d+\.amd64", pins["bsdutils"])
    assert re.fullmatch(r"3\.134[^-]*-0\.all", pins["adduser"])

    # composer-cli blueprints push of the frozen TOML, as a copy under another name
    copy = re.sub(r'^name = "roundtrip"', 'name = "roundtrip-frozen"', frozen_toml, count=1, flags=re.M)
    r = await c.request("POST", "/api/v1/blueprints/new", copy, "text/x-toml")
    assert r.status == 200, r.text
    again = await _deps(c, "roundtrip-frozen")
    for name, version in pins.items():
        assert evra(again[name]) == version, name
    # every package, not only the pinned ones, comes out the same
    assert {n: evra(p) for n, p in again.items()} == {n: evra(p) for n, p in first.items()}

    # freezing the frozen copy changes nothing
    refrozen = (await c.get("/api/v1/blueprints/freeze/roundtrip-frozen")).json()["blueprints"][0]["blueprint"]
    assert {p["name"]: p["version"] for p in refrozen["packages"]} == pins

    # a bare Debian version (what `apt-cache policy` shows) pins too
    debian_version = pins["tmux"].removesuffix(".amd64")
    bare = BLUEPRINT.replace('name = "roundtrip"', 'name = "roundtrip-bare"').replace(
        'name = "tmux"\nversion = "*"', f'name = "tmux"\nversion = "{debian_version}"')
    assert (await c.request("POST", "/api/v1/blueprints/new", bare, "text/x-toml")).status == 200
    assert evra((await _deps(c, "roundtrip-bare"))["tmux"]) == pins["tmux"]

    # a frozen version that is not there is named, not silently replaced
    gone = copy.replace('name = "roundtrip-frozen"', 'name = "roundtrip-gone"').replace(
        pins["tmux"], "0.1-1.amd64")
    assert (await c.request("POST", "/api/v1/blueprints/new", gone, "text/x-toml")).status == 200
    errors = (await c.get("/api/v1/blueprints/depsolve/roundtrip-gone")).json()["errors"]
    assert errors and "tmux" in errors[0]["msg"] and "0.1-1" in errors[0]["msg"]


async def test_projects_and_modules_read_right(daemon: Any) -> None:
    c = daemon
    deps = (await c.get("/api/v1/projects/depsolve/tmux,adduser")).json()["projects"]
    assert_reads_right(deps)
    assert {"tmux", "adduser", "bsdutils"} <= {p["name"] for p in deps}

    info = (await c.get("/api/v1/projects/info/tmux,adduser,bsdutils")).json()["projects"]
    by_name = {p["name"]: p for p in info}
    for name, p in by_name.items():
        b = p["builds"][0]
        line = build_line(b)
        assert not any(bad in line for bad in BAD), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b["build_time"]), (name, b)
        assert b["source"]["license"], (name, b)
        assert b["source"]["source_ref"] and b["source"]["source_ref"] != "SOURCE_REF", (name, b)
    tmux = by_name["tmux"]["builds"][0]
    assert (tmux["source"]["version"], tmux["epoch"]) == ("3.3a", 0)
    if tmux["release"] == "3":
        assert tmux["build_time"] == "2022-10-31T16:55:13Z"     # the .deb's timestamp (its changelog date)
    assert "ISC" in tmux["source"]["license"]
    assert tmux["source"]["source_ref"] == f"tmux=3.3a-{tmux['release']}"
    assert by_name["bsdutils"]["builds"][0]["source"]["source_ref"].startswith("util-linux=2.38.1-")
    assert by_name["adduser"]["builds"][0]["release"] == "0"

    modules = (await c.get("/api/v1/modules/info/tmux")).json()["modules"]
    assert_reads_right(modules[0]["dependencies"])
    assert modules[0]["builds"][0]["source"]["license"]       # cached from projects/info

    listed = (await c.get("/api/v1/projects/list?limit=100000")).json()["projects"]
    assert len(listed) > 1000
    for p in listed:
        line = build_line(p["builds"][0])
        assert " at " in line and "--" not in line.split(" at ")[0] and "-." not in line, (p["name"], line)
    # the list shows what projects/info read already
    assert next(p for p in listed if p["name"] == "tmux")["builds"][0]["source"]["license"]


async def test_compose_info_reads_right(daemon: Any) -> None:
    """compose info of a ``?test=2`` compose (depsolved at start, as upstream) of a frozen blueprint:
    the frozen versions, in upstream's fields."""
    c = daemon
    assert (await c.request("POST", "/api/v1/blueprints/new", BLUEPRINT, "text/x-toml")).status == 200
    frozen_toml = (await c.get("/api/v1/blueprints/freeze/roundtrip?format=toml")).text
    pins = {p["name"]: p["version"] for p in tomllib.loads(frozen_toml)["packages"]}
    copy = re.sub(r'^name = "roundtrip"', 'name = "roundtrip-compose"', frozen_toml, count=1, flags=re.M)
    assert (await c.request("POST", "/api/v1/blueprints/new", copy, "text/x-toml")).status == 200
    r = await c.post_json("/api/v1/compose?test=2", {"blueprint_name": "roundtrip-compose", "compose_type": "tar",
                                                      "branch": "master"})
    assert r.status == 200, r.text
    info = (await c.get(f"/api/v1/compose/info/{r.json()['build_id']}")).json()
    packages = {p["name"]: p for p in info["deps"]["packages"]}
    assert_reads_right(list(packages.values()))
    assert {n: evra(packages[n]) for n in pins} == pins
