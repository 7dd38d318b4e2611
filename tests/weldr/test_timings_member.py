"""``compose/metadata``: the build's per-stage timings as ``<uuid>-timings.json`` (osbuildd's addition),
after upstream's manifest member and only when the build recorded them. Fixture composes: no build."""

from __future__ import annotations

import io
import json
import tarfile

from osbuildd.api.weldr.util import WELDR

from .conftest import fixture_daemon

FINISHED = "30000000-0000-0000-0000-000000000002"
FAILED = "30000000-0000-0000-0000-000000000003"
TIMINGS = {"sources": [{"type": "org.osbuild.curl", "started": 1.0, "finished": 3.0, "duration": 2.0,
                        "fetched": 3, "cached": 1, "success": True}],
           "stages": [{"pipeline": "os", "id": "abc", "type": "org.osbuild.mkdir", "started": 3.0,
                       "finished": 4.5, "duration": 1.5}],
           "pipelines": [{"name": "os", "id": "p", "started": 3.0, "finished": 4.5, "duration": 1.5,
                          "cached": False, "resumed": 0}],
           "total": 4.0, "origin": "result"}


async def _members(client, cid: str) -> dict[str, tuple[int, bytes]]:
    r = await client.get(f"/api/v1/compose/metadata/{cid}")
    assert r.status == 200, r.text
    with tarfile.open(fileobj=io.BytesIO(r.body)) as tar:
        return {m.name: (m.mode, tar.extractfile(m).read()) for m in tar.getmembers()}


async def test_metadata_tar_has_the_timings_member() -> None:
    async with fixture_daemon() as (client, app):
        composes = app[WELDR].compose
        composes.composes[FINISHED].timings = TIMINGS
        composes.composes[FAILED].timings = {**TIMINGS, "origin": "monitor"}
        got = await _members(client, FINISHED)
        assert list(got) == [f"{FINISHED}.json", f"{FINISHED}-timings.json"]
        mode, data = got[f"{FINISHED}-timings.json"]
        assert mode == 0o600 and json.loads(data) == TIMINGS
        # a failed build keeps the timings of the stages that ran
        got = await _members(client, FAILED)
        assert json.loads(got[f"{FAILED}-timings.json"][1])["origin"] == "monitor"


async def test_no_timings_no_member() -> None:
    async with fixture_daemon() as (client, _):
        assert list(await _members(client, FINISHED)) == [f"{FINISHED}.json"]
