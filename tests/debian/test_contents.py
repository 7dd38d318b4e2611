"""The engine's speed levers change nothing in the image: same packages, same files, one initramfs.

The references in tests/debian/data/ come from the same manifests built by the engine before the
speed work (in-memory package trees, parallel compression, streamed downloads); see contents.py.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from osbuildd.common import stageids
from osbuildd.manifest import debian

from . import contents
from .conftest import Built


def _store_tree(shared_state_dir: Path, oid: str) -> Path:
    tree = shared_state_dir / "store" / "objects" / oid / "data" / "tree"
    assert tree.is_dir(), f"checkpoint {oid} is not in the shared store"
    return tree


def _os_tree(shared_state_dir: Path, built: Built) -> Path:
    return _store_tree(shared_state_dir, stageids.stage_ids(built.manifest, "os")[-1])


@pytest.mark.parametrize("fixture,name", [("qcow2_build", "qcow2-full"), ("tar_build", "tar-template")])
def test_same_packages_as_before(request: pytest.FixtureRequest, fixture: str, name: str) -> None:
    built: Built = request.getfixturevalue(fixture)
    got = contents.packages(built.result["metadata"])
    expected = contents.reference(f"{name}.packages")
    assert got == expected, contents.diff(expected, got)


@pytest.mark.parametrize("fixture,name", [("qcow2_build", "qcow2-full"), ("tar_build", "tar-template")])
def test_same_files_as_before(request: pytest.FixtureRequest, shared_state_dir: Path, fixture: str,
                              name: str) -> None:
    built: Built = request.getfixturevalue(fixture)
    got = contents.listing(_os_tree(shared_state_dir, built))
    expected = contents.reference(f"{name}.files")
    assert got == expected, contents.diff(expected, got)


def test_tar_archive_holds_the_os_tree(tar_build: Built, shared_state_dir: Path) -> None:
    """The archive reads back with the standard library, every path of the tree in it."""
    archives = list((tar_build.outdir / "archive").iterdir())
    assert len(archives) == 1
    with tarfile.open(archives[0], "r:*") as tf:
        names = {"/" + os.path.normpath(n).lstrip("./") for n in tf.getnames() if os.path.normpath(n) != "."}
    tree = _os_tree(shared_state_dir, tar_build)
    raw = {"/" + os.path.relpath(os.path.join(r, n), tree) for r, ds, fs in os.walk(tree) for n in ds + fs}
    assert raw == names


def test_one_initramfs(qcow2_build: Built, shared_state_dir: Path) -> None:
    """The bootstrap leaves no initramfs (INITRD=No); org.osbuildd.debian.initramfs builds the only one."""
    bootstrap = _store_tree(shared_state_dir, debian.bootstrap_id(qcow2_build.manifest))
    kernels = sorted(os.listdir(bootstrap / "lib" / "modules"))
    assert kernels, "no kernel in the bootstrap tree"
    assert not list((bootstrap / "boot").glob("initrd.img-*")), "the bootstrap built an initramfs"
    final = _os_tree(shared_state_dir, qcow2_build)
    assert sorted(p.name for p in (final / "boot").glob("initrd.img-*")) == [f"initrd.img-{k}" for k in kernels]
    # when this build ran the bootstrap itself (not taken from a checkpoint), its log says the trigger
    # deferred and nothing was generated
    for entry in qcow2_build.result["log"].get("os", []):
        if entry["type"] == "org.osbuildd.debian.bootstrap":
            assert "update-initramfs: Generating" not in entry["output"]
        if entry["type"] == "org.osbuildd.debian.initramfs":
            assert entry["output"].count("update-initramfs: Generating") == len(kernels)
