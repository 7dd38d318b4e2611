"""Build time and license read from real .deb files (built here with dpkg-deb), no network:
the ar timestamp, DEP-5 License fields, a doc directory that links to another package, a .deb
whose checksum does not match the index, and the cache."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from conftest import need_tool

from osbuildd.depsolve import PackageInfo, debmeta
from osbuildd.depsolve.apt import Location

EPOCH = 1667235313   # 2022-10-31T16:55:13Z
COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: osbd-demo

Files: *
Copyright: 2024 Someone
License: GPL-2+

Files: lib/*
Copyright: 2024 Other
License: Expat
"""


def _deb(work: Path, name: str, *, copyright_text: str | None = None, doc_link: str = "",
         compression: str = "xz") -> Path:
    tree = work / name
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@example.com>\n"
        f"Description: test package\n")
    doc = tree / "usr" / "share" / "doc" / name
    if doc_link:
        doc.parent.mkdir(parents=True)
        os.symlink(doc_link, doc)
    else:
        doc.mkdir(parents=True)
        (doc / "copyright").write_text(copyright_text or "")
    out = work / f"{name}_1.0-1_all.deb"
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(EPOCH))
    subprocess.run([need_tool("dpkg-deb"), f"-Z{compression}", "--root-owner-group", "--build", str(tree), str(out)],
                   check=True, capture_output=True, env=env)
    return out


def _loc(deb: Path) -> Location:
    return Location(f"file://{deb}", hashlib.sha256(deb.read_bytes()).hexdigest(), deb.stat().st_size)


@pytest.mark.parametrize("compression", ["xz", "gzip", "zstd"])
def test_inspect(tmp_path: Path, compression: str) -> None:
    deb = _deb(tmp_path, "osbd-demo", copyright_text=COPYRIGHT, compression=compression)
    build_time, license_, link = debmeta._inspect(deb, "osbd-demo")
    assert (build_time, license_, link) == ("2022-10-31T16:55:13Z", "GPL-2+ and Expat", "")


async def test_doc_link_checksum_and_cache(tmp_path: Path) -> None:
    demo = await asyncio.to_thread(_deb, tmp_path, "osbd-demo", copyright_text=COPYRIGHT)
    dev = await asyncio.to_thread(_deb, tmp_path, "osbd-demo-dev", doc_link="osbd-demo")
    locs = {"osbd-demo": _loc(demo), "osbd-demo-dev": _loc(dev)}
    root = tmp_path / "cache" / "debmeta"
    # libfoo-dev's doc dir links to libfoo's: the license comes from there, the build time from its own .deb
    meta = await debmeta._read_package("osbd-demo-dev", locs, root)
    assert meta == {"build_time": "2022-10-31T16:55:13Z", "license": "GPL-2+ and Expat"}
    # a file that is not what the index says is refused
    bad = {"osbd-demo": Location(locs["osbd-demo"].url, "0" * 64, locs["osbd-demo"].size)}
    with pytest.raises(debmeta.MetaError):
        await debmeta._read_package("osbd-demo", bad, root)
    assert not list((root / "tmp").glob("*.deb"))          # downloads do not stay behind
    # a fetched result lands in the cache and is read from there
    info = PackageInfo(name="osbd-demo", version="1.0", release="1", arch="all", deb_version="1.0-1")
    key = debmeta._key(root, info)
    assert await debmeta._fetch_one(info, locs, key, root) == meta
    debmeta._MEMO.clear()
    got = await debmeta.fill(None, "x86_64", [], [info], tmp_path / "cache", fetch=True)
    assert (got[0].build_time, got[0].license) == ("2022-10-31T16:55:13Z", "GPL-2+ and Expat")
    # cache only: nothing fetched for what is not there yet
    other = PackageInfo(name="osbd-other", version="2", release="0", arch="all", deb_version="2")
    assert (await debmeta.fill(None, "x86_64", [], [other], tmp_path / "cache", fetch=False))[0].license == ""
