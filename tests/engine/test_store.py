"""Object store: pipeline and stage checkpoints are reused, cache.info persists, LRU eviction."""

from __future__ import annotations

import json

import pytest

from .helpers import engine, parse_jsonseq, result_json, tiny

pytestmark = pytest.mark.usefixtures("require_root")


def build(tmp_path, manifest: dict, *extra: str, monitor: bool = False):
    proc, stream = engine("--store", str(tmp_path / "store"), "--output-directory", str(tmp_path / "out"),
                          "--export", "archive", "--json", *extra, "-", stdin=json.dumps(manifest).encode(),
                          **({"monitor_fd": True} if monitor else {}))
    assert proc.returncode == 0, proc.stderr.decode()
    return result_json(proc), parse_jsonseq(stream) if monitor else []


def objects(tmp_path) -> set[str]:
    d = tmp_path / "store/objects"
    return {p.name for p in d.iterdir() if not p.name.startswith(".")} if d.exists() else set()


def test_default_cache_size_keeps_nothing(tmp_path) -> None:
    build(tmp_path, tiny(), "--checkpoint", "tree")
    assert objects(tmp_path) == set()
    assert (tmp_path / "store/sources/org.osbuild.files").iterdir()


def test_pipeline_checkpoint_skips_the_pipeline(tmp_path) -> None:
    m = tiny()
    first, _ = build(tmp_path, m, "--checkpoint", "tree", "--cache-max-size", "unlimited")
    tree_id = first["log"]["tree"][-1]["id"]
    assert objects(tmp_path) == {tree_id}
    assert json.loads((tmp_path / "store/cache.info").read_text()) == {"version": 1, "maximum-size": "unlimited"}
    # second build: cache.info keeps the size, the tree pipeline comes from the store
    second, recs = build(tmp_path, m, "--checkpoint", "tree", "--monitor=JSONSeqMonitor", monitor=True)
    assert "tree" not in second["log"] and [s["type"] for s in second["log"]["archive"]] == ["org.osbuild.tar"]
    assert recs[0]["progress"]["total"] == 2  # 1 source + 1 pipeline to run, as upstream counts
    import tarfile
    with tarfile.open(tmp_path / "out/archive/tree.tar") as tar:
        assert tar.extractfile("./etc/hostname").read() == b"demo\n"


def test_stage_checkpoint_resumes_after_that_stage(tmp_path) -> None:
    m = tiny()
    first, _ = build(tmp_path, m, "--cache-max-size", "1GiB", "--checkpoint", "7d13a24a*")
    copy_id = first["log"]["tree"][1]["id"]
    assert objects(tmp_path) == {copy_id}
    m["pipelines"][0]["stages"][2]["options"]["hostname"] = "changed"
    second, _ = build(tmp_path, m, "--checkpoint", "7d13a24a*")
    assert [s["type"] for s in second["log"]["tree"]] == ["org.osbuild.hostname"]
    import tarfile
    with tarfile.open(tmp_path / "out/archive/tree.tar") as tar:
        assert tar.extractfile("./etc/hostname").read() == b"changed\n"
        assert tar.extractfile("./etc/demo/hello.txt").read() == b"hello from osbuild\n"


def test_lru_eviction(tmp_path) -> None:
    def variant(name: str) -> dict:
        m = tiny()
        m["pipelines"][0]["stages"][2]["options"]["hostname"] = name
        return m

    a, _ = build(tmp_path, variant("a"), "--checkpoint", "tree", "--cache-max-size", "unlimited")
    a_id = a["log"]["tree"][-1]["id"]
    size = json.loads((tmp_path / f"store/objects/{a_id}/object.info").read_text())["size"]
    assert size > 0
    # room for one object and a half: storing b evicts a (least recently used)
    b, _ = build(tmp_path, variant("b"), "--checkpoint", "tree", "--cache-max-size", str(size + size // 2))
    b_id = b["log"]["tree"][-1]["id"]
    assert objects(tmp_path) == {b_id}
    # room for three: c is added and b stays; then a use of b makes c the oldest
    build(tmp_path, variant("c"), "--checkpoint", "tree", "--cache-max-size", str(3 * size + size // 2))
    assert len(objects(tmp_path)) == 2
    build(tmp_path, variant("b"), "--checkpoint", "tree")
    d, _ = build(tmp_path, variant("d"), "--checkpoint", "tree", "--cache-max-size", str(2 * size + size // 2))
    remaining = objects(tmp_path)
    assert b_id in remaining and d["log"]["tree"][-1]["id"] in remaining and len(remaining) == 2


def test_engines_sharing_a_store_start_at_once(tmp_path) -> None:
    """Workers sharing one store start their engines together, each persisting --cache-max-size: none
    may trip over another's cache.info update (a shared temporary name did, in CI)."""
    import subprocess
    import sys

    code = ("import sys\nfrom pathlib import Path\nfrom osbuildd.engine.objectstore import Store\n"
            "for i in range(40):\n    s = Store(Path(sys.argv[1]), sys.argv[2])\n    s.close()\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "store"), size],
                              stderr=subprocess.PIPE, text=True)
             for size in ("1GiB", "2GiB") * 4]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [e for e in errors if e][:1]
    info = json.loads((tmp_path / "store" / "cache.info").read_text())
    assert info["maximum-size"] in (1 << 30, 2 << 30), info
    assert not list((tmp_path / "store").glob("cache.info*.tmp")), "a temporary file was left behind"
