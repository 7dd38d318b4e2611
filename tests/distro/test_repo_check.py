"""osbuildd.distro.repocheck: the repository grammar every entry point uses, and the checks at use."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from osbuildd import distro
from osbuildd.compose.model import ComposeRequestError
from osbuildd.compose.service import _check_repositories
from osbuildd.depsolve import DepsolveError, PackageSetRequest
from osbuildd.depsolve.apt import _sources_list
from osbuildd.depsolve.dnf import _repo_json
from osbuildd.distro import Repository, repocheck
from osbuildd.distro.repocheck import RepoCheckError

KEY = (Path(repocheck.__file__).parent / "data" / "keys" / "fedora-43.asc").read_text()


@pytest.fixture(autouse=True)
def dirs(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "keys").mkdir()
    (tmp_path / "repos" / "local").mkdir(parents=True)
    (tmp_path / "keys" / "k.gpg").write_bytes(b"\x99")
    (tmp_path / "keys" / "out.gpg").symlink_to("/etc/passwd")
    repocheck.configure([str(tmp_path / "repos")], [str(tmp_path / "keys"), *repocheck.DEFAULT_KEYRING_DIRS])
    yield tmp_path
    repocheck.configure()


@pytest.mark.parametrize("url", [
    "http://x.org/d\n", "http://x.org/d\rx", "http://x.org/ d", "http://x.org/[trusted=yes]", "[trusted=yes]",
    "deb [trusted=yes] http://x", "ftp://x.org/", "javascript:alert(1)", "file:/etc", "file:///etc/apt",
    "http:///nohost", "http://x.org/\"q", "http://x.org/#frag", "gopher://x/", "file://host/repos/local",
])
def test_bad_urls(url: str) -> None:
    with pytest.raises(RepoCheckError) as e:
        repocheck.check_url(url)
    assert e.value.field == "url" and str(e.value).startswith("'url' ")


def test_file_urls(dirs: Path) -> None:
    repocheck.check_url(f"file://{dirs}/repos/local")
    repocheck.check_url(f"file:{dirs}/repos/local/sub")
    for bad in (f"file://{dirs}/repos/local/../../keys", f"file://{dirs}/repos/%2e%2e/keys", f"file://{dirs}/reposx"):
        with pytest.raises(RepoCheckError):
            repocheck.check_url(bad)
    (dirs / "repos" / "link").symlink_to("/etc")
    with pytest.raises(RepoCheckError, match="must be inside"):
        repocheck.check_url(f"file://{dirs}/repos/link")
    repocheck.configure()
    with pytest.raises(RepoCheckError, match="local_repo_dirs"):
        repocheck.check_url(f"file://{dirs}/repos/local")


def test_ipv6_host_is_fine() -> None:
    assert repocheck.check_url("http://[::1]:8080/debian") == "http://[::1]:8080/debian"


@pytest.mark.parametrize("suite", ["", "a b", "bookworm\n", "[trusted=yes]", "../../etc", "-x", "a/../b", "$(ARCH)"])
def test_bad_suites(suite: str) -> None:
    with pytest.raises(RepoCheckError, match="'suite'"):
        repocheck.check_suite(suite)


def test_good_suites_and_components() -> None:
    for s in ("bookworm", "bookworm-updates", "stable/updates", "./", "1.0+b1~x"):
        repocheck.check_suite(s)
    repocheck.check_components(["main", "contrib", "non-free-firmware"], "bookworm")
    for bad in (["main contrib"], ["main\n"], ["[x]"], ["../x"], "main"):
        with pytest.raises(RepoCheckError, match="'components'"):
            repocheck.check_components(bad, "bookworm")   # type: ignore[arg-type]
    with pytest.raises(RepoCheckError, match="flat"):
        repocheck.check_components(["main"], "./")


def test_signed_by(dirs: Path) -> None:
    assert repocheck.check_signed_by(KEY) == KEY
    repocheck.check_signed_by(str(dirs / "keys" / "k.gpg"))
    for bad in ("/etc/shadow", str(dirs / "keys" / "out.gpg"), str(dirs / "keys" / ".." / "keys" / "k.gpg"),
                "keys/k.gpg", str(dirs / "keys" / "missing.gpg"), str(dirs / "keys" / "k.gpg") + " [trusted=yes]"):
        with pytest.raises(RepoCheckError, match="'signed_by'"):
            repocheck.check_signed_by(bad)


def test_armoured_key_structure() -> None:
    begin, end = "-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----END PGP PUBLIC KEY BLOCK-----"
    sig = base64.b64encode(b"\xc2\x01\x00").decode()           # new-format tag 2: a signature, not a key
    for bad in (f"{begin}\n\nnot base64!\n{end}", f"{begin}\n\n{sig}\n{end}", f"{begin}\n\n{end}",
                KEY.replace(end, ""), "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nAAAA\n-----END PGP PRIVATE KEY BLOCK-----"):
        with pytest.raises(RepoCheckError):
            repocheck.check_armoured_key(bad, "signed_by")
    new_format = base64.b64encode(b"\xc6\x01\x04").decode()
    repocheck.check_armoured_key(f"{begin}\nComment: x\n\n{new_format}\n=abcd\n{end}\n", "signed_by")


def test_gpgkeys(dirs: Path) -> None:
    repocheck.check_gpgkey(KEY)
    repocheck.check_gpgkey("https://k.example.org/key.asc")
    repocheck.check_gpgkey(f"file://{dirs}/keys/k.gpg")
    for bad in ("file:///etc/shadow", "https://k/key\ngpgcheck=0", "ftp://k/key", f"file://{dirs}/keys/../../etc/x"):
        with pytest.raises(RepoCheckError, match="'gpgkeys'"):
            repocheck.check_gpgkey(bad)


def test_apt_line_from_typed_fields_only(dirs: Path) -> None:
    signed = Repository(id="a", baseurl=["https://d.example.org/debian"], suite="bookworm",
                        components=["main", "contrib"], signed_by=str(dirs / "keys" / "k.gpg"))
    unsigned = Repository(id="b", baseurl=["https://d.example.org/debian"], suite="bookworm", components=["main"])
    armoured = Repository(id="c", baseurl=["https://d.example.org/debian"], suite="bookworm", components=["main"],
                          signed_by=KEY)
    lines = _sources_list([signed, unsigned, armoured], dirs / "aptkeys").splitlines()
    assert lines[0] == f"deb [signed-by={dirs}/keys/k.gpg] https://d.example.org/debian bookworm main contrib"
    assert lines[1] == "deb [trusted=yes] https://d.example.org/debian bookworm main"
    key_file = next((dirs / "aptkeys").iterdir())
    assert lines[2] == f"deb [signed-by={key_file}] https://d.example.org/debian bookworm main"
    assert key_file.read_text() == KEY
    with pytest.raises(RepoCheckError):
        repocheck.apt_line("https://d/", "bookworm", ["main"], "/k.gpg] [trusted=yes")


def test_system_repositories_pass() -> None:
    for name in distro.names():
        d = distro.get(name)
        for arch in d.arches.values():
            for r in arch.repositories:
                if r.suite:
                    repocheck.check_deb(r, must_exist=False)
                else:
                    repocheck.check_rpm(r)


def test_depsolvers_refuse_a_bad_repository_at_use(dirs: Path) -> None:
    smuggled = {"id": "x", "baseurl": ["http://x.org/debian"], "suite": "bookworm\ndeb [trusted=yes] http://e/ sid"}
    with pytest.raises(DepsolveError) as e:
        _sources_list([smuggled])
    assert e.value.problem == "repository" and e.value.repository == "x" and "'suite'" in str(e.value)
    rpm = Repository(id="r", baseurl=["https://r.example.org/\nsslverify=0"])
    with pytest.raises(DepsolveError, match="'baseurl'"):
        _repo_json(rpm)
    assert _repo_json(Repository(id="r", baseurl=["https://r.example.org/"], gpgkeys=[KEY]))["id"] == "r"


async def test_apt_depsolve_refuses_before_apt_runs(dirs: Path) -> None:
    from osbuildd.depsolve import depsolve

    bad = Repository(id="evil", baseurl=["file:///etc"], suite="bookworm", components=["main"], check_gpg=False)
    with pytest.raises(DepsolveError, match="'baseurl'"):
        await depsolve(distro.get("debian-12"), "x86_64",
                       {"os": PackageSetRequest(include=["tmux"], repositories=[bad])}, dirs / "cache")
    assert not (dirs / "cache").exists() or not list((dirs / "cache").rglob("sources.list"))


def test_compose_request_repositories() -> None:
    bad = Repository(id="m", metalink="https://m.example.org/metalink?x=1\nsslverify=0")
    with pytest.raises(ComposeRequestError) as e:
        _check_repositories([bad])
    assert e.value.field == "repositories[0].metalink"
    _check_repositories([Repository(id="ok", baseurl=["https://r.example.org/"])])


@pytest.mark.parametrize(("repo", "field"), [
    ({"id": "x", "baseurls": ["http://x.org/debian\nTrusted: yes"]}, "baseurls"),
    ({"id": "x", "baseurls": ["http://x.org/debian [trusted=yes]"]}, "baseurls"),
    ({"id": "x\n[evil]", "baseurls": ["http://x.org/debian"]}, "id"),
    ({"id": "x", "filename": "../../etc/apt/sources.list", "baseurls": ["http://x.org/debian"]}, "filename"),
    ({"id": "x", "baseurls": ["http://x.org/debian"], "gpgkeys": ["/usr/share/keyrings/k.gpg\nTrusted: yes"]}, "gpgkeys"),
    ({"id": "x", "baseurls": ["http://x.org/debian"], "gpgkeys": ["/usr/share/keyrings/../../../etc/shadow"]},
     "gpgkeys"),
    ({"id": "x", "baseurls": ["ftp://x.org/debian"]}, "baseurls"),
])
def test_blueprint_repositories_refused_at_compose_start(repo: dict, field: str) -> None:
    from osbuildd.blueprint import BlueprintError
    from osbuildd.manifest import customizations as cz

    d = distro.get("debian-12")
    it = d.arch("x86_64").image_type("qcow2")
    from osbuildd.blueprint import Blueprint

    bp = Blueprint.from_dict({"name": "b", "customizations": {"repositories": [repo]}})
    with pytest.raises(BlueprintError) as e:
        cz.validate_for(d, it, bp)
    assert e.value.field == f"customizations.repositories[0].{field}"


def test_apt_sources_stage_refuses_injection() -> None:
    from osbuildd.engine.stages.org_osbuildd_apt_sources import render

    good = {"filename": "x.sources", "uris": ["http://x.org/debian"], "suites": ["bookworm"],
            "components": ["main"], "signed_by": KEY}
    text = render(good)
    assert text.startswith("Types: deb\nURIs: http://x.org/debian\n")
    assert "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n" in text
    assert all(ln.startswith((" ", "Types:", "URIs:", "Suites:", "Components:", "Signed-By:"))
               for ln in text.splitlines())
    for bad in ({"suites": ["bookworm\nTrusted: yes"]}, {"uris": ["http://x.org/ http://y"]},
                {"signed_by": "/k.gpg\nTrusted: yes"}, {"components": ["main\n"]}):
        with pytest.raises(ValueError):
            render({**good, **bad})


def test_config_keys() -> None:
    from osbuildd.config import Config, ConfigError

    c = Config.from_dict({"builder": {"local_repo_dirs": ["/srv/repos"]}})
    assert c.builder.local_repo_dirs == ["/srv/repos"]
    assert c.builder.keyring_dirs == ["/usr/share/keyrings", "/etc/apt/keyrings", "/etc/pki/rpm-gpg"]
    assert Config().builder.local_repo_dirs == []
    for bad in ({"local_repo_dirs": ["relative"]}, {"keyring_dirs": "/usr/share/keyrings"}, {"keyring_dirs": [1]}):
        with pytest.raises(ConfigError, match="builder"):
            Config.from_dict({"builder": bad})
