"""Every write into a tree resolves inside the tree: stageapi.TreeRoot (openat2 RESOLVE_IN_ROOT)
on a real directory with hostile symlinks, and real engine builds whose tree has ``var/run -> /run``."""

from __future__ import annotations

import io
import json
import os
import tarfile
import uuid
from pathlib import Path

import pytest

from osbuildd.engine.stageapi import StageArgs, TreeRoot

from .helpers import build_on_tarball

PROBE = f"osbuildd-treepaths-{uuid.uuid4().hex[:8]}"


def _host_run() -> set[str]:
    return set(os.listdir("/run"))


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    """A tree with absolute, relative, final-component, chained and dangling symlinks, and a decoy
    directory outside it that every symlink points at."""
    tree, decoy = tmp_path / "tree", tmp_path / "decoy"
    for d in ("var", "run", "etc", "usr/lib"):
        (tree / d).mkdir(parents=True)
    decoy.mkdir()
    (decoy / "passwd").write_text("decoy\n")
    os.symlink("/run", tree / "var/run")                      # Debian's var/run
    os.symlink("../../../../../../..", tree / "usr/lib/up")   # relative, climbs past the root
    os.symlink(str(decoy / "passwd"), tree / "etc/passwd")     # final component to a host file
    os.symlink(str(decoy), tree / "etc/decoy")                 # absolute to a host dir
    os.symlink("/etc/decoy", tree / "etc/chain")               # chain: chain -> decoy -> host
    os.symlink(str(decoy / "new"), tree / "etc/dangling")      # dangling, to a host path
    return tree, decoy


def _decoy_untouched(decoy: Path) -> None:
    assert sorted(os.listdir(decoy)) == ["passwd"]
    assert (decoy / "passwd").read_text() == "decoy\n"


def test_writes_through_absolute_symlink_land_in_tree(hostile) -> None:
    tree, decoy = hostile
    before = _host_run()
    r = TreeRoot(str(tree))
    r.write_text(f"/var/run/{PROBE}", "x")
    r.mkdir(f"/var/run/{PROBE}-d/a/b", 0o700, parents=True)
    r.truncate(f"/var/run/{PROBE}-t", 4096)
    r.symlink("/etc/shadow", f"/var/run/{PROBE}-l")
    r.chmod(f"/var/run/{PROBE}", 0o600)
    assert (tree / "run" / PROBE).read_text() == "x"
    assert os.stat(tree / "run" / PROBE).st_mode & 0o777 == 0o600
    assert (tree / f"run/{PROBE}-d/a/b").is_dir()
    assert os.path.getsize(tree / f"run/{PROBE}-t") == 4096
    assert os.readlink(tree / f"run/{PROBE}-l") == "/etc/shadow"
    assert r.host_path(f"/var/run/{PROBE}") == str(tree / "run" / PROBE)
    assert _host_run() == before and not any(n.startswith(PROBE) for n in os.listdir("/run"))


def test_relative_climb_final_chain_dangling_stay_inside(hostile) -> None:
    tree, decoy = hostile
    r = TreeRoot(str(tree))
    r.write_text("/usr/lib/up/climbed", "c")          # ../../.. stops at the tree root
    assert (tree / "climbed").read_text() == "c"
    inner = tree / str(decoy).lstrip("/")
    with pytest.raises(FileNotFoundError):            # its in-tree target has no parent yet
        r.write_text("/etc/passwd", "in tree\n")
    r.mkdir(str(decoy), parents=True)                 # give the in-tree target a parent
    r.write_text("/etc/passwd", "in tree\n")
    assert (inner / "passwd").read_text() == "in tree\n"
    r.write_text("/etc/chain/chained", "ch")
    assert (inner / "chained").read_text() == "ch"
    r.write_text("/etc/dangling", "d")                # dangling: created at its target in the tree
    assert (inner / "new").read_text() == "d"
    r.chown("/etc/passwd", 0, 0)
    r.chmod("/etc/chain/chained", 0o640)
    assert r.read_text("/etc/passwd") == "in tree\n"
    for p in ("/etc/decoy/x", "/etc/passwd", "/etc/dangling", "/usr/lib/up/etc/decoy/y"):
        assert r.host_path(p).startswith(str(tree) + "/"), p
    _decoy_untouched(decoy)


