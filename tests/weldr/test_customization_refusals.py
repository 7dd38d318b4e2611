"""Customizations the image's tools would refuse are refused at compose start, over the real Weldr
socket: 400 ManifestCreationFailed whose message names the field, nothing queued. The blueprint itself
is stored (as upstream: these are compose-time checks)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from .realdaemon import real_daemon

CASES = {
    "hostname": ({"hostname": "-bad host-"}, "customizations.hostname: invalid hostname '-bad host-'"),
    "description": ({"user": [{"name": "alice", "description": "Alice: admin"}]},
                    "customizations.user[0].description: invalid description 'Alice: admin'"),
    "timezone": ({"timezone": {"timezone": "../../etc/shadow"}},
                 "customizations.timezone.timezone: invalid timezone '../../etc/shadow'"),
    "keyboard": ({"locale": {"keyboard": "us\nXKBOPTIONS=x"}}, "customizations.locale.keyboard: invalid keyboard"),
    "service": ({"services": {"masked": ["a b.service"]}},
                "customizations.services.masked[0]: invalid unit name 'a b.service'"),
    "ntp": ({"timezone": {"ntpservers": ["ntp.example.org\nserver evil"]}},
            "customizations.timezone.ntpservers[0]: invalid NTP server"),
    "fips": ({"fips": True}, "customization 'fips' is not supported by image type 'tar'"),   # Debian has no FIPS mode
}


def _rows(state: Path) -> dict[str, int]:
    with sqlite3.connect(state / "osbuildd.db") as db:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("jobs", "composes")}


@pytest.mark.parametrize("kind", sorted(CASES))
async def test_bad_customization_refused_at_compose_start(tmp_path: Path, kind: str) -> None:
    custom, needle = CASES[kind]
    state = tmp_path / "state"
    body = json.dumps({"name": "probe", "version": "0.0.1", "customizations": custom})
    async with real_daemon(state) as c:
        r = await c.request("POST", "/api/v1/blueprints/new", body, "application/json")
        assert r.status == 200, r.text
        r = await c.post_json("/api/v1/compose", {"blueprint_name": "probe", "compose_type": "tar",
                                                  "branch": "master"})
        assert r.status == 400, r.text
        err = r.json()["errors"][0]
        assert err["id"] == "ManifestCreationFailed", err
        assert err["msg"].startswith("failed to initialize osbuild manifest: ") and needle in err["msg"], err
        q = (await c.get("/api/v1/compose/queue")).json()
        assert q["new"] == [] and q["run"] == []
        assert _rows(state) == {"jobs": 0, "composes": 0}


async def test_good_hostname_is_not_refused(tmp_path: Path) -> None:
    """The check is not a blanket refusal: a valid FQDN with a trailing dot passes compose start (test=1:
    nothing is built)."""
    state = tmp_path / "state"
    body = json.dumps({"name": "probe", "version": "0.0.1", "customizations": {"hostname": "web-01.example.org."}})
    async with real_daemon(state) as c:
        assert (await c.request("POST", "/api/v1/blueprints/new", body, "application/json")).status == 200
        r = await c.post_json("/api/v1/compose?test=1", {"blueprint_name": "probe", "compose_type": "tar",
                                                         "branch": "master"})
        assert r.status == 200, r.text
