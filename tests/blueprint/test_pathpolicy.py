"""Upstream's path policy (osbuild/images pkg/pathpolicy, pkg/policies, pkg/blueprint checks): the
allowed and denied paths and the error texts, plus our refusal of NUL bytes and over-long paths."""

from __future__ import annotations

import pytest

from osbuildd.blueprint import Blueprint, BlueprintError
from osbuildd.blueprint import pathpolicy as pp

LONG = "/" + "a" * 4096            # 4097 bytes
LONG_MSG = ('path "/' + "a" * 63 + '"... is 4097 bytes long, longer than the maximum of 4095')
NUL_MSG = 'path "/etc/a\\x00b" must not contain NUL bytes'


def _files(p: str) -> str:
    return f'the following custom files are not allowed: ["{p}"]'


def _dirs(p: str) -> str:
    return f'the following custom directories are not allowed: ["{p}"]'


def _mps(p: str) -> str:
    return f'The following custom mountpoints are not supported ["{p}"]'


def _homes(p: str) -> str:
    return f'the following user home directories are not allowed: ["{p}"]'


CASES = [
    # (kind, path, expected message or None when allowed)
    ("file", "/etc/systemd/system/x.service", None),
    ("file", "/etc/motd", None),
    ("file", "/var/lib/x", None),
    ("file", "/root/.bashrc", None),
    ("file", "/etc/fstab", _files("/etc/fstab")),
    ("file", "/etc/passwd", _files("/etc/passwd")),
    ("file", "/etc/shadow", _files("/etc/shadow")),
    ("file", "/etc/group", _files("/etc/group")),
    ("file", "/etc/fstab.d", None),                       # whole components only
    ("file", "/var/run/x", _files("/var/run/x")),
    ("file", "/var/lock/x", None),                        # upstream denies /var/lock for mountpoints only
    ("file", "/run/x", _files("/run/x")),
    ("file", "/proc/x", _files("/proc/x")),
    ("file", "/sys/x", _files("/sys/x")),
    ("file", "/dev/x", _files("/dev/x")),
    ("file", "/boot/x", _files("/boot/x")),
    ("file", "/usr/bin/x", _files("/usr/bin/x")),
    ("file", "/usr/local/bin/x", None),                   # /usr/local is carved out of /usr
    ("file", "/usr", _files("/usr")),
    ("file", "/tmp/x", _files("/tmp/x")),
    ("file", "/var/tmp/x", _files("/var/tmp/x")),
    ("file", "/efi/x", _files("/efi/x")),
    ("file", "/etc/../x", _files("/etc/../x")),           # not canonical
    ("file", "/etc/x/", _files("/etc/x/")),               # trailing slash: not canonical
    ("file", "/etc//x", _files("/etc//x")),
    ("file", "etc/x", _files("etc/x")),                   # relative
    ("file", "/etc/a\x00b", NUL_MSG),
    ("file", LONG, LONG_MSG),
    ("dir", "/etc/x", None),
    ("dir", "/etc/fstab", None),                          # only files are denied there
    ("dir", "/opt/app", None),
    ("dir", "/usr/local/share/x", None),
    ("dir", "/usr/share/x", _dirs("/usr/share/x")),
    ("dir", "/var/run/x", _dirs("/var/run/x")),
    ("dir", "/var/lock/x", None),
    ("dir", "/run/x", _dirs("/run/x")),
    ("dir", "/proc/x", _dirs("/proc/x")),
    ("dir", "/sys/x", _dirs("/sys/x")),
    ("dir", "/dev/x", _dirs("/dev/x")),
    ("dir", "/boot/x", _dirs("/boot/x")),
    ("dir", "/lost+found", _dirs("/lost+found")),
    ("dir", "/sysroot/x", _dirs("/sysroot/x")),
    ("dir", "/etc/../x", _dirs("/etc/../x")),
    ("dir", "x", _dirs("x")),
    ("dir", "/a\x00", 'path "/a\\x00" must not contain NUL bytes'),
    ("dir", LONG, LONG_MSG),
    ("dir", "/" + "b" * 256, 'path "/' + "b" * 199 + '" has a component longer than the maximum of 255 bytes'),
    ("home", "/home/u", None),
    ("home", "/var/home/u", None),
    ("home", "/home/u/", None),                           # GetUsers drops the trailing slash
    ("home", "/var/run/u", _homes("/var/run/u")),
    ("home", "/proc/u", _homes("/proc/u")),
    ("home", "/tmp/u", _homes("/tmp/u")),
    ("home", "home/u", _homes("home/u")),
    ("mount", "/", None),
    ("mount", "/custom", None),
    ("mount", "/home", None),
    ("mount", "/var", None),
    ("mount", "/var/log", None),
    ("mount", "/boot", None),
    ("mount", "/usr", None),                              # exact match only
    ("mount", "/usr/local", _mps("/usr/local")),
    ("mount", "/var/run", _mps("/var/run")),
    ("mount", "/var/lock", _mps("/var/lock")),
    ("mount", "/etc", _mps("/etc")),
    ("mount", "/etc/x", _mps("/etc/x")),
    ("mount", "/boot/efi", _mps("/boot/efi")),
    ("mount", "/run", _mps("/run")),
    ("mount", "/proc", _mps("/proc")),
    ("mount", "/lib64", _mps("/lib64")),
    ("mount", "/lost+found", _mps("/lost+found")),
    ("mount", "/sysroot", _mps("/sysroot")),
    ("mount", "custom", _mps("custom")),
]

