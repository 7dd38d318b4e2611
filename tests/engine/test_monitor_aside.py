"""A source that finishes while a stage runs (the engine overlaps them): its records carry the
source's context, and the stage's place, steps and clock carry on as if nothing came between."""

from __future__ import annotations

import os

from osbuildd.engine.monitor import JSONSeqMonitor
from osbuildd.runner.monitor import MonitorParser
from osbuildd.runner.stream import StageClock

BOOT = "org.osbuildd.debian.bootstrap"


def test_source_records_aside_keep_the_stage_place() -> None:
    r, w = os.pipe()
    try:
        mon = JSONSeqMonitor(w, total=2)
        mon.begin("m")
        mon.begin_source("org.osbuild.curl", "s1")
        mon.begin_pipeline("os", "p1", 1)
        mon.begin_stage(BOOT, "st1")
        mon.step_progress("downloading 3/10", 3, 40)
        with mon.aside(("source org.osbuild.curl", "s1")):
            mon.step_progress("downloading 9/10", 9, 10)
            mon.finish_source("org.osbuild.curl", True, "ok", [], 1.0)
        assert (mon.pipeline, mon.stage, mon.step) == (("os", "p1"), (BOOT, "st1"), ("downloading 3/10", 3, 40))
        mon.stage_output("local repository with 10 packages\n")
        mon.step_progress("downloading 10/10", 10, 40)
        mon.flush_step()   # held back by the rate limit; the engine flushes on a timer
        mon.finish_stage(BOOT, "st1", True, "", {}, None, 2.0)
        mon.finish_pipeline("os")
        os.close(w)
        w = -1
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
    finally:
        if w >= 0:
            os.close(w)
        os.close(r)
    parser = MonitorParser(strict=True)
    events = parser.feed(data) + parser.close()
    by_msg = {e.message: e for e in events if e.message}
    src = by_msg["Finished module source org.osbuild.curl"]
    assert (src.pipeline, src.stage) == ("source org.osbuild.curl", None)
    assert by_msg["Finished pipeline org.osbuild.curl"].pipeline == "source org.osbuild.curl"
    out = by_msg["local repository with 10 packages\n"]
    assert (out.pipeline, out.stage) == ("os", BOOT)   # the stage's output stays the stage's
    assert by_msg["Finished pipeline os"].pipeline == "os"
    # the stage clock (the daemon's stage timeout) runs from the stage's start to its end only
    clock = StageClock()
    running = []
    for e in events:
        clock.observe(e)
        running.append((e.message, clock.started is not None))
    i = [m for m, _ in running].index("Finished module source org.osbuild.curl")
    assert running[i][1] and running[i + 1][1]
    assert not running[-1][1]
    # the stage's steps after the source finished are the stage's, one level below its pipeline
    last = [e for e in events if e.progress is not None and e.progress.step][-1]
    assert last.progress.step[0] == "downloading 10/10" and last.progress.pipeline == "os"