def test_missing_parent_and_bad_paths_name_the_path(hostile) -> None:
    tree, decoy = hostile
    r = TreeRoot(str(tree))
    with pytest.raises(FileNotFoundError) as e:       # decoy does not exist inside the tree yet
        r.write_text("/etc/decoy/file", "x")
    assert "/etc/decoy/file" in str(e.value)
    with pytest.raises(OSError) as e:
        r.write_text("/etc/a\0b", "x")
    assert "NUL" in str(e.value) and e.value.filename == "/etc/a\0b"
    long = "/" + "a" * 5000
    with pytest.raises(OSError) as e:
        r.write_text(long, "x")
    assert long in str(e.value)
    with pytest.raises(FileExistsError) as e:
        r.mkdir("/etc", exist_ok=False)
    assert "/etc" in str(e.value)
    assert r.host_path("/var/run/a/b/c") == str(tree / "run/a/b/c")  # missing dirs kept as names
    _decoy_untouched(decoy)


def test_stageargs_resolve_and_tree_path_use_the_tree_root(hostile) -> None:
    tree, decoy = hostile
    args = StageArgs(tree=str(tree), paths_mounts=str(tree))
    assert args.tree_path("/var/run/x") == str(tree / "run/x")
    assert args.resolve("tree:///etc/decoy/y") == str(tree / str(decoy).lstrip("/") / "y")
    assert args.resolve("mount:///var/run/z") == str(tree / "run/z")
    root, inner = args.root_for("tree:///var/run/q")
    assert root.root == str(tree) and inner == "/var/run/q"
    _decoy_untouched(decoy)


# -- real builds ------------------------------------------------------------------------------

def _hostile_tarball(decoy: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name: str, kind: bytes, **kw: object) -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            for k, v in kw.items():
                setattr(info, k, v)
            tar.addfile(info)
        for d in ("run", "etc", "var", "home", "usr/lib/systemd/system"):
            add(d, tarfile.DIRTYPE, mode=0o755)
        add("var/run", tarfile.SYMTYPE, linkname="/run")
        add("var/lock", tarfile.SYMTYPE, linkname="/run/lock")
        add("etc/mtab", tarfile.SYMTYPE, linkname="/proc/self/mounts")
        add("etc/fstab", tarfile.SYMTYPE, linkname=str(decoy / "fstab"))
        add("etc/decoy", tarfile.SYMTYPE, linkname=str(decoy))
        for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
                           ("etc/group", "root:x:0:\n"), ("etc/shadow", "root:*:19000:0:99999:7:::\n"),
                           ("etc/gshadow", "root:*::\n")):
            raw = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(raw), 0o644
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def _build(tmp_path: Path, stages: list[dict], decoy: Path) -> tuple[dict, Path]:
    return build_on_tarball(tmp_path, _hostile_tarball(decoy), stages)


WRITES = [
    {"type": "org.osbuild.mkdir", "options": {"paths": [
        {"path": f"/var/run/{PROBE}-dir", "mode": 0o750},
        {"path": f"/var/lock/{PROBE}/deep", "parents": True}]}},
    {"type": "org.osbuild.truncate", "options": {"filename": f"/var/run/{PROBE}-trunc", "size": "1K"}},
    {"type": "org.osbuild.chmod", "options": {"items": {f"/var/run/{PROBE}-dir": {"mode": "0700"}}}},
    {"type": "org.osbuild.chown", "options": {"items": {f"/var/run/{PROBE}-trunc": {"user": "root",
                                                                                    "group": 0}}}},
    {"type": "org.osbuild.ln", "options": {"paths": [
        {"target": "/etc/shadow", "link_name": f"tree:///var/run/{PROBE}-ln", "symbolic": True}]}},
    {"type": "org.osbuild.systemd.unit.create", "options": {
        "filename": f"{PROBE}.service", "unit-type": "system", "unit-path": "etc",
        "config": {"Unit": {"Description": "probe"}, "Service": {"Type": "oneshot", "ExecStart": ["/bin/true"]},
                   "Install": {"WantedBy": ["multi-user.target"]}}}},
    {"type": "org.osbuild.fstab", "options": {"filesystems": [
        {"uuid": "0194fdc2-fa2f-4cc0-81d3-ff12045b73c8", "vfs_type": "ext4", "path": "/"}]}},
]


