"""Per-stage timings (issue 13): in the ``--json`` result (log entries and a top-level ``timings``)
and on the monitor stream's finished-module records, for successful, failed and checkpointed builds.

Tiny manifests only (mkdir/copy/hostname/tar, org.osbuild.error): no image build. No assertion on how
long anything took, only that the figures are there and agree with each other.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from .helpers import engine, parse_jsonseq, result_json, tiny

pytestmark = pytest.mark.usefixtures("require_root")


def _build(tmp_path, manifest: dict[str, Any], *extra: str) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    proc, stream = engine("--store", str(tmp_path / "store"), "--output-directory", str(tmp_path / "out"),
                          "--export", "archive", "--json", "--monitor=JSONSeqMonitor", *extra, "-",
                          stdin=json.dumps(manifest).encode(), monitor_fd=True)
    return proc.returncode, result_json(proc), parse_jsonseq(stream)


def _consistent(t: dict[str, Any]) -> None:
    assert isinstance(t["started"], float) and isinstance(t["finished"], float)
    assert t["started"] <= t["finished"]
    assert t["duration"] >= 0
    assert math.isclose(t["duration"], t["finished"] - t["started"], abs_tol=1e-3)


def _failing() -> dict[str, Any]:
    m = tiny()
    m["pipelines"][0]["stages"].insert(2, {"type": "org.osbuild.error", "options": {"returncode": 3}})
    return m


def test_result_and_stream_carry_the_same_timings(tmp_path) -> None:
    rc, res, recs = _build(tmp_path, tiny())
    assert rc == 0
    t = res["timings"]
    # every log entry has its timings; the top-level list has every stage, in the order they ran
    logged = [(name, e) for name, entries in res["log"].items() for e in entries]
    assert [(s["pipeline"], s["id"], s["type"]) for s in t["stages"]] == [(n, e["id"], e["type"]) for n, e in logged]
    for (_, e), s in zip(logged, t["stages"], strict=True):
        _consistent(e["timings"])
        assert {k: s[k] for k in ("started", "finished", "duration")} == e["timings"]
    starts = [s["started"] for s in t["stages"]]
    assert starts == sorted(starts)
    # sources: one inline source, its one item fetched (fresh store)
    assert [(s["type"], s["fetched"], s["cached"], s["success"]) for s in t["sources"]] == \
        [("org.osbuild.inline", 1, 0, True)]
    _consistent(t["sources"][0])
    # pipelines in manifest order, none cached; each holds its stages
    assert [(p["name"], p["cached"]) for p in t["pipelines"]] == [("tree", False), ("archive", False)]
    for p in t["pipelines"]:
        _consistent(p)
        mine = [s for s in t["stages"] if s["pipeline"] == p["name"]]
        assert mine and p["started"] <= mine[0]["started"] and mine[-1]["finished"] <= p["finished"] + 1e-3
    # pipelines run one after another; sources are fetched while they run
    assert t["total"] >= sum(p["duration"] for p in t["pipelines"]) - 1e-3
    assert t["total"] >= t["sources"][0]["duration"] - 1e-3
    # the monitor's finished-module records carry the same figures (upstream's duration kept)
    finished = {r["result"]["id"]: r for r in recs if "result" in r and "id" in r["result"]}
    for s in t["stages"]:
        r = finished[s["id"]]
        assert r["timings"] == {k: s[k] for k in ("started", "finished", "duration")}
        assert r["duration"] == s["duration"] and isinstance(r["timestamp"], float)
    src = [r for r in recs if r.get("message") == "Finished module source org.osbuild.inline"]
    assert len(src) == 1 and src[0]["timings"]["duration"] == t["sources"][0]["duration"]
    # nothing else got timings
    assert all("timings" not in r for r in recs if not r.get("message", "").startswith("Finished module"))


def test_failed_build_reports_the_stages_that_ran(tmp_path) -> None:
    rc, res, _ = _build(tmp_path, _failing())
    assert rc == 1 and res["success"] is False
    t = res["timings"]
    assert [s["type"] for s in t["stages"]] == ["org.osbuild.mkdir", "org.osbuild.copy", "org.osbuild.error"]
    for s in t["stages"]:
        _consistent(s)
    assert res["log"]["tree"][-1]["success"] is False and "timings" in res["log"]["tree"][-1]
    # the failed pipeline has its timings, the one after it never started
    assert [p["name"] for p in t["pipelines"]] == ["tree"]
    _consistent(t["pipelines"][0])
    assert t["total"] > 0


def test_checkpointed_pipeline_is_cached_and_not_in_stages(tmp_path) -> None:
    args = ("--checkpoint", "tree", "--cache-max-size", "unlimited")
    rc, first, _ = _build(tmp_path, tiny(), *args)
    assert rc == 0
    rc, second, recs = _build(tmp_path, tiny(), *args)
    assert rc == 0
    t = second["timings"]
    by_name = {p["name"]: p for p in t["pipelines"]}
    assert by_name["tree"]["cached"] is True and by_name["tree"]["id"] == first["log"]["tree"][-1]["id"]
    assert by_name["tree"]["duration"] == 0.0 and by_name["tree"]["started"] is None
    assert by_name["archive"]["cached"] is False
    assert [(s["pipeline"], s["type"]) for s in t["stages"]] == [("archive", "org.osbuild.tar")]
    assert t["sources"][0]["fetched"] == 0 and t["sources"][0]["cached"] == 1


def test_stage_checkpoint_counts_resumed_stages(tmp_path) -> None:
    m = tiny()
    rc, first, _ = _build(tmp_path, m, "--cache-max-size", "1GiB", "--checkpoint", first_copy_id(m, tmp_path))
    assert rc == 0
    m["pipelines"][0]["stages"][2]["options"]["hostname"] = "changed"
    rc, second, _ = _build(tmp_path, m, "--checkpoint", first["log"]["tree"][1]["id"])
    assert rc == 0
    tree = next(p for p in second["timings"]["pipelines"] if p["name"] == "tree")
    assert tree["cached"] is False and tree["resumed"] == 2
    assert [s["type"] for s in second["timings"]["stages"] if s["pipeline"] == "tree"] == ["org.osbuild.hostname"]


def first_copy_id(m: dict[str, Any], tmp_path) -> str:
    """The id of the tree pipeline's copy stage (stage 2), from ``--inspect``."""
    proc, _ = engine("--inspect", "-", stdin=json.dumps(m).encode())
    assert proc.returncode == 0, proc.stderr.decode()
    return str(json.loads(proc.stdout)["pipelines"][0]["stages"][1]["id"])
