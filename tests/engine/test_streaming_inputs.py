"""Streaming inputs without a build: the stage helper (``StageArgs.stream_input_files``) on a temp
dir, and the engine's side (``arrivals.feed_input``) filling one from a store as blobs arrive."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from osbuildd.engine import bwrap
from osbuildd.engine.arrivals import Arrivals, feed_input
from osbuildd.engine.objectstore import Store
from osbuildd.engine.stageapi import STREAM_COMPLETE, STREAM_FAILED, InputFailed, StageArgs

A, B, C = "sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64


def args_for(path: Path, files: list[str], streaming: bool) -> StageArgs:
    entry: dict = {"path": str(path), "data": {"files": {f: {} for f in files}}}
    if streaming:
        entry["streaming"] = True
    return StageArgs(tree="/nonexistent", inputs={"packages": entry})


def test_complete_input_yields_all_files_at_once(tmp_path: Path) -> None:
    for n in (B, A):
        (tmp_path / n).write_text(n)
    # no marker needed (and none there): a complete input is just its files
    assert list(args_for(tmp_path, [B, A], streaming=False).stream_input_files("packages")) == [A, B]


def test_streaming_input_yields_files_as_they_appear(tmp_path: Path) -> None:
    gen = args_for(tmp_path, [A, B, C], streaming=True).stream_input_files("packages", poll=0.01)
    (tmp_path / B).write_text("b")
    assert next(gen) == B
    seen: list[str] = []
    done = threading.Event()

    def consume() -> None:
        seen.extend(gen)
        done.set()

    t = threading.Thread(target=consume)
    t.start()
    (tmp_path / A).write_text("a")
    time.sleep(0.1)
    assert seen == [A] and not done.is_set()   # all files there but no marker yet: still waiting
    (tmp_path / C).write_text("c")
    time.sleep(0.1)
    assert not done.is_set()
    (tmp_path / STREAM_COMPLETE).write_text("")
    t.join(5)
    assert done.is_set() and seen == [A, C]


def test_streaming_input_raises_when_the_engine_says_it_failed(tmp_path: Path) -> None:
    (tmp_path / A).write_text("a")
    gen = args_for(tmp_path, [A, B], streaming=True).stream_input_files("packages", poll=0.01)
    assert next(gen) == A
    (tmp_path / STREAM_FAILED).write_text("failed to fetch http://x/b.deb: HTTP 404\n")
    with pytest.raises(InputFailed, match="HTTP 404"):
        next(gen)


def test_complete_marker_with_a_file_missing_is_an_error(tmp_path: Path) -> None:
    (tmp_path / A).write_text("a")
    (tmp_path / STREAM_COMPLETE).write_text("")
    gen = args_for(tmp_path, [A, B], streaming=True).stream_input_files("packages", poll=0.01)
    assert next(gen) == A
    with pytest.raises(InputFailed, match=B):
        next(gen)


def test_bootstrap_declares_its_streaming_input() -> None:
    assert bwrap.stage_meta("org.osbuildd.debian.bootstrap").streaming_inputs == {"packages"}
    assert bwrap.stage_meta("org.osbuild.untar").streaming_inputs == frozenset()


def _put(store: Store, checksum: str) -> None:
    store.source_path(checksum).write_text(checksum)


def test_feed_input_links_blobs_as_they_arrive_then_marks_complete(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", None)
    dest = tmp_path / "input"
    dest.mkdir()

    async def scenario() -> None:
        arrivals = Arrivals()
        _put(store, A)   # in the store before the stage starts
        feeder = asyncio.ensure_future(feed_input(store, arrivals, [A, B, C], dest))
        await asyncio.sleep(0.2)
        assert sorted(p.name for p in dest.iterdir()) == [A]
        _put(store, B)
        arrivals.publish(B)
        await asyncio.sleep(0.2)
        assert sorted(p.name for p in dest.iterdir()) == [A, B]
        _put(store, C)
        arrivals.publish(C)
        await asyncio.wait_for(feeder, 5)   # all referenced blobs there: complete before the fetch ends
        assert sorted(p.name for p in dest.iterdir()) == [STREAM_COMPLETE, A, B, C]
        assert (dest / B).stat().st_ino == store.source_path(B).stat().st_ino   # a link, no copy

    try:
        asyncio.run(scenario())
    finally:
        store.close()


def test_feed_input_marks_failed_when_the_fetch_fails(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", None)
    dest = tmp_path / "input"
    dest.mkdir()

    async def scenario() -> None:
        arrivals = Arrivals()
        feeder = asyncio.ensure_future(feed_input(store, arrivals, [A, B], dest))
        _put(store, A)
        arrivals.publish(A)
        await asyncio.sleep(0.2)
        arrivals.finish("failed to fetch http://127.0.0.1/b.deb: HTTP 404")
        await asyncio.wait_for(feeder, 5)
        assert not (dest / STREAM_COMPLETE).exists()
        assert "HTTP 404" in (dest / STREAM_FAILED).read_text()
        assert (dest / A).exists() and not (dest / B).exists()

    try:
        asyncio.run(scenario())
    finally:
        store.close()


def _fields(stanza: str) -> dict[str, str]:
    out: dict[str, str] = {}
    key = ""
    for line in stanza.splitlines():
        if line.startswith((" ", "\t")):
            out[key] += "\n" + line
        elif line:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def test_bootstrap_indexes_a_deb_as_apt_ftparchive_does(tmp_path: Path) -> None:
    """The stanza the bootstrap writes per arriving .deb says what apt-ftparchive's index said."""
    import hashlib
    import subprocess

    from osbuildd.engine.stages.org_osbuildd_debian_bootstrap import _stanza

    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "usr/share/h3").mkdir(parents=True)
    (pkg / "usr/share/h3/file").write_text("x\n")
    (pkg / "DEBIAN/control").write_text(
        "Package: h3-demo\nVersion: 1:2.3-4\nArchitecture: all\nMaintainer: T <t@example.org>\n"
        "Installed-Size: 1\nPre-Depends: libc6 (>= 2.36)\nDepends: bash, coreutils (>= 9)\nPriority: optional\n"
        "Section: misc\nDescription: a demo package\n longer text\n .\n second paragraph\n")
    built = tmp_path / "demo.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(pkg), str(built)],
                   check=True, capture_output=True)
    digest = hashlib.sha256(built.read_bytes()).hexdigest()
    name = f"sha256:{digest}"
    inp = tmp_path / "input"
    inp.mkdir()
    os_link = inp / name
    os_link.write_bytes(built.read_bytes())
    mine_repo, ref_repo = tmp_path / "mine", tmp_path / "ref"
    mine_repo.mkdir()
    ref_repo.mkdir()
    mine = _stanza(str(mine_repo), name, str(os_link))
    assert mine.endswith("\n\n")
    (ref_repo / (name.replace(":", "_") + ".deb")).write_bytes(built.read_bytes())
    ref = subprocess.run(["apt-ftparchive", "packages", "."], cwd=ref_repo, check=True, capture_output=True,
                         text=True).stdout
    got, want = _fields(mine), _fields(ref)
    assert got == {k: v for k, v in want.items() if k in got}
    assert set(want) - set(got) <= {"MD5sum", "SHA1", "SHA512", "Description-md5"}
    assert got["SHA256"] == digest and got["Filename"] == f"./sha256_{digest}.deb"
    assert (mine_repo / f"sha256_{digest}.deb").stat().st_ino == os_link.stat().st_ino
