"""The hostile corpus: blueprints, sources and manifests that try to reach the build host.

Each case is refused with a 4xx (Weldr) or exit 2 (CLI) whose message names the field or path, and
nothing is stored — or it builds and the file is inside the image. The host's /run, /etc, /var/lib,
/tmp and /root are snapshotted before the corpus and compared after it (``test_zz_host_unchanged``,
last in this file).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from weldr.realdaemon import real_daemon, share_cache

from . import hostsnap

PROBE = "osbuildd-probe"
LONG = "/etc/" + "a" * 5000
# host files a symlink in a Debian tree points at (their hashes must not change)
HOST_TARGETS = ("/usr/share/zoneinfo/Etc/UTC", "/usr/bin/which.debianutils", "/proc/self/mounts")

_before: dict[str, hostsnap.Entry] = {}
_targets_before: dict[str, str] = {}


def _hash(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest() if not path.startswith("/proc") else "proc"
    except OSError as e:
        return f"error {e.errno}"


@pytest.fixture(scope="module", autouse=True)
def host_before(shared_state_dir: Path) -> None:
    """Taken once, before the first case of this module runs."""
    if not _before:
        _before.update(hostsnap.snapshot())
        _targets_before.update({p: _hash(p) for p in HOST_TARGETS})


# --- blueprints refused by upstream's path policy ------------------------------------------------

def _files(path: str) -> dict[str, Any]:
    return {"files": [{"path": path, "data": "written from a blueprint\n"}]}


def _dirs(path: str) -> dict[str, Any]:
    return {"directories": [{"path": path}]}


# (case id, customizations, text the error must contain)
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("file-var-run", _files(f"/var/run/{PROBE}-file"), f"/var/run/{PROBE}-file"),
    ("dir-var-run", _dirs(f"/var/run/{PROBE}-dir"), f"/var/run/{PROBE}-dir"),
    ("file-run", _files(f"/run/{PROBE}"), f"/run/{PROBE}"),
    ("file-dotdot", _files(f"/etc/../run/{PROBE}"), f"/etc/../run/{PROBE}"),
    ("dir-dotdot", _dirs(f"/etc/./x/../../run/{PROBE}"), "/etc/./x/../../run/"),
    ("file-nul", _files(f"/etc/{PROBE}\x00/x"), "path"),
    ("file-long", _files(LONG), "path"),
    ("dir-long", _dirs(LONG), "path"),
    ("file-relative", _files(f"etc/{PROBE}"), f"etc/{PROBE}"),
    ("dir-proc", _dirs(f"/proc/{PROBE}"), f"/proc/{PROBE}"),
    ("dir-sys", _dirs(f"/sys/{PROBE}"), f"/sys/{PROBE}"),
    ("dir-dev", _dirs(f"/dev/{PROBE}"), f"/dev/{PROBE}"),
    ("file-boot", _files(f"/boot/{PROBE}"), f"/boot/{PROBE}"),
    ("file-proc", _files(f"/proc/sys/kernel/{PROBE}"), f"/proc/sys/kernel/{PROBE}"),
    ("file-etc-shadow", _files("/etc/shadow"), "/etc/shadow"),
    ("home-var-run", {"user": [{"name": "probe", "home": f"/var/run/{PROBE}-home"}]}, f"/var/run/{PROBE}-home"),
    ("home-dotdot", {"user": [{"name": "probe", "home": f"/home/../root/{PROBE}"}]}, f"/home/../root/{PROBE}"),
    ("home-relative", {"user": [{"name": "probe", "home": "home/probe"}]}, "home/probe"),
    ("mountpoint-var-run", {"filesystem": [{"mountpoint": "/var/run", "minsize": "1 GiB"}]}, "/var/run"),
    ("mountpoint-proc", {"filesystem": [{"mountpoint": "/proc", "minsize": "1 GiB"}]}, "/proc"),
    ("mountpoint-dotdot", {"filesystem": [{"mountpoint": "/var/../etc", "minsize": "1 GiB"}]}, "/var/../etc"),
]


@pytest.fixture
async def daemon(tmp_path: Path, shared_state_dir: Path):
    share_cache(tmp_path / "state", shared_state_dir)
    async with real_daemon(tmp_path / "state", builder={"local_executor": False}) as client:
        yield client


def _error_text(body: Any) -> str:
    return " ".join(str(e.get("msg", "")) for e in body.get("errors", []))


async def _nothing_queued(c: Any) -> None:
    assert (await c.get("/api/v1/compose/status/*")).json() == {"uuids": []}
    queue = (await c.get("/api/v1/compose/queue")).json()
    assert queue["new"] == [] and queue["run"] == []


@pytest.mark.parametrize("case,custom,needle", REFUSED, ids=[c[0] for c in REFUSED])
async def test_blueprint_refused_by_weldr(daemon: Any, case: str, custom: dict[str, Any], needle: str) -> None:
    c = daemon
    bp = {"name": f"hostile-{case}", "version": "0.0.1", "customizations": custom}
    r = await c.post_json("/api/v1/blueprints/new", bp)
    if r.status == 200:  # upstream stores it and refuses the compose
        # filesystem customizations exist only for disk images
        ctype = "qcow2" if "filesystem" in custom else "tar"
        body = {"blueprint_name": bp["name"], "compose_type": ctype, "branch": "master"}
        r = await c.post_json("/api/v1/compose", body)
    assert 400 <= r.status < 500, (r.status, r.text)
    assert r.json()["status"] is False
    msg = _error_text(r.json())
    assert needle in msg or needle in json.dumps(msg), msg
    await _nothing_queued(c)


CLI_REFUSED = [c for c in REFUSED if c[0] in ("file-var-run", "dir-var-run", "home-dotdot", "dir-proc", "file-nul")]


def _osbuildd(*args: str, cwd: Path, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "osbuildd.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("command", ["build", "manifest"])
@pytest.mark.parametrize("case,custom,needle", CLI_REFUSED, ids=[c[0] for c in CLI_REFUSED])
def test_blueprint_refused_by_cli(tmp_path: Path, shared_state_dir: Path, command: str, case: str,
                                  custom: dict[str, Any], needle: str) -> None:
    share_cache(tmp_path / "state", shared_state_dir)
    bp = tmp_path / "bp.json"
    bp.write_text(json.dumps({"name": f"hostile-{case}", "customizations": custom}))
    extra = ["--output", str(tmp_path / "out")] if command == "build" else []
    p = _osbuildd(command, "--distro", "debian-12", "--type", "tar", "--blueprint", str(bp),
                  "--state-dir", str(tmp_path / "state"), *extra, cwd=tmp_path, timeout=300)
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert needle in lines[0] or needle in json.dumps(lines[0]), lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# --- repository lines refused where they enter ---------------------------------------------------

KEY_NOT_ARMOURED = "this is not a key\n"


def _deb(**kw: Any) -> dict[str, Any]:
    src = {"id": "hostile", "name": "hostile", "type": "deb", "url": "http://deb.debian.org/debian",
           "suite": "bookworm", "components": ["main"], "check_gpg": True, "check_ssl": True}
    src.update(kw)
    return src


def _rpm(**kw: Any) -> dict[str, Any]:
    src = {"id": "hostile", "name": "hostile", "type": "yum-baseurl", "url": "https://example.org/repo/",
           "check_gpg": False, "check_ssl": True}
    src.update(kw)
    return src


SOURCES: list[tuple[str, dict[str, Any], str]] = [
    ("url-newline", _deb(url="http://deb.debian.org/debian\ndeb [trusted=yes] http://evil.example/ x main"), "url"),
    ("url-options", _deb(url="[trusted=yes] http://deb.debian.org/debian"), "url"),
    ("url-file-outside", _deb(url="file:/etc/apt"), "url"),
    ("url-file-dotdot", _deb(url="file:///var/lib/../../etc"), "url"),
    ("url-scheme", _deb(url="ftp://deb.debian.org/debian"), "url"),
    ("suite-newline", _deb(suite="bookworm\ndeb [trusted=yes] http://evil.example/ x main"), "suite"),
    ("suite-options", _deb(suite="bookworm [trusted=yes]"), "suite"),
    ("components-space", _deb(components=["main contrib [trusted=yes]"]), "components"),
    ("components-newline", _deb(components=["main\ndeb http://evil.example/ x main"]), "components"),
    ("signed-by-host-file", _deb(signed_by="/etc/shadow"), "signed_by"),
    ("signed-by-dotdot", _deb(signed_by="/usr/share/keyrings/../../../etc/shadow"), "signed_by"),
    ("signed-by-garbage", _deb(signed_by=KEY_NOT_ARMOURED), "signed_by"),
    ("rpm-url-newline", _rpm(url="https://example.org/repo/\nsslverify=0"), "url"),
    ("rpm-gpgkey-file", _rpm(check_gpg=True, gpgkeys=["file:///etc/shadow"]), "gpgkey"),
    ("rpm-name-newline", _rpm(name="x\ngpgcheck=0"), "name"),
]


@pytest.mark.parametrize("case,source,field", SOURCES, ids=[c[0] for c in SOURCES])
async def test_source_refused(daemon: Any, case: str, source: dict[str, Any], field: str) -> None:
    c = daemon
    before = (await c.get("/api/v1/projects/source/list")).json()["sources"]
    r = await c.post_json("/api/v1/projects/source/new", source)
    assert 400 <= r.status < 500, (r.status, r.text)
    assert r.json()["status"] is False
    assert field in _error_text(r.json()), r.text
    assert (await c.get("/api/v1/projects/source/list")).json()["sources"] == before


# --- allowed paths through the tree's own symlinks: built, and inside the image ------------------

BUILT_FILES = {
    "/etc/localtime": "a file over the tree's /etc/localtime symlink\n",
    "/etc/alternatives/which": "a file over an absolute alternatives symlink\n",
    f"/etc/{PROBE}/a/b/f": "inside directories made by the blueprint\n",
    # upstream's policy allows /var/lock for files and directories; Debian ships var/lock -> /run/lock
    f"/var/lock/{PROBE}-file": "through the tree's absolute var/lock symlink\n",
    f"/var/lock/{PROBE}-dir/f": "in a directory made through var/lock\n",
}


def _member_data(tar: tarfile.TarFile, path: str) -> bytes | None:
    """The content of ``path`` in the image, following the image's symlinks inside the image."""
    members = {os.path.normpath("/" + m.name.lstrip("./")): m for m in tar.getmembers()}
    parts, done, hops = [p for p in path.split("/") if p], "/", 0
    while parts:
        cur = os.path.normpath(os.path.join(done, parts.pop(0)))
        m = members.get(cur)
        if m is not None and m.issym():
            hops += 1
            if hops > 20:
                return None
            target = m.linkname if m.linkname.startswith("/") else os.path.join(os.path.dirname(cur), m.linkname)
            parts = [p for p in os.path.normpath("/" + target).split("/") if p] + parts
            done = "/"
            continue
        done = cur
    m = members.get(done)
    f = tar.extractfile(m) if m is not None and m.isfile() else None
    return f.read() if f else None


