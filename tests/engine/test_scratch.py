"""Speed levers of the engine that must not change results: package trees in memory (no fsync cost),
direct I/O loop devices, all-core compression in org.osbuild.tar."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from osbuildd.engine import devices, objectstore
from osbuildd.engine.executor import package_tree
from osbuildd.engine.manifest import load
from osbuildd.engine.stages import org_osbuild_tar

from .helpers import engine, parse_jsonseq, result_json, tiny

MEMINFO = "MemTotal:       24000000 kB\nMemFree:        1000000 kB\nMemAvailable:   {avail} kB\n"


@pytest.mark.parametrize("avail_kib,expected", [(16 << 20, 8 << 30), (4 << 20, 2 << 30), (3 << 20, None)])
def test_memory_scratch_is_half_the_available_memory(tmp_path: Path, avail_kib: int, expected: int | None) -> None:
    f = tmp_path / "meminfo"
    f.write_text(MEMINFO.format(avail=avail_kib))
    assert objectstore.memory_scratch_size(str(f)) == expected
    assert objectstore.memory_scratch_size(str(tmp_path / "missing")) is None


def test_only_trees_made_from_sources_go_to_memory() -> None:
    m = load(tiny())
    by_name = {p.name: package_tree(p) for p in m.pipelines}
    # `tree` installs files from sources; `archive` takes the tree pipeline as its input
    assert by_name == {"tree": True, "archive": False}


@pytest.mark.parametrize("compression,filename,flag", [
    ("auto", "root.tar.xz", "--use-compress-program=xz -T0"),
    ("xz", "root.tar", "--use-compress-program=xz -T0"),
    ("auto", "root.tar.zst", "--use-compress-program=zstd -T0 -q"),
    ("zstd", "x", "--use-compress-program=zstd -T0 -q"),
    ("auto", "root.tar.bz2", "--auto-compress"),
    ("auto", "root.tar", "--auto-compress"),
])
def test_tar_compresses_with_every_core(compression: str, filename: str, flag: str) -> None:
    assert org_osbuild_tar._compressor(compression, filename) == [flag]


def test_gzip_is_pigz_when_the_host_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(org_osbuild_tar.shutil, "which", lambda name: None)
    assert org_osbuild_tar._compressor("auto", "image.tar.gz") == ["--gzip"]
    monkeypatch.setattr(org_osbuild_tar.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert org_osbuild_tar._compressor("gzip", "image.tgz") == ["--use-compress-program=pigz"]


@pytest.mark.usefixtures("require_root")
def test_loop_devices_use_direct_io(tmp_path: Path) -> None:
    image = Path("/var/tmp") / f"osbuildd-dio-{tmp_path.name}.img"  # a disk file system, not tmpfs
    image.write_bytes(b"\0" * (1 << 20))
    try:
        loop = devices.LoopDevice.attach(image)
        try:
            dio = Path(f"/sys/block/{Path(loop.path).name}/loop/dio").read_text().strip()
        finally:
            loop.detach()
    finally:
        image.unlink()
    assert dio == "1"


def _build(tmp_path: Path, name: str, *extra: str) -> tuple[dict, list[dict], bytes]:
    out = tmp_path / f"out-{name}"
    proc, stream = engine("--store", str(tmp_path / f"store-{name}"), "--output-directory", str(out),
                          "--export", "archive", "--checkpoint", "tree", "--cache-max-size", "unlimited",
                          "--json", "--monitor=JSONSeqMonitor", *extra, "-", stdin=json.dumps(tiny()).encode(),
                          monitor_fd=True)
    assert proc.returncode == 0, proc.stderr.decode()
    with tarfile.open(out / "archive" / "tree.tar") as tf:
        members = sorted((m.name, m.mode, m.uid, m.gid, m.size) for m in tf.getmembers())
    return result_json(proc), parse_jsonseq(stream), json.dumps(members).encode()


@pytest.mark.usefixtures("require_root")
def test_memory_and_disk_scratch_build_the_same(tmp_path: Path) -> None:
    mem_result, mem_stream, mem_tar = _build(tmp_path, "memory")
    disk_result, disk_stream, disk_tar = _build(tmp_path, "disk", "--scratch", "disk")
    said = [r.get("message", "") for r in mem_stream]
    assert any("package trees are built in memory" in m for m in said)
    assert not any("package trees are built in memory" in r.get("message", "") for r in disk_stream)
    assert mem_tar == disk_tar
    # the checkpoint of the in-memory tree was copied into the store on disk, whole
    tree_id = mem_result["log"]["tree"][-1]["id"]
    committed = tmp_path / "store-memory" / "objects" / tree_id / "data" / "tree"
    assert (committed / "etc" / "hostname").read_text() == "demo\n"
    assert [e["id"] for e in mem_result["log"]["tree"]] == [e["id"] for e in disk_result["log"]["tree"]]


@pytest.mark.usefixtures("require_root")
def test_xz_archive_made_with_threads_reads_back(tmp_path: Path) -> None:
    m = tiny()
    archive = next(p for p in m["pipelines"] if p["name"] == "archive")
    archive["stages"][0]["options"]["filename"] = "tree.tar.xz"
    proc, _ = engine("--store", str(tmp_path / "store"), "--output-directory", str(tmp_path / "out"),
                     "--export", "archive", "--json", "-", stdin=json.dumps(m).encode())
    assert proc.returncode == 0, proc.stderr.decode()
    assert "xz -T0" in json.dumps(result_json(proc)["log"]["archive"])
    with tarfile.open(tmp_path / "out" / "archive" / "tree.tar.xz", "r:xz") as tf:
        assert tf.extractfile("./etc/hostname").read() == b"demo\n"
