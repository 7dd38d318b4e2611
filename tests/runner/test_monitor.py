"""The JSONSeq monitor parser against osbuild's real output, cut everywhere."""

from __future__ import annotations

import json

import pytest
from testdata import data_file

from osbuildd.runner.monitor import MonitorError, MonitorParser


@pytest.fixture(scope="module")
def sample() -> bytes:
    return data_file("osbuild", "osbuild-monitor-sample.jsonseq").read_bytes()


@pytest.fixture(scope="module")
def failure() -> bytes:
    return data_file("osbuild", "osbuild-monitor-sample-failure.jsonseq").read_bytes()


def summary(events) -> list[tuple]:
    return [(e.message, e.origin, e.pipeline, e.stage, e.stage_id,
             e.progress.to_dict() if e.progress else None, json.dumps(e.result, sort_keys=True))
            for e in events]


def parse_whole(data: bytes):
    p = MonitorParser(strict=True)
    return p, p.feed(data) + p.close()


def test_sample_whole(sample):
    p, events = parse_whole(sample)
    assert len(events) == sample.count(b"\x1e") == 28
    assert events[0].message == "starting tiny.json" and events[0].origin == "osbuild.main_cli"
    # contexts sent only by id are resolved: the hostname stage's output chunk knows its stage
    written = [e for e in events if e.message and "etc/hostname written" in e.message]
    assert len(written) == 1
    assert written[0].stage == "org.osbuild.hostname" and written[0].pipeline == "tree"
    assert written[0].origin == "stages/org.osbuild.hostname" and not written[0].is_status
    # records without a message are kept (empty output chunks)
    assert any(e.message is None for e in events)
    # final progress: all 3 done
    assert (p.progress.done, p.progress.total, p.progress.percent) == (3, 3, 100.0)
    names = sorted(r["name"] for r in p.stage_results.values())
    assert names == ["org.osbuild.copy", "org.osbuild.hostname", "org.osbuild.mkdir", "org.osbuild.tar",
                     "source org.osbuild.inline"]
    assert all(r["success"] for r in p.stage_results.values()) and p.failed_stage is None


def test_progress_forward_only(sample):
    _, events = parse_whole(sample)
    pcts = [e.progress.percent for e in events if e.progress]
    assert pcts == sorted(pcts) and pcts[-1] == 100.0 and pcts[0] == 0.0


def test_starting_pipeline_resets_stale_stage(sample):
    _, events = parse_whole(sample)
    start = next(e for e in events if e.message == "Starting pipeline archive")
    # osbuild's context still names the tree's last stage here; the progress must not
    assert start.stage == "org.osbuild.hostname"
    assert start.progress.pipeline == "archive" and start.progress.stage is None


def test_failure_sample(failure):
    p, events = parse_whole(failure)
    assert p.failed_stage is not None and p.failed_stage["name"] == "org.osbuild.error"
    assert "return error: 3" in p.failed_stage["output"]
    assert events[-1].message == "manifest fail.json failed\n"


@pytest.mark.parametrize("name", ["sample", "failure"])
def test_cut_at_every_byte(name, request):
    data = request.getfixturevalue(name)
    _, whole = parse_whole(data)
    expected = summary(whole)
    for cut in range(len(data) + 1):
        p = MonitorParser(strict=True)
        got = p.feed(data[:cut]) + p.feed(data[cut:]) + p.close()
        assert summary(got) == expected, f"cut at byte {cut}"


def test_one_byte_at_a_time(sample):
    _, whole = parse_whole(sample)
    p = MonitorParser(strict=True)
    got = []
    for i in range(len(sample)):
        got += p.feed(sample[i:i + 1])
    got += p.close()
    assert summary(got) == summary(whole)


def test_huge_record_and_utf8_split():
    msg = ("é€𝄞" * 40000) + "\n"      # multi-byte characters, record far above 64 KiB
    ctx = {"origin": "stages/org.osbuild.x", "pipeline": {"name": "os", "id": "p", "stage": {"name": "x", "id": "s"}},
           "id": "c1"}
    rec1 = b"\x1e" + json.dumps({"message": msg, "context": ctx}, ensure_ascii=False).encode() + b"\n"
    rec2 = b"\x1e" + json.dumps({"message": "more", "context": {"id": "c1"}}).encode() + b"\n"
    data = rec1 + rec2
    assert len(rec1) > 64 * 1024
    for cut in (1, 2, 3, 65535, 65536, 65537, len(rec1) - 1, len(rec1), len(rec1) + 1):
        p = MonitorParser(strict=True)
        evs = p.feed(data[:cut]) + p.feed(data[cut:])
        assert [e.message for e in evs] == [msg, "more"]
        assert evs[1].stage == "x" and evs[1].pipeline == "os" and evs[1].stage_id == "s"


def test_last_record_without_newline_and_truncated_prefix():
    p = MonitorParser()
    a = b'\x1e{"message": "cut off by a cra'   # a writer died mid-record, then a new one starts
    b = b'\x1e{"message": "ok", "context": {"id": "x", "origin": "osbuild.monitor"}}'
    evs = p.feed(a + b + b"\n" + b'\x1e{"message": "tail"}')
    assert [e.message for e in evs] == ["ok"]
    assert [e.message for e in p.close()] == ["tail"]


def test_garbage_is_counted_or_raises():
    p = MonitorParser()
    assert p.feed(b"\x1enot json\n\x1e[1,2]\n") == []
    assert p.bad_records == 2
    with pytest.raises(MonitorError):
        MonitorParser(strict=True).feed(b"\x1e{broken\n")
