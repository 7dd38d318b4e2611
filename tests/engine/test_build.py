"""Small real builds on the host: tar export, failing stage, JSONSeq stream, curl/inline sources."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
from pathlib import Path

import pytest
from testdata import data_file

from .helpers import engine, parse_jsonseq, result_json, tiny

pytestmark = pytest.mark.usefixtures("require_root")


def failing() -> dict:
    """upstream's failure sample manifest: tiny + org.osbuild.error (returncode 3) as stage 3."""
    m = tiny()
    m["pipelines"][0]["stages"].insert(2, {"type": "org.osbuild.error", "options": {"returncode": 3}})
    return m


def test_tar_export_and_result(tmp_path) -> None:
    out = tmp_path / "out"
    proc, _ = engine("--store", str(tmp_path / "store"), "--output-directory", str(out), "--export", "archive",
                     "--json", str(data_file("osbuild", "tiny-tar.manifest.json")))
    assert proc.returncode == 0, proc.stderr.decode()
    res = result_json(proc)
    sample = json.loads(data_file("osbuild", "osbuild-result-sample.json").read_text())
    assert set(res) == set(sample) | {"timings"}  # osbuildd adds the per-stage timings, nothing else
    assert res["success"] is True and res["type"] == "result"
    assert res["sources"] == sample["sources"]  # same checksum, not cached in a fresh store
    for name in ("tree", "archive"):
        assert [(s["id"], s["type"]) for s in res["log"][name]] == [(s["id"], s["type"]) for s in sample["log"][name]]
    assert "/etc/demo/hello.txt" in res["log"]["tree"][1]["output"]
    with tarfile.open(out / "archive" / "tree.tar") as tar:
        names = tar.getnames()
        assert "./etc/demo/hello.txt" in names
        assert tar.extractfile("./etc/demo/hello.txt").read() == b"hello from osbuild\n"
        assert tar.extractfile("./etc/hostname").read() == b"demo\n"
    assert list((tmp_path / "store" / "tmp").iterdir()) == []  # scratch removed


def test_failing_stage_gives_upstream_error_result(tmp_path) -> None:
    proc, _ = engine("--store", str(tmp_path / "store"), "--output-directory", str(tmp_path / "out"),
                     "--export", "archive", "--json", "-", stdin=json.dumps(failing()).encode())
    assert proc.returncode == 1
    res = result_json(proc)
    sample = json.loads(data_file("osbuild", "osbuild-result-sample-failure.json").read_text())
    assert set(res) == set(sample) | {"timings"}
    assert res["type"] == "error" and res["success"] is False
    assert res["error"]["type"] == "org.osbuild.error.stage"
    stage = res["error"]["details"]["stage"]
    want = sample["error"]["details"]["stage"]
    assert (stage["id"], stage["type"]) == (want["id"], want["type"])
    assert "Error stage will now return error: 3" in stage["output"]
    assert set(stage) == set(want)
    assert [s.get("success", True) for s in res["log"]["tree"]] == [True, True, False]
    assert "archive" not in res["log"]
    assert not (tmp_path / "out" / "archive").exists()


