"""Bad input never crashes a handler, odd upstream behaviours hold, and 50 concurrent clients lose nothing."""

from __future__ import annotations

import asyncio
import json

from osbuildd.api.weldr.util import WELDR

from .conftest import fixture_daemon

ERR_CT = "application/json; charset=utf-8"


async def test_routing_oddities(base_daemon) -> None:
    c, _ = base_daemon
    r = await c.delete("/api/v1/blueprints/list")  # known path, wrong method
    assert r.status == 405 and r.body == b"" and r.headers["Content-Type"] == ERR_CT
    for path in ("/api/v1/nope", "/api/v2/blueprints/list", "/api/v1/blueprints/list/", "/api/vx/blueprints/list",
                 "/api/v0/distros/list", "/api/v0/upload/providers", "/api/v1/status"):
        r = await c.get(path)
        assert r.status == 404, path
        assert r.json() == {"status": False, "errors": [{"code": 404, "id": "HTTPError", "msg": "Not Found"}]}, path
    r = await c.get("/api/v1/upload/providers")
    assert r.status == 501 and r.body == b""
    r = await c.get("/api/v1/blueprints/list?limit=x")
    assert r.status == 400 and r.json()["errors"][0]["id"] == "BadLimitOrOffset"


async def test_oversized_body_is_refused_and_nothing_stored() -> None:
    async with fixture_daemon("BaseFixture", max_body_size=4096) as (c, _):
        big = json.dumps({"name": "big", "description": "x" * 10000})
        r = await c.request("POST", "/api/v1/blueprints/new", big, "application/json")
        assert r.status == 413 and r.json()["status"] is False and r.json()["errors"][0]["id"] == "HTTPError"
        assert "4096" in r.json()["errors"][0]["msg"]
        assert (await c.get("/api/v1/blueprints/list")).json()["total"] == 0


async def test_broken_bodies(base_daemon) -> None:
    c, _ = base_daemon
    cases = [
        ("/api/v1/blueprints/new", "name = ", "text/x-toml", "BlueprintsError"),
        ("/api/v1/blueprints/new", "[1, 2]", "application/json", "BlueprintsError"),
        ("/api/v1/blueprints/new", '{"name": "x", "packages": "nope"}', "application/json", "BlueprintsError"),
        ("/api/v1/blueprints/new", '{"name": "x", "version": "one"}', "application/json", "BlueprintsError"),
        ("/api/v1/blueprints/new", "\xff\xfe", "application/json", "BlueprintsError"),
        ("/api/v1/blueprints/new", '{"name": "a/b"}', "application/json", "InvalidChars"),
        ("/api/v1/blueprints/new", '{"name": "a\\u0000b"}', "application/json", "InvalidChars"),
        ("/api/v1/blueprints/new", '{"name": "../etc"}', "application/json", "InvalidChars"),
        ("/api/v1/blueprints/workspace", "x", "text/plain", "BlueprintsError"),
        ("/api/v1/projects/source/new", "[[[", "text/x-toml", "ProjectsError"),
        ("/api/v1/projects/source/new", '{"id": "a", "name": "a", "url": "u", "type": "bogus"}', "application/json",
         "ProjectsError"),
        ("/api/v1/projects/source/new", '{"id": "a", "name": "a", "url": "u", "type": "yum-baseurl", "x": 1}',
         "application/json", "ProjectsError"),
        ("/api/v1/projects/source/new", '{"id": "../a", "name": "a", "url": "u", "type": "yum-baseurl"}',
         "application/json", "ProjectsError"),
        ("/api/v1/compose", '{"blueprint_name": "test"', "application/json", "HTTPError"),
        ("/api/v1/compose", '{"blueprint_name": "test", "compose_type": "test_type"}', "text/plain", "MissingPost"),
        ("/api/v1/compose", '{"blueprint_name": "test", "compose_type": "test_type", "upload": {"provider": "ftp"}}',
         "application/json", "HTTPError"),
    ]
    for path, body, ctype, err in cases:
        r = await c.request("POST", path, body, ctype)
        assert 400 <= r.status < 500, (path, body, r.status, r.text)
        assert r.headers["Content-Type"] == ERR_CT
        assert r.json()["status"] is False and r.json()["errors"][0]["id"] == err, (path, body, r.text)
    # nothing was stored by any of them
    assert (await c.get("/api/v1/blueprints/list")).json()["blueprints"] == ["test"]
    assert (await c.get("/api/v1/projects/source/list")).json()["sources"] == ["test-id"]
    # unknown blueprint keys are ignored as upstream's decoder does
    r = await c.request("POST", "/api/v1/blueprints/new", '{"name": "extra", "colour": "red"}', "application/json")
    assert r.status == 200
    assert "colour" not in (await c.get("/api/v1/blueprints/info/extra")).json()["blueprints"][0]