@pytest.mark.usefixtures("require_root")
def test_stages_write_through_var_run_into_the_tree(tmp_path: Path) -> None:
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    before = _host_run()
    # systemd.unit.create with unit-path etc lands under /etc/systemd: make that a host-bound link
    stages = [{"type": "org.osbuild.mkdir", "options": {"paths": [{"path": "/etc/systemd"}]}},
              {"type": "org.osbuild.ln", "options": {"paths": [
                  {"target": "/run/systemd-probe", "link_name": "tree:///etc/systemd/system", "symbolic": True}]}},
              {"type": "org.osbuild.mkdir", "options": {"paths": [{"path": "/run/systemd-probe"}]}},
              # etc/fstab -> <decoy>/fstab: give its in-tree target a directory
              {"type": "org.osbuild.mkdir", "options": {"paths": [{"path": str(decoy), "parents": True}]}},
              *WRITES]
    res, tree = _build(tmp_path, stages, decoy)
    assert res["success"] is True, json.dumps(res)[-3000:]
    run = tree / "run"
    assert (run / f"{PROBE}-dir").is_dir() and os.stat(run / f"{PROBE}-dir").st_mode & 0o777 == 0o700
    assert (run / f"lock/{PROBE}/deep").is_dir()
    assert os.path.getsize(run / f"{PROBE}-trunc") == 1024
    assert os.readlink(run / f"{PROBE}-ln") == "/etc/shadow"
    assert "ExecStart=/bin/true" in (run / f"systemd-probe/{PROBE}.service").read_text()
    # etc/fstab -> <decoy>/fstab: written at that path inside the tree
    assert "0194fdc2" in (tree / str(decoy).lstrip("/") / "fstab").read_text()
    assert os.listdir(decoy) == []
    assert _host_run() == before
    assert not any(n.startswith(PROBE) for n in os.listdir("/run"))
    assert not os.path.exists("/run/systemd-probe")


@pytest.mark.usefixtures("require_root")
def test_copy_into_symlinked_destination_stays_in_tree(tmp_path: Path) -> None:
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "fstab").write_text("host fstab\n")
    before = _host_run()
    copy = {"type": "org.osbuild.copy", "inputs": {}, "options": {"paths": [
        {"from": "tree:///etc/passwd", "to": f"tree:///var/run/{PROBE}-copied"},
        {"from": "tree:///etc/group", "to": "tree:///etc/fstab"}]}}
    # etc/fstab -> <decoy>/fstab, whose directory does not exist in the tree: refused, path named
    res, _ = _build(tmp_path, [copy], decoy)
    assert res["success"] is False
    assert f"{str(decoy).lstrip('/')}/fstab" in json.dumps(res)
    assert (decoy / "fstab").read_text() == "host fstab\n"
    # with the directory in the tree, the file lands there; a merge over the link replaces it
    stages = [{"type": "org.osbuild.mkdir", "options": {"paths": [{"path": str(decoy), "parents": True},
                                                                 {"path": "/src"}]}},
              copy,
              {"type": "org.osbuild.copy", "inputs": {}, "options": {"paths": [
                  {"from": "tree:///etc/shadow", "to": "tree:///src/fstab"},
                  {"from": "tree:///src/", "to": "tree:///etc/"}]}}]
    res, tree = _build(tmp_path, stages, decoy)
    assert res["success"] is True, json.dumps(res)[-3000:]
    assert (tree / f"run/{PROBE}-copied").read_text().startswith("root:x:0:0")
    assert (tree / str(decoy).lstrip("/") / "fstab").read_text() == "root:x:0:\n"
    assert not os.path.islink(tree / "etc/fstab")  # the merge replaced the planted link
    assert (tree / "etc/fstab").read_text().startswith("root:*:")
    # etc/fstab pointed at a host file: that file is untouched
    assert (decoy / "fstab").read_text() == "host fstab\n"
    assert _host_run() == before


