"""Step progress inside long stages (issue 11 §8): the mmdebstrap output parser, the engine's
monitor records with the nested stage level, and the daemon's parser reading them back."""

from __future__ import annotations

import gzip
import json
import os

from testdata import data_file

from osbuildd.cli_build import Display
from osbuildd.engine import monitor as engine_monitor
from osbuildd.engine.monitor import JSONSeqMonitor
from osbuildd.engine.stages._aptprogress import AptProgress, extracting_debs
from osbuildd.runner.monitor import MonitorParser, Progress


def recorded_lines() -> list[str]:
    with gzip.open(data_file("debian", "mmdebstrap-verbose-96.txt.gz"), "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def test_mmdebstrap_output_counts_every_phase() -> None:
    prog = AptProgress(96)
    reports = [prog.report()]
    for line in recorded_lines():
        if prog.feed(line):
            reports.append(prog.report())
    names = [r[0].split()[0] for r in reports]
    # every phase that prints per package is seen, in order (extraction is polled, not printed)
    firsts = [names.index(p) for p in ("downloading", "extracting", "unpacking", "configuring")]
    assert firsts == sorted(firsts)
    assert prog.counts == {"downloading": 96, "extracting": 96, "unpacking": 96, "configuring": 96}
    assert reports[-1] == ("configuring 96/96", 384, 384)
    # one total for the stage, a count that never goes down: a bar that never runs backwards
    assert {r[2] for r in reports} == {384}
    dones = [r[1] for r in reports]
    assert dones == sorted(dones)
    # and it moves package by package, not in one jump at the end
    assert len({d for d in dones if 0 < d < 384}) > 150
    assert "unpacking 40/96" in [r[0] for r in reports]


def test_index_download_lines_are_not_packages() -> None:
    prog = AptProgress(3)
    for line in ("I: running apt-get update...", "Get:2 copy:/r ./ Release [816 B]",
                 "Get:4 copy:/r ./ Packages [122 kB]"):
        prog.feed(line)
    assert prog.report() == ("preparing", 0, 12)
    prog.feed("I: downloading packages with apt...")
    assert prog.feed("Get:1 copy:/r ./ gcc-12-base 12.2.0-14 [37.6 kB]")
    assert prog.report() == ("downloading 1/3", 1, 12)


def test_extraction_is_counted_from_what_is_seen() -> None:
    prog = AptProgress(10)
    assert not prog.extracting_seen(3)          # not extracting yet: ignored
    prog.feed("I: extracting archives...")
    assert prog.report() == ("extracting 0/10", 10, 40)   # downloading is complete now
    assert prog.extracting_seen(4)
    assert not prog.extracting_seen(4)          # no news
    assert prog.extracting_seen(99)             # capped at the package count
    assert prog.report() == ("extracting 10/10", 20, 40)
    prog.feed("I: installing essential packages...")
    prog.feed("Unpacking base-files (12.4) ...")
    prog.feed("Unpacking base-files (12.4) ...")  # dpkg says it twice for some: one package
    assert prog.report() == ("unpacking 1/10", 21, 40)


def test_later_unpack_lines_do_not_move_the_count_back() -> None:
    prog = AptProgress(4)
    prog.feed("I: installing essential packages...")
    prog.feed("Unpacking a (1) ...")
    prog.feed("Setting up a (1) ...")        # configure started: unpacking counts as done
    before = prog.report()
    prog.feed("I: installing remaining packages...")
    prog.feed("Unpacking b (1) ...")
    after = prog.report()
    assert after[1] >= before[1]
    assert after[0].startswith("configuring")


def test_extracting_debs_reads_the_process_table(tmp_path) -> None:
    for pid, argv in (("17", [b"dpkg-deb", b"--fsys-tarfile", b"/var/cache/apt/archives/a_1_amd64.deb"]),
                      ("18", [b"/usr/bin/dpkg-deb", b"--fsys-tarfile", b"b_1_all.deb"]),
                      ("19", [b"tar", b"-x", b"c_1_all.deb"]),
                      ("self", [b"python3"])):
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "cmdline").write_bytes(b"\0".join(argv) + b"\0")
    (tmp_path / "20").mkdir()                   # a process that exited meanwhile: no cmdline
    assert extracting_debs(str(tmp_path)) == {"/var/cache/apt/archives/a_1_amd64.deb", "b_1_all.deb"}


