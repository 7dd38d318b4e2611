"""Hostile repository sources over the real Weldr socket: each is refused with a 400 naming the field,
nothing is stored; good ones are accepted; a bad row put straight into the database never reaches apt."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from osbuildd.distro import repocheck

from .realdaemon import real_daemon

KEY = (Path(repocheck.__file__).parent / "data" / "keys" / "fedora-43.asc").read_text()
DEB = {"name": "extra", "type": "deb", "url": "https://deb.example.org/debian", "suite": "bookworm"}
RPM = {"name": "extra", "type": "yum-baseurl", "url": "https://rpm.example.org/repo/"}


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[Any, Path]]:
    keys, repos = tmp_path / "keys", tmp_path / "repos"
    keys.mkdir()
    (repos / "local").mkdir(parents=True)
    (keys / "good.gpg").write_bytes(b"\x99\x01")
    (keys / "escape.gpg").symlink_to("/etc/passwd")
    builder = {"local_executor": False, "keyring_dirs": [str(keys), *repocheck.DEFAULT_KEYRING_DIRS],
               "local_repo_dirs": [str(repos)]}
    try:
        async with real_daemon(tmp_path / "state", builder=builder) as c:
            yield c, tmp_path
    finally:
        repocheck.configure()   # back to the defaults for other tests in this process


HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    ("newline-url", {**DEB, "url": "https://x.org/debian\ndeb [trusted=yes] http://evil/ sid main"}, "url"),
    ("cr-url", {**DEB, "url": "https://x.org/debian\r"}, "url"),
    ("newline-suite", {**DEB, "suite": "bookworm\ndeb [trusted=yes] http://evil/ sid main"}, "suite"),
    ("newline-component", {**DEB, "components": ["main\ncontrib"]}, "components"),
    ("options-in-url", {**DEB, "url": "[trusted=yes] http://x.org/debian"}, "url"),
    ("options-after-url", {**DEB, "url": "http://x.org/debian[trusted=yes]"}, "url"),
    ("options-in-suite", {**DEB, "suite": "[trusted=yes]"}, "suite"),
    ("deb-line-smuggled", {**DEB, "url": "deb [trusted=yes] http://x"}, "url"),
    ("space-components", {**DEB, "components": ["main [trusted=yes]"]}, "components"),
    ("space-suite", {**DEB, "suite": "bookworm main [arch=amd64]"}, "suite"),
    ("file-outside", {**DEB, "url": "file:/etc"}, "url"),
    ("file-dotdot", {**DEB, "url": "file:///REPOS/local/../../../etc"}, "url"),
    ("suite-dotdot", {**DEB, "url": "file:///REPOS/local", "suite": "../../../etc"}, "suite"),
    ("signed-by-shadow", {**DEB, "signed_by": "/etc/shadow"}, "signed_by"),
    ("signed-by-symlink", {**DEB, "signed_by": "/KEYS/escape.gpg"}, "signed_by"),
    ("signed-by-dotdot", {**DEB, "signed_by": "/KEYS/../../etc/passwd"}, "signed_by"),
    ("signed-by-garbage", {**DEB, "signed_by": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key!\n"
                                               "-----END PGP PUBLIC KEY BLOCK-----"}, "signed_by"),
    ("signed-by-option", {**DEB, "signed_by": "/KEYS/good.gpg] [trusted=yes"}, "signed_by"),
    ("rpm-baseurl-newline", {**RPM, "url": "https://rpm.example.org/\nsslverify=0"}, "url"),
    ("rpm-gpgkey-shadow", {**RPM, "check_gpg": True, "gpgkeys": ["file:///etc/shadow"]}, "gpgkeys"),
    ("rpm-gpgkey-newline", {**RPM, "gpgkeys": ["https://k.example.org/key\ngpgcheck=0"]}, "gpgkeys"),
    ("rpm-name-newline", {**RPM, "name": "x\n[evil]\nbaseurl=http://evil/"}, "name"),
    ("javascript", {**RPM, "url": "javascript:alert(1)"}, "url"),
    ("ftp", {**DEB, "url": "ftp://ftp.debian.org/debian"}, "url"),
    ("metalink-ftp", {**RPM, "type": "yum-metalink", "url": "ftp://m.example.org/metalink"}, "url"),
]


def _fill(obj: dict[str, Any], tmp: Path) -> dict[str, Any]:
    text = json.dumps(obj).replace("/REPOS", str(tmp / "repos")).replace("/KEYS", str(tmp / "keys"))
    return json.loads(text)


async def _listed(c: Any) -> list[str]:
    return (await c.get("/api/v1/projects/source/list")).json()["sources"]


@pytest.mark.parametrize(("case", "body", "field"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_source_refused(daemon: tuple[Any, Path], case: str, body: dict[str, Any],
                                      field: str) -> None:
    c, tmp = daemon
    before = await _listed(c)
    for version, key in (("v1", "id"), ("v0", "name")):
        src = _fill({**body, key: body.get("name") if key == "name" else case}, tmp)
        if version == "v0" and "\n" in src["name"]:
            continue   # the v0 key is the name itself
        r = await c.post_json(f"/api/{version}/projects/source/new", src)
        assert r.status == 400, (version, r.text)
        err = r.json()["errors"][0]
        assert err["id"] == "ProjectsError" and f"'{field}'" in err["msg"], err
        assert err["msg"].startswith("Problem parsing POST body: ")
    assert await _listed(c) == before
    assert (await c.get("/api/v0/projects/source/list")).json()["sources"] == before


async def test_hostile_toml_source_refused(daemon: tuple[Any, Path]) -> None:
    c, _ = daemon
    toml = ('[evil]\nname = "evil"\ntype = "deb"\nurl = "http://x.org/debian"\n'
            'suite = "bookworm main\\ndeb [trusted=yes] http://evil/ sid"\n')
    r = await c.request("POST", "/api/v1/projects/source/new", toml, "text/x-toml")
    assert r.status == 400 and "'suite'" in r.json()["errors"][0]["msg"]
    assert "evil" not in await _listed(c)


async def test_good_sources_accepted(daemon: tuple[Any, Path]) -> None:
    from osbuildd.api.weldr.packages import user_source_repo
    from osbuildd.depsolve.apt import _sources_list
    from osbuildd.distro.sourcestore import SourceConfig

    c, tmp = daemon
    good = {
        "https": {**DEB},
        "armoured": {**DEB, "signed_by": KEY},
        "keyring-path": {**DEB, "signed_by": str(tmp / "keys" / "good.gpg")},
        "unsigned": {**DEB, "check_gpg": False},
        "local": {**DEB, "url": f"file://{tmp}/repos/local", "suite": "stable", "components": ["main", "non-free"]},
        "rpm": {**RPM, "check_gpg": True, "gpgkeys": [KEY, "https://rpm.example.org/key.asc"]},
    }
    for key, body in good.items():
        r = await c.post_json("/api/v1/projects/source/new", {**body, "id": key})
        assert r.status == 200, (key, r.text)
    assert set(good) <= set(await _listed(c))
    info = (await c.get("/api/v1/projects/source/info/unsigned,https")).json()["sources"]
    assert info["unsigned"]["check_gpg"] is False and info["https"]["check_gpg"] is True
    cfgs = {k: SourceConfig(**{f: v for f, v in info[k].items() if f in SourceConfig.__dataclass_fields__
                               and f not in ("id",)}) for k in info}
    lines = _sources_list([user_source_repo(k, cfgs[k], "debian") for k in ("unsigned", "https")],
                          tmp / "aptkeys")
    assert lines.splitlines() == [
        "deb [trusted=yes] https://deb.example.org/debian bookworm main",
        f"deb [signed-by={repocheck.DEBIAN_KEYRING}] https://deb.example.org/debian bookworm main",
    ]


async def test_bad_row_in_the_database_never_reaches_apt(daemon: tuple[Any, Path]) -> None:
    """A source that bypassed the API (written into SQLite by hand) is refused at depsolve."""
    c, tmp = daemon
    db = tmp / "state" / "osbuildd.db"
    bad = {"name": "smuggled", "type": "deb", "url": "http://x.org/debian", "check_gpg": True,
           "suite": "bookworm main\ndeb [trusted=yes] http://evil.example/ sid", "components": ["main"]}
    con = sqlite3.connect(db)
    with con:
        con.execute("INSERT INTO weldr_sources (id, name, config) VALUES (?, ?, ?)",
                    ("smuggled", "smuggled", json.dumps(bad)))
    con.close()
    r = await c.get("/api/v1/projects/depsolve/tmux")
    assert 400 <= r.status < 500, r.text
    assert "smuggled" in r.text and "'suite'" in r.text
    written = [p.read_text() for p in (tmp / "state" / "cache").rglob("sources.list")]
    assert not any("evil.example" in t for t in written)