def test_symlinked_paths_land_inside_the_image(tmp_path: Path, shared_state_dir: Path) -> None:
    share_cache(tmp_path / "state", shared_state_dir)
    bp = {"name": "hostile-built", "version": "0.0.1", "customizations": {
        "directories": [{"path": f"/etc/{PROBE}/a/b", "ensure_parents": True},
                        {"path": f"/var/lock/{PROBE}-dir"}],
        "files": [{"path": p, "data": d} for p, d in BUILT_FILES.items()]}}
    (tmp_path / "bp.json").write_text(json.dumps(bp))
    p = _osbuildd("build", "--distro", "debian-12", "--type", "tar", "--blueprint", str(tmp_path / "bp.json"),
                  "--state-dir", str(tmp_path / "state"), "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    image = next((tmp_path / "out").rglob("*.tar*"))
    with tarfile.open(image) as tar:
        for path, data in BUILT_FILES.items():
            assert _member_data(tar, path) == data.encode(), path


def test_file_through_proc_symlink_fails_naming_the_path(tmp_path: Path, shared_state_dir: Path) -> None:
    """etc/mtab -> ../proc/self/mounts resolves to the tree's empty /proc: the build stops there, saying so."""
    share_cache(tmp_path / "state", shared_state_dir)
    bp = {"name": "hostile-mtab", "customizations": {"files": [{"path": "/etc/mtab", "data": "x\n"}]}}
    (tmp_path / "bp.json").write_text(json.dumps(bp))
    p = _osbuildd("build", "--distro", "debian-12", "--type", "tar", "--blueprint", str(tmp_path / "bp.json"),
                  "--state-dir", str(tmp_path / "state"), "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert p.returncode == 1, p.stderr[-3000:]
    assert "proc/self/mounts" in p.stderr and "org.osbuild.copy" in p.stderr, p.stderr[-3000:]
    assert "Traceback" not in p.stderr


# --- manifests: symlinks planted by an earlier stage ---------------------------------------------

DATA = b"written by a hostile manifest\n"
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()

# links an earlier stage plants: absolute, relative climbing out, and a final-component link to a host file
PLANT = {"type": "org.osbuild.ln", "options": {"paths": [
    {"target": "/run", "link_name": "tree:///etc/evil", "symbolic": True},
    {"target": "../../../../../../../../run", "link_name": "tree:///etc/evilrel", "symbolic": True},
    {"target": f"/root/{PROBE}-final", "link_name": "tree:///etc/evilfile", "symbolic": True},
    {"target": "/etc", "link_name": "tree:///etc/evilhostetc", "symbolic": True},
]}}

# (case id, stage, where its write may land inside the tree, text a refusal must contain)
HOSTILE_STAGES: list[tuple[str, dict[str, Any], list[str], str]] = [
    ("mkdir-abs", {"type": "org.osbuild.mkdir", "options": {"paths": [{"path": f"/etc/evil/{PROBE}-dir"}]}},
     [f"run/{PROBE}-dir"], "etc/evil"),
    ("mkdir-rel", {"type": "org.osbuild.mkdir", "options": {"paths": [{"path": f"/etc/evilrel/{PROBE}-dir"}]}},
     [f"run/{PROBE}-dir"], "etc/evilrel"),
    ("copy-abs", {"type": "org.osbuild.copy",
                  "inputs": {"f": {"type": "org.osbuild.files", "origin": "org.osbuild.source",
                                   "references": {DIGEST: {}}}},
                  "options": {"paths": [{"from": f"input://f/{DIGEST}", "to": f"tree:///etc/evil/{PROBE}-file"}]}},
     [f"run/{PROBE}-file"], "etc/evil"),
    ("copy-final-link", {"type": "org.osbuild.copy",
                         "inputs": {"f": {"type": "org.osbuild.files", "origin": "org.osbuild.source",
                                          "references": {DIGEST: {}}}},
                         "options": {"paths": [{"from": f"input://f/{DIGEST}", "to": "tree:///etc/evilfile"}]}},
     [f"root/{PROBE}-final", "etc/evilfile"], "etc/evilfile"),
    ("truncate-final-link", {"type": "org.osbuild.truncate", "options": {"filename": "/etc/evilfile", "size": "1"}},
     [f"root/{PROBE}-final", "etc/evilfile"], "etc/evilfile"),
    # /etc/evilhostetc -> /etc resolves to the tree's own /etc, which has no hostname: nothing to change
    ("chmod-host-etc", {"type": "org.osbuild.chmod",
                        "options": {"items": {"/etc/evilhostetc/hostname": {"mode": "0777"}}}},
     [], "etc/hostname"),
    ("chown-host-etc", {"type": "org.osbuild.chown",
                        "options": {"items": {"/etc/evilhostetc/hostname": {"user": 1234}}}},
     [], "etc/hostname"),
    ("unit-create", {"type": "org.osbuild.systemd.unit.create", "options": {
        "filename": f"{PROBE}.service", "unit-type": "system", "unit-path": "etc",
        "config": {"Unit": {"Description": "probe"}, "Service": {"ExecStart": ["/bin/true"]},
                   "Install": {"WantedBy": ["multi-user.target"]}}}},
     [f"run/system/{PROBE}.service"], "etc/systemd"),
    ("fstab", {"type": "org.osbuild.fstab", "options": {"filesystems": [
        {"uuid": "76a22bf4-f153-4541-b6c7-0332c0dfaeac", "vfs_type": "ext4", "path": "/"}]}},
     [f"root/{PROBE}-fstab", "etc/fstab"], "etc/fstab"),
    ("hostname", {"type": "org.osbuild.hostname", "options": {"hostname": PROBE}},
     [f"root/{PROBE}-hostname", "etc/hostname"], "etc/hostname"),
]


def _manifest(stage: dict[str, Any], extra_links: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    plant = json.loads(json.dumps(PLANT))
    plant["options"]["paths"] += extra_links or []
    return {"version": "2", "pipelines": [{"name": "tree", "stages": [
        {"type": "org.osbuild.mkdir", "options": {"paths": [{"path": "/etc"}, {"path": "/root"}]}},
        plant, stage]}],
        "sources": {"org.osbuild.inline": {"items": {DIGEST: {"encoding": "base64",
                                                               "data": base64.b64encode(DATA).decode()}}}}}


# systemd.unit.create writes etc/systemd/system/, fstab etc/fstab, hostname etc/hostname: plant those as links
EXTRA_LINKS = {
    "unit-create": [{"target": "/run", "link_name": "tree:///etc/systemd", "symbolic": True}],
    "fstab": [{"target": f"/root/{PROBE}-fstab", "link_name": "tree:///etc/fstab", "symbolic": True}],
    "hostname": [{"target": f"/root/{PROBE}-hostname", "link_name": "tree:///etc/hostname", "symbolic": True}],
}


@pytest.mark.parametrize("case,stage,landing,needle", HOSTILE_STAGES, ids=[c[0] for c in HOSTILE_STAGES])
def test_manifest_symlinks_stay_in_tree(tmp_path: Path, case: str, stage: dict[str, Any], landing: list[str],
                                        needle: str) -> None:
    out = tmp_path / "out"
    m = _manifest(stage, EXTRA_LINKS.get(case))
    p = subprocess.run([sys.executable, "-m", "osbuildd.engine.cli", "--store", str(tmp_path / "store"),
                        "--output-directory", str(out), "--export", "tree", "--json", "-"],
                       input=json.dumps(m).encode(), capture_output=True, timeout=300)
    if p.returncode == 0:
        # built: the write followed the link inside the tree, to one of the places it may land
        tree = out / "tree"
        found = [rel for rel in landing if (tree / rel).exists() and not (tree / rel).is_symlink()]
        assert found, f"{case}: built, but nothing landed in the tree: " + \
            " ".join(sorted(str(q.relative_to(tree)) for q in tree.rglob("*")))
    else:
        result = json.loads(p.stdout or b"{}")
        text = json.dumps(result) + p.stderr.decode(errors="replace")
        assert needle in text, text[-3000:]
        assert "Traceback" not in text, text[-3000:]
    # whatever the outcome, the host saw none of it
    for leftover in (f"/run/{PROBE}-dir", f"/run/{PROBE}-file", f"/root/{PROBE}-final", f"/run/system/{PROBE}.service",
                     f"/root/{PROBE}-fstab", f"/root/{PROBE}-hostname"):
        assert not os.path.lexists(leftover), leftover


def test_zz_host_unchanged() -> None:
    """Last in this module: the host's trees are as they were before the corpus ran."""
    assert _before, "the snapshot was not taken"
    after = hostsnap.snapshot()
    changes = hostsnap.diff(_before, after)
    assert changes == [], "\n".join(changes[:50])
    assert {p: _hash(p) for p in HOST_TARGETS} == _targets_before