def records(path) -> list[dict]:
    return [json.loads(r) for r in path.read_bytes().split(b"\x1e") if r.strip()]


def monitor_to(path, total: int = 2) -> tuple[JSONSeqMonitor, int]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return JSONSeqMonitor(fd, total), fd


def test_engine_monitor_nests_the_stage_steps(tmp_path, monkeypatch) -> None:
    out = tmp_path / "mon.jsonseq"
    mon, fd = monitor_to(out)
    clock = [100.0]
    monkeypatch.setattr(engine_monitor.time, "monotonic", lambda: clock[0])
    mon.begin_source("org.osbuild.curl", "s1")
    mon.step_progress("downloading 1/2", 1, 2)
    mon.step_progress("downloading 2/2", 2, 2)          # the last one is never held back
    mon.finish_source("org.osbuild.curl", True, "", [], 0.1)
    mon.begin_pipeline("os", "p1", 2)
    mon.begin_stage("org.osbuildd.debian.bootstrap", "st1")
    mon.step_progress("unpacking 1/96", 97, 384)
    mon.step_progress("unpacking 2/96", 98, 384)        # within STEP_INTERVAL: held back
    mon.step_progress("unpacking 2/96", 98, 384)
    clock[0] += 0.2
    mon.flush_step()                                    # ... until the engine's timer flushes it
    mon.flush_step()                                    # nothing new: nothing written
    clock[0] += 1.0
    mon.step_progress("unpacking 3/96", 99, 384)
    mon.finish_stage("org.osbuildd.debian.bootstrap", "st1", True, "", {}, None, 1.0)
    os.close(fd)
    recs = records(out)
    steps = [r for r in recs if "message" not in r]
    assert [r["progress"]["progress"]["name"] for r in steps[:2]] == ["downloading 1/2", "downloading 2/2"]
    assert steps[0]["progress"] == {"name": "pipelines/sources", "total": 2, "done": 0,
                                    "progress": {"name": "downloading 1/2", "total": 2, "done": 1}}
    inner = [r["progress"]["progress"]["progress"] for r in steps[2:]]
    assert inner == [{"name": "unpacking 1/96", "total": 384, "done": 97},
                     {"name": "unpacking 2/96", "total": 384, "done": 98},
                     {"name": "unpacking 3/96", "total": 384, "done": 99}]
    assert steps[2]["progress"]["progress"]["name"] == "pipeline: os"
    # the stage's own context (the monitor's origin), no message: a progress-only record
    assert all(r["context"] for r in steps)
    # a finished stage or source carries no stale steps
    finished = [r for r in recs if r.get("message", "").startswith(("Finished module org", "Finished pipeline"))]
    assert finished and all("progress" not in r["progress"].get("progress", {}) for r in finished)
    started = next(r for r in recs if r.get("message") == "Starting pipeline os")
    assert "progress" not in started["progress"]["progress"]


def test_daemon_parser_reads_the_steps_into_job_progress(tmp_path, monkeypatch) -> None:
    out = tmp_path / "mon.jsonseq"
    mon, fd = monitor_to(out, total=3)
    clock = [0.0]
    monkeypatch.setattr(engine_monitor.time, "monotonic", lambda: clock[0])
    mon.begin_source("org.osbuild.curl", "s1")
    mon.step_progress("downloading 5/10", 5, 10)
    mon.finish_source("org.osbuild.curl", True, "", [], 0.1)
    mon.begin_pipeline("os", "p1", 4)
    mon.begin_stage("org.osbuildd.debian.bootstrap", "st1")
    for done in range(0, 385, 24):
        clock[0] += 1.0
        mon.step_progress(f"unpacking {done // 4}/96", done, 384)
    mon.finish_stage("org.osbuildd.debian.bootstrap", "st1", True, "", {}, None, 1.0)
    os.close(fd)

    parser = MonitorParser(strict=True)
    events = parser.feed(out.read_bytes()) + parser.close()
    progs = [e.progress for e in events if e.progress is not None]
    src = next(p for p in progs if p.step and p.step[0] == "downloading 5/10")
    assert src.pipeline is None or src.pipeline.startswith("source")
    assert src.percent == 100 * 0.5 / 3                    # half of the first of three steps
    in_stage = [p for p in progs if p.stage == "org.osbuildd.debian.bootstrap" and p.step]
    assert len(in_stage) == 17
    pcts = [p.percent for p in in_stage]
    assert pcts == sorted(pcts) and len(set(pcts)) == 17   # the bar moves inside the stage
    mid = next(p for p in in_stage if p.step == ("unpacking 48/96", 192, 384))
    assert mid.percent == 100 * (1 + (0 + 0.5) / 4) / 3
    d = mid.to_dict()
    assert d["subprogress"] == {"done": 0, "total": 4,
                                "subprogress": {"name": "unpacking 48/96", "done": 192, "total": 384}}
    assert d["step"] == "unpacking 48/96" and d["stage"] == "org.osbuildd.debian.bootstrap"
    # after the stage: its steps are gone, the stage count moved on
    assert progs[-1].step is None and progs[-1].sub_done == 1
    assert "step" not in progs[-1].to_dict()