async def test_bad_paths_and_uuids(base_daemon) -> None:
    c, _ = base_daemon
    for path in ("/api/v1/blueprints/info/a%2Fb", "/api/v1/blueprints/info/a%00b", "/api/v1/blueprints/changes/a%20b",
                 "/api/v1/compose/status/*?blueprint=a%2Fb"):
        r = await c.get(path)
        assert r.status == 400 and r.json()["errors"] == [{"id": "InvalidChars", "msg": "Invalid characters in API path"}]
    for path in ("/api/v1/compose/image/nope", "/api/v1/compose/info/%00", "/api/v1/compose/results/..%2Fetc",
                 "/api/v1/compose/log/00000000-0000-0000-0000-00000000000z"):
        r = await c.get(path)
        assert r.status == 400 and r.json()["errors"][0]["id"] == "UnknownUUID", (path, r.text)
    r = await c.get("/api/v1/compose/image/30000000-0000-0000-0000-000000000000")
    assert r.status == 400 and r.json()["errors"][0]["id"] == "BuildInWrongState"
    r = await c.delete("/api/v1/compose/cancel/30000000-0000-0000-0000-000000000002")
    assert r.status == 400 and r.json()["errors"][0]["id"] == "BuildInWrongState"
    r = await c.delete("/api/v1/compose/cancel/30000000-0000-0000-0000-000000000000")
    assert r.json() == {"uuid": "30000000-0000-0000-0000-000000000000", "status": True}
    status = (await c.get("/api/v1/compose/status/30000000-0000-0000-0000-000000000000")).json()
    assert status["uuids"][0]["queue_status"] == "FAILED"


async def test_upload_secrets_never_returned(base_daemon) -> None:
    c, _ = base_daemon
    for path in ("/api/v1/compose/queue", "/api/v1/compose/finished", "/api/v1/compose/failed",
                 "/api/v1/compose/status/*", "/api/v1/compose/info/30000000-0000-0000-0000-000000000002"):
        body = (await c.get(path)).text
        assert "frankfurt" in body, path  # the upload is listed ...
        assert "secretkey" not in body and "accesskey" not in body, path  # ... without its keys


async def test_fifty_concurrent_clients_lose_no_change() -> None:
    async with fixture_daemon("BaseFixture") as (c, _):
        async def client(i: int) -> None:
            for k in range(4):
                r = await c.post_json("/api/v1/blueprints/new", {"name": f"bp-{i}", "packages": [{"name": f"p{k}"}]})
                assert r.status == 200, r.text
                r = await c.post_json("/api/v1/blueprints/new", {"name": "shared", "description": f"{i}-{k}"})
                assert r.status == 200, r.text
                info = (await c.get(f"/api/v1/blueprints/info/bp-{i},shared")).json()
                assert info["errors"] == [] and info["blueprints"][0]["packages"] == [{"name": f"p{k}"}]
                assert (await c.get("/api/v1/blueprints/list?limit=100")).status == 200

        await asyncio.gather(*(client(i) for i in range(50)))
        listed = (await c.get("/api/v1/blueprints/list?limit=1000")).json()
        assert listed["total"] == 51  # bp-0..49 and shared
        shared = (await c.get("/api/v1/blueprints/changes/shared")).json()["blueprints"][0]
        assert shared["total"] == 200
        assert len({ch["commit"] for ch in shared["changes"]}) == 200
        # upstream's rule: Initialize makes "" 0.0.0, which equals the committed 0.0.0 -> bumped to 0.0.1,
        # then differs from 0.0.1 -> kept; so an even number of pushes ends at 0.0.1 (and no push was lost
        # between the read of the old version and the write)
        assert (await c.get("/api/v1/blueprints/info/shared")).json()["blueprints"][0]["version"] == "0.0.1"
        for i in range(50):
            ch = (await c.get(f"/api/v1/blueprints/changes/bp-{i}")).json()["blueprints"][0]
            assert ch["total"] == 4
            bp = (await c.get(f"/api/v1/blueprints/info/bp-{i}")).json()["blueprints"][0]
            assert bp["version"] == "0.0.1" and bp["packages"] == [{"name": "p3"}]


