"""The suite's warm state is cut back between runs (tests/warmstore.py): engine objects least recently
used first down to the cap, sources and apt caches unused for two weeks; nothing while a build holds it."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import warmstore

from osbuildd.engine.objectstore import Store

MIB = 2**20


def _state(tmp_path: Path) -> tuple[Path, list[str]]:
    state = tmp_path / "state"
    store = Store(state / "store", "unlimited")
    oids = []
    try:
        for i in range(3):
            tree = tmp_path / f"tree{i}"
            tree.mkdir()
            (tree / "blob").write_bytes(os.urandom(MIB))
            oid = f"{i:064x}"
            assert store.commit(oid, tree, {}, move=True)
            oids.append(oid)
    finally:
        store.close()
    now = time.time()
    for age, oid in zip((300, 200, 100), oids, strict=True):   # oids[0] is the least recently used
        info = state / "store" / "objects" / oid / "object.info"
        os.utime(info, (now - age, now - age))
    month = now - 30 * 86400
    src = state / "store" / "sources" / "org.osbuild.files"
    for name, when in (("sha256:old", month), ("sha256:new", now)):
        (src / name).write_bytes(b"deb")
        os.utime(src / name, (when, when))
    apt = state / "cache" / "depsolve" / "apt"
    for name, when in (("debian-12-amd64-old", month), ("debian-12-amd64-new", now)):
        (apt / name / "lists").mkdir(parents=True)
        os.utime(apt / name, (when, when))
    archives = apt / "debian-12-amd64-new" / "archives"
    archives.mkdir()
    for name, when in (("old_1_amd64.deb", month), ("new_1_amd64.deb", now)):
        (archives / name).write_bytes(b"deb")
        os.utime(archives / name, (when, when))
    os.utime(apt / "debian-12-amd64-new", (now, now))
    return state, oids


def _left(state: Path) -> tuple[set[str], set[str], set[str]]:
    store = state / "store"
    return ({p.name for p in (store / "objects").iterdir() if not p.name.startswith(".")},
            {p.name for p in (store / "sources" / "org.osbuild.files").iterdir()},
            {p.name for p in (state / "cache" / "depsolve" / "apt").iterdir()})


def test_prune_keeps_the_newest_objects_under_the_cap_and_drops_unused_caches(tmp_path: Path) -> None:
    state, oids = _state(tmp_path)
    warmstore.prune(state, cap=int(2.5 * MIB))
    objects, sources, apt = _left(state)
    assert objects == set(oids[1:])
    assert sources == {"sha256:new"}
    assert apt == {"debian-12-amd64-new"}
    assert [p.name for p in (state / "cache/depsolve/apt/debian-12-amd64-new/archives").iterdir()] == ["new_1_amd64.deb"]
    assert not list((state / "store" / "tmp").glob("build-*"))   # its own scratch is gone too
    warmstore.prune(state, cap=0)
    assert _left(state)[0] == set()


def test_prune_leaves_a_store_in_use_alone(tmp_path: Path) -> None:
    state, oids = _state(tmp_path)
    fd = os.open(state / "store" / "cache.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)        # as a running engine holds it
        warmstore.prune(state, cap=0)
    finally:
        os.close(fd)
    objects, sources, apt = _left(state)
    assert objects == set(oids) and len(sources) == 2 and len(apt) == 2


def test_cap_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("OSBUILDD_TEST_STORE_MAX", "1GiB")
    assert warmstore.store_cap() == 2**30
    monkeypatch.delenv("OSBUILDD_TEST_STORE_MAX")
    assert warmstore.store_cap() == 3 * 2**30