def test_progress_without_steps_is_unchanged() -> None:
    p = Progress(1, 4, 2, 4, "os", "org.osbuild.mkdir")
    assert p.percent == 100 * (1 + 0.5) / 4
    assert p.to_dict()["subprogress"] == {"done": 2, "total": 4}


def test_build_cli_line_shows_the_step() -> None:
    import io
    buf = io.StringIO()
    disp = Display(buf, tty=False)
    prog = {"percent": 31.2, "pipeline": "os", "stage": "org.osbuildd.debian.bootstrap",
            "step": "unpacking 120/237"}
    disp.show("building", prog)
    disp.show("building", {**prog, "step": "unpacking 121/237"})   # same stage, within seconds: no line
    assert buf.getvalue().splitlines() == [
        "[ 31.2%] os / org.osbuildd.debian.bootstrap: unpacking 120/237 (00:00)"]
    tty = io.StringIO()
    Display(tty, tty=True).show("building", prog)
    assert "os / org.osbuildd.debian.bootstrap: unpacking 120/237" in tty.getvalue()



def test_qemu_convert_percentages_become_steps(tmp_path, capfd) -> None:
    import sys

    from osbuildd.engine.stageapi import StageArgs
    from osbuildd.engine.stages.org_osbuild_qemu import convert

    r, w = os.pipe()
    args = StageArgs(tree=str(tmp_path), progress_fd=w)
    # what qemu-img convert -p writes: one line redrawn with \r, then the tool's own text
    script = ("import sys; w = sys.stdout.write; w('    (0.00/100%)\\r'); w('    (42.50/100%)\\r');"
              "w('    (100.00/100%)\\r\\n'); w('a warning\\n')")
    convert(args, [sys.executable, "-c", script])
    os.close(w)
    with os.fdopen(r) as f:
        reports = [json.loads(line) for line in f]
    assert reports == [{"name": "converting 0%", "done": 0, "total": 10000},
                       {"name": "converting 42%", "done": 4250, "total": 10000},
                       {"name": "converting 100%", "done": 10000, "total": 10000}]
    out = capfd.readouterr().out
    assert out.splitlines()[1:] == ["a warning"]   # after the command line: no percentages


def test_compression_reports_how_far_the_compressor_read(tmp_path) -> None:
    import sys

    from osbuildd.engine.stageapi import StageArgs
    from osbuildd.engine.stages._compress import compress

    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "sha256:x").write_bytes(b"a" * 3 * 2**20)
    tree = tmp_path / "tree"
    tree.mkdir()
    r, w = os.pipe()
    args = StageArgs(tree=str(tree), options={"filename": "out.bin"}, progress_fd=w,
                     inputs={"file": {"path": str(inp), "data": {"files": {"sha256:x": {}}}}})
    # a "compressor" that reads 1 MiB, pauses (the stage looks meanwhile), then copies the rest
    script = ("import os, sys, time; a = os.read(0, 2**20); time.sleep(1.6); "
              "sys.stdout.buffer.write(a + sys.stdin.buffer.read())")
    assert compress(args, [sys.executable, "-c", script]) == 0
    os.close(w)
    with os.fdopen(r) as f:
        reports = [json.loads(line) for line in f]
    assert (tree / "out.bin").stat().st_size == 3 * 2**20
    assert {"name": "compressing 1/3 MiB", "done": 2**20, "total": 3 * 2**20} in reports
    assert reports[-1] == {"name": "compressing 3/3 MiB", "done": 3 * 2**20, "total": 3 * 2**20}