CHECKS = {
    "file": lambda p: pp.check_file_customizations_policy([p]),
    "dir": lambda p: pp.check_directory_customizations_policy([p]),
    "home": lambda p: pp.check_home_directories_policy([(0, p)]),
    "mount": lambda p: pp.check_mountpoints_policy([p]),
}
FIELDS = {"file": "customizations.files[0].path", "dir": "customizations.directories[0].path",
          "home": "customizations.user[0].home", "mount": "customizations.filesystem[0].mountpoint"}


def test_table_is_big_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("kind,path,expected", CASES, ids=[f"{k}:{p[:40]!r}" for k, p, _ in CASES])
def test_policy_table(kind, path, expected):
    if expected is None:
        CHECKS[kind](path)
        return
    with pytest.raises(BlueprintError) as exc:
        CHECKS[kind](path)
    assert exc.value.message == expected
    assert exc.value.field == FIELDS[kind]


@pytest.mark.parametrize("path,message", [
    ("", "path must be absolute"),
    ("etc", "path must be absolute"),
    ("/etc/", "path must be canonical"),
    ("/etc/./x", "path must be canonical"),
    ("/var/run", "path '/var/run ' is not allowed"),   # upstream's stray space, kept
    ("/usr/x", "path '/usr/x ' is not allowed"),
])
def test_single_check_messages(path, message):
    with pytest.raises(pp.PathPolicyError, match="^" + message.replace(".", r"\.") + "$"):
        pp.MOUNTPOINT_POLICIES.check(path)


def test_all_offenders_are_listed_in_go_quoting():
    with pytest.raises(BlueprintError) as exc:
        pp.check_file_customizations_policy(["/etc/ok", "/etc/fstab", "/run/\u00e9\n"])
    assert exc.value.message == 'the following custom files are not allowed: ["/etc/fstab" "/run/\\u00e9\\n"]'
    assert exc.value.field == "customizations.files[1].path"


def test_disk_mountpoints():
    disk = {"partitions": [{"mountpoint": "/data"}, {"mountpoint": "/usr/x"},
                           {"logical_volumes": [{"mountpoint": "/run"}, {"mountpoint": "/srv"}]}]}
    with pytest.raises(BlueprintError) as exc:
        pp.check_disk_mountpoints_policy(disk)
    assert exc.value.message == ("The following errors occurred while setting up custom mountpoints: "
                                 "path '/usr/x ' is not allowed; path '/run ' is not allowed")
    assert exc.value.field == "customizations.disk.partitions[1].mountpoint"
    pp.check_disk_mountpoints_policy({"partitions": [{"mountpoint": "/"}, {"subvolumes": [{"mountpoint": "/home"}]}]})
    # an ESP may be a partition of a disk customization (MountpointPoliciesDisk), not a filesystem one
    pp.check_disk_mountpoints_policy({"partitions": [{"mountpoint": "/boot/efi"}]})


def test_dir_file_structure():
    with pytest.raises(BlueprintError, match=r"^duplicate files / directory customization paths: \[/a\]$"):
        pp.validate_dir_file_customizations(["/a"], ["/a"])
    with pytest.raises(BlueprintError) as exc:
        pp.validate_dir_file_customizations(["/a"], ["/a/f", "/a/f/g"])
    assert exc.value.message == ("the following filesystem nodes are parents of another node and are not "
                                 "directories: [/a/f/g]")
    pp.validate_dir_file_customizations(["/a", "/a/b"], ["/a/b/c"])


@pytest.mark.parametrize("path,message", [
    ("etc/x", "path 'etc/x' must be absolute"),
    ("/etc/x/", "path '/etc/x/' must not end with a slash"),
    ("/etc/../x", "path '/etc/../x' must be canonical"),
    ("/etc/a\u0000b", NUL_MSG),
    (LONG, LONG_MSG),
])
def test_parse_time_checks(path, message):
    # what blueprints/new answers (upstream validates files/directories while decoding)
    bp = {"name": "x", "customizations": {"files": [{"path": path}]}}
    with pytest.raises(BlueprintError) as exc:
        Blueprint.from_json(bp)
    assert exc.value.message == message


def test_denied_paths_parse_but_fail_when_checked():
    # upstream takes /etc/fstab at push time and refuses it when the manifest is made
    bp = Blueprint.from_json({"name": "x", "customizations": {"files": [{"path": "/etc/fstab"}],
                                                              "directories": [{"path": "/var/run/d"}]}})
    with pytest.raises(BlueprintError) as exc:
        pp.check_customizations(bp.to_dict()["customizations"])
    assert exc.value.message == _dirs("/var/run/d")   # directories first, as upstream's checkOptions
