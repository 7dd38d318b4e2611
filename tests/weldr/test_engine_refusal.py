"""A compose no engine here can build is refused at ``compose start`` (400, nothing queued), not failed
after depsolve: a CentOS qcow2 needs org.osbuild.rpm and friends, which the bundled engine lacks, and
upstream osbuild is not installed on this Debian host."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from .realdaemon import real_daemon


def _rows(state: Path) -> dict[str, int]:
    with sqlite3.connect(state / "osbuildd.db") as db:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("jobs", "composes")}


async def test_rpm_image_refused_at_start(tmp_path):
    if shutil.which("osbuild"):
        pytest.fail("this test needs a host without upstream osbuild on PATH")
    state = tmp_path / "state"
    async with real_daemon(state) as c:
        r = await c.request("POST", "/api/v1/blueprints/new",
                            'name = "cs"\nversion = "0.0.1"\ndistro = "centos-9"\n', "text/x-toml")
        assert r.status == 200, r.text
        r = await c.post_json("/api/v1/compose", {"blueprint_name": "cs", "compose_type": "qcow2",
                                                  "branch": "master"})
        assert r.status == 400, r.text
        body = r.json()
        assert body["status"] is False and len(body["errors"]) == 1 and body["errors"][0]["id"] == "ComposeError"
        msg = body["errors"][0]["msg"]
        assert "org.osbuild.rpm" in msg and "upstream osbuild is not installed" in msg
        assert (await c.get("/api/v1/compose/queue")).json() == {"new": [], "run": []}
        assert _rows(state) == {"jobs": 0, "composes": 0}
