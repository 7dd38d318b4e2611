"""org.osbuild.users writes each user's description as the GECOS field (new users and existing ones);
org.osbuild.hostname refuses what systemd-firstboot refuses: by schema before any stage runs, and in
the stage for what a JSON-schema pattern cannot catch. A tiny tree, no packages."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from .helpers import build_on_tarball

FILES = {"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nold:x:1100:1100::/home/old:/bin/sh\n",
         "etc/group": "root:x:0:\nold:x:1100:\n", "etc/shadow": "root:*:19000:0:99999:7:::\nold:*:19000::::::\n",
         "etc/gshadow": "root:*::\nold:!::\n"}


def _tree_tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("etc", "home", "home/old", "root"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, text in FILES.items():
            raw = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(raw), 0o644
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def _build(tmp_path: Path, stages: list[dict]) -> tuple[dict, Path]:
    return build_on_tarball(tmp_path, _tree_tarball(), stages)


@pytest.mark.usefixtures("require_root")
def test_description_is_the_gecos_field(tmp_path: Path) -> None:
    stages = [{"type": "org.osbuild.users", "options": {"users": {
        "alice": {"uid": 1500, "description": "Alice H3,Room 1,,"},
        "old": {"description": "Old User"}}}},
              {"type": "org.osbuild.hostname", "options": {"hostname": "web-01.example.org."}}]
    res, tree = _build(tmp_path, stages)
    assert res["success"] is True, json.dumps(res)[-3000:]
    passwd = {ln.split(":")[0]: ln.split(":") for ln in (tree / "etc/passwd").read_text().splitlines()}
    assert passwd["alice"][2] == "1500" and passwd["alice"][4] == "Alice H3,Room 1,,"
    assert passwd["old"][4] == "Old User" and passwd["old"][2] == "1100"   # usermod -c on an existing user
    assert (tree / "etc/hostname").read_text() == "web-01.example.org\n"   # the trailing dot dropped


@pytest.mark.usefixtures("require_root")
@pytest.mark.parametrize("name", ["-bad host-", "ok\n"])
def test_bad_hostname_fails_the_build(tmp_path: Path, name: str) -> None:
    res, tree = _build(tmp_path, [{"type": "org.osbuild.hostname", "options": {"hostname": name}}])
    assert res["success"] is False
    assert "hostname" in json.dumps(res)
    assert not (tree / "etc/hostname").exists()


@pytest.mark.usefixtures("require_root")
@pytest.mark.parametrize("zone", ["Europe/Berlin", "../../etc/passwd"])
def test_timezone_not_in_tree_fails_the_build(tmp_path: Path, zone: str) -> None:
    """No tzdata in this tree: upstream's stage fails for a zone it cannot find; so does ours (and a
    zone that is no zone name never becomes a link)."""
    res, tree = _build(tmp_path, [{"type": "org.osbuild.timezone", "options": {"zone": zone}}])
    assert res["success"] is False
    assert "Timezone" in json.dumps(res)
    assert not (tree / "etc/localtime").is_symlink()
