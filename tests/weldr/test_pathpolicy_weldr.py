"""The path policy through the real daemon's Weldr socket: as upstream osbuild-composer, a blueprint with
a denied path is stored by ``blueprints/new`` and refused by ``compose`` (400 ManifestCreationFailed
naming the path) with nothing queued; a path that cannot even be decoded (relative, NUL, too long) is
refused at push time (400 BlueprintsError) and nothing is stored."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from .realdaemon import real_daemon

PROBE = """name = "probe"
version = "0.0.1"
[[customizations.directories]]
path = "/var/run/probe-dir"
[[customizations.files]]
path = "/var/run/probe-file"
data = "x"
"""


def _rows(state: Path) -> dict[str, int]:
    with sqlite3.connect(state / "osbuildd.db") as db:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("jobs", "composes")}


async def _queue_empty(c) -> None:
    q = (await c.get("/api/v1/compose/queue")).json()
    assert q["new"] == [] and q["run"] == []
    for kind in ("finished", "failed"):
        assert (await c.get(f"/api/v1/compose/{kind}")).json()[kind] == []


@pytest.mark.parametrize("toml,message", [
    (PROBE, 'the following custom directories are not allowed: ["/var/run/probe-dir"]'),
    ('name = "probe"\nversion = "0.0.1"\n[[customizations.files]]\npath = "/etc/fstab"\n',
     'the following custom files are not allowed: ["/etc/fstab"]'),
    ('name = "probe"\nversion = "0.0.1"\n[[customizations.filesystem]]\nmountpoint = "/var/run"\nminsize = "1 GiB"\n',
     'The following custom mountpoints are not supported ["/var/run"]'),
    ('name = "probe"\nversion = "0.0.1"\n[[customizations.user]]\nname = "u"\nhome = "/var/run/u"\n',
     'the following user home directories are not allowed: ["/var/run/u"]'),
], ids=["directory", "file", "mountpoint", "home"])
async def test_compose_refused_nothing_queued(tmp_path, toml, message):
    state = tmp_path / "state"
    async with real_daemon(state) as c:
        r = await c.request("POST", "/api/v1/blueprints/new", toml, "text/x-toml")
        assert r.status == 200, r.text           # upstream stores it; the policy is a compose-time check
        r = await c.post_json("/api/v1/compose", {"blueprint_name": "probe", "compose_type": "qcow2",
                                                  "branch": "master"})
        assert r.status == 400, r.text
        assert r.json() == {"status": False, "errors": [
            {"id": "ManifestCreationFailed", "msg": f"failed to initialize osbuild manifest: {message}"}]}
        await _queue_empty(c)
        assert _rows(state) == {"jobs": 0, "composes": 0}


@pytest.mark.parametrize("path,needle", [
    ("etc/x", "must be absolute"),
    ("/etc/x/", "must not end with a slash"),
    ("/etc/../x", "must be canonical"),
    ("/etc/a\u0000b", "must not contain NUL bytes"),
    ("/" + "a" * 4096, "longer than the maximum of 4095"),
])
async def test_push_refuses_undecodable_paths(tmp_path, path, needle):
    state = tmp_path / "state"
    body = json.dumps({"name": "probe", "version": "0.0.1", "customizations": {"files": [{"path": path}]}})
    async with real_daemon(state) as c:
        for route in ("/api/v1/blueprints/new", "/api/v1/blueprints/workspace"):
            r = await c.request("POST", route, body, "application/json")
            assert r.status == 400, r.text
            err = r.json()["errors"][0]
            assert err["id"] == "BlueprintsError" and needle in err["msg"], err
            assert len(err["msg"]) < 400          # an over-long path is shortened in the message
        assert (await c.get("/api/v1/blueprints/list")).json()["blueprints"] == []
