"""runner/timings.py: the build's per-stage timings from the result or the stream, and the table."""

from __future__ import annotations

from testdata import OSBUILD

from osbuildd.runner import timings
from osbuildd.runner.monitor import MonitorParser

# an engine result's timings: a source, a cached build pipeline, a resumed os pipeline, an image stage
RESULT_TIMINGS = {
    "sources": [{"type": "org.osbuild.curl", "started": 100.0, "finished": 110.0, "duration": 10.0,
                 "fetched": 200, "cached": 12, "success": True}],
    "stages": [
        {"pipeline": "os", "id": "s2", "type": "org.osbuild.hostname", "started": 110.0, "finished": 111.0,
         "duration": 1.0},
        {"pipeline": "image", "id": "s3", "type": "org.osbuild.mkfs.ext4", "started": 111.0, "finished": 150.0,
         "duration": 39.0}],
    "pipelines": [
        {"name": "build", "id": "b", "started": None, "finished": None, "duration": 0.0, "cached": True,
         "resumed": 3},
        {"name": "os", "id": "o", "started": 110.0, "finished": 111.0, "duration": 1.0, "cached": False,
         "resumed": 1},
        {"name": "image", "id": "i", "started": 111.0, "finished": 150.0, "duration": 39.0, "cached": False,
         "resumed": 0}],
    "total": 50.0,
}


def _parser(sample: str) -> MonitorParser:
    p = MonitorParser(strict=True)
    p.feed((OSBUILD / sample).read_bytes())
    p.close()
    return p


def test_the_results_timings_win_over_the_stream() -> None:
    t = timings.collect({"success": True, "timings": RESULT_TIMINGS}, _parser("osbuild-monitor-sample.jsonseq"), 9.0)
    assert t is not None and t["origin"] == "result" and t["total"] == 50.0
    assert t["stages"] == RESULT_TIMINGS["stages"]


def test_upstream_stream_gives_stages_and_pipelines() -> None:
    # upstream osbuild 191's result has no timings: the finished-module records' duration + timestamp
    t = timings.collect({"success": True, "log": {}}, _parser("osbuild-monitor-sample-failure.jsonseq"), 7.5)
    assert t is not None and t["origin"] == "monitor" and t["total"] == 7.5   # the runner's clock
    assert [s["type"] for s in t["stages"]] == ["org.osbuild.mkdir", "org.osbuild.copy", "org.osbuild.error"]
    for s in t["stages"]:
        assert abs(s["finished"] - s["started"] - s["duration"]) < 1e-6
    (tree,) = t["pipelines"]
    assert tree["name"] == "tree" and tree["id"] and tree["cached"] is False
    assert abs(tree["duration"] - sum(s["duration"] for s in t["stages"])) < 1e-9


def test_nothing_timed_is_none() -> None:
    assert timings.collect(None, MonitorParser(), 1.0) is None


def test_engine_records_with_timings_are_taken_as_they_are() -> None:
    p = MonitorParser(strict=True)
    rec = (b'\x1e{"message": "Finished module org.osbuild.noop", "result": {"name": "org.osbuild.noop", "id": "x",'
           b' "success": true, "output": ""}, "context": {"origin": "osbuild.monitor", "pipeline": {"name": "tree",'
           b' "id": "p", "stage": {"name": "org.osbuild.noop", "id": "x"}}, "id": "c"}, "progress": {},'
           b' "timestamp": 20.5, "duration": 2.0, "timings": {"started": 18.0, "finished": 20.0, "duration": 2.0}}\n')
    p.feed(rec)
    t = timings.from_monitor(p, 3.0)
    assert t["stages"] == [{"pipeline": "tree", "id": "x", "type": "org.osbuild.noop", "started": 18.0,
                            "finished": 20.0, "duration": 2.0}]
    assert t["pipelines"][0]["id"] == "p"


def test_table() -> None:
    lines = timings.table(RESULT_TIMINGS)
    assert lines[0].split() == ["pipeline", "stage", "seconds", "share"]
    rows = [line.split() for line in lines[1:]]
    assert rows[0] == ["sources", "org.osbuild.curl", "(200", "fetched,", "12", "cached)", "10.0", "20.0%"]
    assert rows[1] == ["build", "(from", "the", "store)", "-", "-"]
    assert rows[2] == ["os", "(1", "stages", "from", "a", "checkpoint)", "-", "-"]
    assert rows[3] == ["os", "org.osbuild.hostname", "1.0", "2.0%"]
    assert rows[4] == ["image", "org.osbuild.mkfs.ext4", "39.0", "78.0%"]
    assert rows[5] == ["total", "50.0", "100.0%"]
    assert len({len(line) for line in lines}) == 1   # the columns line up


def test_the_total_covers_what_the_stream_timed() -> None:
    # a replay faster than the recording: the total is the stream's span, not the runner's 0.1 s
    t = timings.from_monitor(_parser("osbuild-monitor-sample-failure.jsonseq"), 0.1)
    first, last = t["stages"][0], t["stages"][-1]
    assert t["total"] == last["finished"] - first["started"] >= sum(s["duration"] for s in t["stages"])


def test_table_says_when_the_fetch_overlaps_the_stages() -> None:
    t = {**RESULT_TIMINGS, "sources": [{**RESULT_TIMINGS["sources"][0], "finished": 130.0, "duration": 30.0}]}
    assert "overlapping the stages" in timings.table(t)[1]
    assert "overlapping" not in timings.table(RESULT_TIMINGS)[1]