@pytest.mark.usefixtures("require_root")
def test_user_home_under_var_run_stays_in_tree(tmp_path: Path) -> None:
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    before = _host_run()
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAItreepathsTestKey test@osbuildd"
    stages = [{"type": "org.osbuild.users", "options": {"users": {
        "probe": {"uid": 1600, "home": f"/var/run/{PROBE}-home", "key": key, "shell": "/bin/sh"}}}}]
    res, tree = _build(tmp_path, stages, decoy)
    assert res["success"] is True, json.dumps(res)[-3000:]
    # useradd --root chroots: the home is made at the tree's /run; the keys follow it there
    home = tree / f"run/{PROBE}-home"
    assert os.stat(home).st_uid == 1600
    auth = home / ".ssh/authorized_keys"
    assert auth.read_text() == key + "\n"
    assert os.stat(auth).st_uid == 1600 and os.stat(auth).st_mode & 0o777 == 0o600
    assert _host_run() == before
    assert not any(n.startswith(PROBE) for n in os.listdir("/run"))


def test_grub_config_and_masked_generator_stay_in_tree(hostile) -> None:
    """Stage code called directly (as stagerun does): a grub.cfg symlink to a host file and a
    generator name that climbs with ``..`` are handled inside the tree."""
    from osbuildd.engine.stages import org_osbuild_systemd, org_osbuildd_grub_config

    tree, decoy = hostile
    (tree / "boot/grub").mkdir(parents=True)
    (tree / "boot/vmlinuz-6.1.0-99-amd64").write_text("k")
    (tree / "usr/lib/grub/i386-pc").mkdir(parents=True)
    (tree / "usr/lib/grub/i386-pc/normal.mod").write_text("m")
    os.symlink(str(decoy / "passwd"), tree / "boot/grub/grub.cfg")
    args = StageArgs(tree=str(tree), options={"root_fs_uuid": "0194FDC2-FA2F-4CC0-81D3-FF12045B73C8",
                                              "platforms": ["i386-pc"]})
    # the link's target has no directory in the tree: refused, naming the path
    with pytest.raises(FileNotFoundError, match="inside the tree") as e:
        org_osbuildd_grub_config.main(args)
    assert e.value.filename == "/boot/grub/grub.cfg"
    _decoy_untouched(decoy)
    os.unlink(tree / "boot/grub/grub.cfg")
    org_osbuildd_grub_config.main(args)
    _decoy_untouched(decoy)
    cfg = tree / "boot/grub/grub.cfg"
    assert "0194fdc2" in cfg.read_text() and not cfg.is_symlink()
    (tree / "etc/systemd").mkdir()
    org_osbuild_systemd.main(StageArgs(tree=str(tree), options={
        "masked_generators": ["../../../../var/run/" + PROBE]}))
    assert os.readlink(tree / "run" / PROBE) == "/dev/null"
    assert not any(n.startswith(PROBE) for n in os.listdir("/run"))


def test_no_openat2_is_an_error_not_a_text_fallback(hostile, monkeypatch) -> None:
    from osbuildd.engine import stageapi

    tree, decoy = hostile
    monkeypatch.setattr(stageapi, "_SYS_OPENAT2", {})
    with pytest.raises(stageapi.TreePathError, match="openat2") as e:
        TreeRoot(str(tree)).write_text("/var/run/x", "x")
    assert e.value.filename == "/var/run/x"
    assert not (tree / "run/x").exists()
