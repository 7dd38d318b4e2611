"""Per-stage timings of a real Debian build (issue 13), on the session's tar build (no build of its own).

The shared store may hold the os pipeline from an earlier run: then it is listed as cached and only
the archive ran. Either way the figures must agree with the log and with each other.
"""

from __future__ import annotations

import math
from typing import Any

from .conftest import Built


def _span(t: dict[str, Any]) -> None:
    assert isinstance(t["started"], float) and isinstance(t["finished"], float)
    assert t["started"] <= t["finished"]
    assert math.isclose(t["duration"], t["finished"] - t["started"], abs_tol=1e-3)


def test_every_log_entry_has_timings(tar_build: Built) -> None:
    for entries in tar_build.result["log"].values():
        for e in entries:
            _span(e["timings"])


def test_top_level_lists_every_stage_that_ran(tar_build: Built) -> None:
    t = tar_build.result["timings"]
    logged = [(name, e["id"], e["type"], e["timings"]) for name, entries in tar_build.result["log"].items()
              for e in entries]
    assert [(s["pipeline"], s["id"], s["type"], {k: s[k] for k in ("started", "finished", "duration")})
            for s in t["stages"]] == logged
    assert t["stages"] and t["stages"][-1]["type"] == "org.osbuild.tar"
    # the stages ran one after the other
    for a, b in zip(t["stages"], t["stages"][1:], strict=False):
        assert a["finished"] <= b["started"] + 1e-3


def test_pipelines_ran_or_came_from_the_store(tar_build: Built) -> None:
    t = tar_build.result["timings"]
    names = [p["name"] for p in tar_build.manifest["pipelines"]]
    assert [p["name"] for p in t["pipelines"]] == names   # both are needed for the export
    ran = {s["pipeline"] for s in t["stages"]}
    for p in t["pipelines"]:
        if p["cached"]:
            assert p["name"] not in ran and p["duration"] == 0.0 and p["started"] is None
            continue
        _span(p)
        mine = [s for s in t["stages"] if s["pipeline"] == p["name"]]
        stages = next(mp["stages"] for mp in tar_build.manifest["pipelines"] if mp["name"] == p["name"])
        assert len(mine) + p["resumed"] == len(stages)
        assert sum(s["duration"] for s in mine) <= p["duration"] + 1e-3
    assert t["pipelines"][-1]["name"] == "archive" and t["pipelines"][-1]["cached"] is False


def test_sources_and_total(tar_build: Built) -> None:
    t = tar_build.result["timings"]
    (curl,) = t["sources"]
    _span(curl)
    n = len(tar_build.manifest["sources"]["org.osbuild.curl"]["items"])
    assert curl["type"] == "org.osbuild.curl" and curl["success"] is True
    assert curl["fetched"] + curl["cached"] == n
    cached = [i["cached"] for i in tar_build.result["sources"]["org.osbuild.curl"]]
    assert curl["cached"] == sum(cached)
    ran = sum(p["duration"] for p in t["pipelines"])
    # sources may overlap the first stage, so the total is at least the pipelines' and the fetch's
    assert t["total"] >= max(ran, curl["duration"]) - 1e-3
    first = min([curl["started"], *(s["started"] for s in t["stages"])])
    last = max([curl["finished"], *(s["finished"] for s in t["stages"])])
    assert t["total"] >= last - first - 1e-3