def test_jsonseq_stream_matches_upstream_sample(tmp_path) -> None:
    proc, stream = engine("--store", str(tmp_path / "store"), "--output-directory", str(tmp_path / "out"),
                          "--export", "archive", "--json", "--monitor=JSONSeqMonitor", "-",
                          stdin=json.dumps(failing()).encode(), monitor_fd=True)
    assert proc.returncode == 1
    result_json(proc)  # stdout stays pure JSON
    assert stream.startswith(b"\x1e") and stream.endswith(b"\n")
    recs = parse_jsonseq(stream)
    sample = parse_jsonseq(data_file("osbuild", "osbuild-monitor-sample-failure.jsonseq").read_bytes())

    def contexts(records: list[dict]) -> dict[str, dict]:
        return {r["context"]["id"]: r["context"] for r in records if "origin" in r["context"]}

    mine, theirs = contexts(recs), contexts(sample)
    # same manifest -> the same context ids as upstream for the pipelines and stages
    pipeline_ctx = {cid for cid, c in theirs.items() if not c["pipeline"].get("name", "").startswith("source ")}
    assert pipeline_ctx <= set(mine)
    # a context is sent in full exactly once; later records carry only its id
    seen: set[str] = set()
    for r in recs:
        cid = r["context"]["id"]
        assert ("origin" in r["context"]) == (cid not in seen)
        seen.add(cid)
        assert isinstance(r["timestamp"], float)
        assert r["progress"]["name"] == "pipelines/sources"
    messages = [r.get("message", "") for r in recs]
    assert messages[0] == "starting -"
    assert "Starting pipeline tree" in messages and "Starting module org.osbuild.error" in messages
    assert messages[-1] == "manifest - failed\n"
    finished = [r for r in recs if "result" in r and not r["result"]["name"].startswith("source ")]
    assert [r["result"]["success"] for r in finished] == [True, True, False]
    assert all(isinstance(r["duration"], float) for r in finished)
    assert finished[-1]["options"] == {"returncode": 3}
    sub = [r["progress"]["progress"] for r in recs if "progress" in r["progress"]]
    assert sub[0] == {"name": "pipeline: tree", "total": 4, "done": 0}
    assert max(s["done"] for s in sub) == 3
    assert recs[0]["progress"]["total"] == 3  # 1 source + 2 pipelines, as upstream
    same_keys = {k for r in sample for k in r}
    assert {k for r in recs for k in r} <= same_keys | {"timings"}  # osbuildd's one addition


@pytest.fixture
def http_dir(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **kw)  # noqa: E731
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def _untar_manifest(items: dict[str, str]) -> dict:
    stages = [{"type": "org.osbuild.untar", "inputs": {"file": {"type": "org.osbuild.files",
              "origin": "org.osbuild.source", "references": [c]}}, "options": {"prefix": f"/p{i}"}}
              for i, c in enumerate(items)]
    return {"version": "2", "sources": {"org.osbuild.curl": {"items": items}},
            "pipelines": [{"name": "tree", "stages": stages}]}