async def test_user_sources_reach_depsolve_and_composes() -> None:
    from .upstream_mocks import MockDepsolver

    solver = MockDepsolver()
    async with fixture_daemon("NoComposesFixture", depsolver=solver) as (c, app):
        await c.post_json("/api/v1/blueprints/new", {"name": "test", "packages": [{"name": "dep-package1"}]})
        src = {"id": "extra", "name": "extra repo", "type": "yum-baseurl", "url": "http://example.com/extra/",
               "check_gpg": False, "check_ssl": True, "distros": ["test-distro-1"]}
        assert (await c.post_json("/api/v1/projects/source/new", src)).status == 200
        other = {**src, "id": "other", "distros": ["test-distro-2"]}
        assert (await c.post_json("/api/v1/projects/source/new", other)).status == 200
        assert (await c.get("/api/v1/blueprints/depsolve/test")).json()["errors"] == []
        repos = solver.requests[-1]["packages"].repositories
        assert [r.id for r in repos] == ["test-id", "extra"]  # not "other": it is for test-distro-2 only
        assert repos[1].baseurl == ["http://example.com/extra/"] and repos[1].sslverify is True
        r = await c.post_json("/api/v1/compose", {"blueprint_name": "test", "compose_type": "test_type"})
        assert r.status == 200, r.text
        started = app[WELDR].compose.started[-1]
        assert [x.id for x in started.repositories] == ["test-id", "extra"]
        # a Debian-style source ("deb", osbuildd's extension) needs its suite
        deb = {"id": "bp", "name": "backports", "type": "deb", "url": "http://deb.debian.org/debian"}
        r = await c.post_json("/api/v1/projects/source/new", deb)
        assert r.status == 400 and "'suite'" in r.json()["errors"][0]["msg"]
        assert (await c.post_json("/api/v1/projects/source/new", {**deb, "suite": "bookworm-backports"})).status == 200
        info = (await c.get("/api/v1/projects/source/info/bp")).json()["sources"]["bp"]
        assert info["type"] == "deb" and info["suite"] == "bookworm-backports" and info["components"] == ["main"]
        # ... and an rpm distro does not hand it to dnf
        assert (await c.get("/api/v1/blueprints/depsolve/test")).json()["errors"] == []
        assert [r.id for r in solver.requests[-1]["packages"].repositories] == ["test-id", "extra"]


def test_deb_source_becomes_an_apt_repository() -> None:
    from osbuildd.api.weldr.packages import user_source_repo
    from osbuildd.distro.sourcestore import SourceConfig

    cfg = SourceConfig(name="backports", type="deb", url="http://deb.debian.org/debian", suite="bookworm-backports",
                       components=["main", "contrib"], signed_by="/usr/share/keyrings/debian-archive-keyring.gpg")
    repo = user_source_repo("bp", cfg, "debian")
    assert (repo.id, repo.baseurl, repo.suite, repo.components) == (
        "bp", ["http://deb.debian.org/debian"], "bookworm-backports", ["main", "contrib"])
    assert repo.signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert user_source_repo("bp", cfg, "rpm") is None
    yum = SourceConfig(name="y", type="yum-baseurl", url="http://x/")
    assert user_source_repo("y", yum, "debian") is None