def _tarball(name: str, content: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def test_curl_source_http_and_file_cached_and_verified(tmp_path, http_dir) -> None:
    root, base = http_dir
    blobs = {f"f{i}.tar": _tarball(f"file{i}", f"content {i}\n".encode()) for i in range(3)}
    items = {}
    for name, data in blobs.items():
        (root / name).write_bytes(data)
        items["sha256:" + hashlib.sha256(data).hexdigest()] = f"{base}/{name}"
    local = tmp_path / "local.tar"
    local.write_bytes(_tarball("local", b"from file url\n"))
    items["sha256:" + hashlib.sha256(local.read_bytes()).hexdigest()] = {"url": local.as_uri()}
    store = tmp_path / "store"
    args = ("--store", str(store), "--output-directory", str(tmp_path / "out"), "--export", "tree", "--json", "-")
    proc, _ = engine(*args, stdin=json.dumps(_untar_manifest(items)).encode())
    assert proc.returncode == 0, proc.stderr.decode()
    res = result_json(proc)
    assert sorted(i["checksum"] for i in res["sources"]["org.osbuild.curl"]) == sorted(items)
    assert not any(i["cached"] for i in res["sources"]["org.osbuild.curl"])
    for c in items:
        assert (store / "sources/org.osbuild.files" / c).is_file()
    assert (tmp_path / "out/tree/p3/local").read_bytes() == b"from file url\n"
    # second build: nothing fetched again, even with the server's files gone
    for name in blobs:
        (root / name).unlink()
    proc, _ = engine(*args, stdin=json.dumps(_untar_manifest(items)).encode())
    assert proc.returncode == 0, proc.stderr.decode()
    assert all(i["cached"] for i in result_json(proc)["sources"]["org.osbuild.curl"])


def test_curl_checksum_mismatch_is_a_source_error(tmp_path, http_dir) -> None:
    root, base = http_dir
    (root / "x.tar").write_bytes(_tarball("x", b"x\n"))
    bad = "sha256:" + "ab" * 32
    proc, _ = engine("--store", str(tmp_path / "store"), "--json", "-",
                     stdin=json.dumps(_untar_manifest({bad: f"{base}/x.tar"})).encode())
    assert proc.returncode == 1
    res = result_json(proc)
    assert res["success"] is False
    assert res["error"]["type"] == "org.osbuild.error.source"
    assert res["error"]["details"]["source"]["type"] == "org.osbuild.curl"
    assert "checksum mismatch" in res["error"]["details"]["source"]["output"]
    assert not Path(tmp_path / "store/sources/org.osbuild.files" / bad).exists()


def test_log_monitor_is_the_default(tmp_path) -> None:
    proc, _ = engine("--store", str(tmp_path / "store"), str(data_file("osbuild", "tiny-tar.manifest.json")))
    assert proc.returncode == 0, proc.stderr.decode()
    text = proc.stdout.decode()
    assert "Pipeline tree: " in text and "org.osbuild.hostname: 1e25e746" in text
    assert text.rstrip().endswith("manifest tiny-tar.manifest.json finished successfully")
    assert "\x1e" not in text


@pytest.mark.parametrize("fail", [False, True], ids=["success", "failure"])
def test_stream_and_result_with_the_runners_parser(tmp_path, fail: bool) -> None:
    """The runner (osbuildd.runner.monitor) reads the engine's stream cut at arbitrary bytes."""
    import random

    from osbuildd.runner.monitor import MonitorParser

    m = failing() if fail else tiny()
    proc, stream = engine("--store", str(tmp_path / "store"), "--output-directory", str(tmp_path / "out"),
                          "--export", "archive", "--json", "--monitor=JSONSeqMonitor", "-",
                          stdin=json.dumps(m).encode(), monitor_fd=True)
    assert proc.returncode == (1 if fail else 0)
    res = result_json(proc)
    parser = MonitorParser(strict=True)
    events = []
    rnd = random.Random(7)
    pos = 0
    while pos < len(stream):
        n = rnd.randint(1, 97)
        events += parser.feed(stream[pos:pos + n])
        pos += n
    events += parser.close()
    assert len(events) == len(parse_jsonseq(stream)) and parser.bad_records == 0
    logged = {s["id"]: s for log in res["log"].values() for s in log}
    assert set(parser.stage_results) >= set(logged)
    for sid, entry in logged.items():
        assert parser.stage_results[sid]["success"] == entry.get("success", True)
        assert parser.stage_results[sid]["output"] == entry["output"]
    if fail:
        assert parser.failed_stage is not None and parser.failed_stage["name"] == "org.osbuild.error"
        assert res["error"]["details"]["stage"]["id"] == parser.failed_stage["id"]
    else:
        assert parser.failed_stage is None
        assert parser.progress.done == parser.progress.total == 3
    # the concatenated stage output of the stream is each stage's log
    traces = "".join(e.message or "" for e in events if not e.is_status and e.stage_id == res["log"]["tree"][0]["id"])
    assert traces == res["log"]["tree"][0]["output"]


def test_stage_error_message_reaches_the_log(tmp_path) -> None:
    """A stage that stops with SystemExit("why") fails with "why" in its output, not an empty log."""
    manifest = {"version": "2", "pipelines": [{"name": "tree", "stages": [
        {"type": "org.osbuildd.debian.initramfs", "options": {}}]}]}
    proc, _ = engine("--store", str(tmp_path / "store"), "--json", "-", stdin=json.dumps(manifest).encode())
    assert proc.returncode == 1
    stage = result_json(proc)["error"]["details"]["stage"]
    assert stage["type"] == "org.osbuildd.debian.initramfs"
    assert "initramfs-tools is not installed" in stage["output"]
