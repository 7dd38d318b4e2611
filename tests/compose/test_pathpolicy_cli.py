"""`osbuildd build` / `osbuildd manifest` with a blueprint that breaks upstream's path policy: one line
on stderr naming the path, exit 2, no compose or job stored, no output written."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

BLUEPRINTS = {
    "directory": ('[[customizations.directories]]\npath = "/var/run/probe-dir"\n',
                  'the following custom directories are not allowed: ["/var/run/probe-dir"]'),
    "file": ('[[customizations.files]]\npath = "/etc/fstab"\ndata = "x"\n',
             'the following custom files are not allowed: ["/etc/fstab"]'),
    "mountpoint": ('[[customizations.filesystem]]\nmountpoint = "/usr/local"\nminsize = "1 GiB"\n',
                   'The following custom mountpoints are not supported ["/usr/local"]'),
    "home": ('[[customizations.user]]\nname = "u"\nhome = "/proc/u"\n',
             'the following user home directories are not allowed: ["/proc/u"]'),
}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "osbuildd.cli", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("command", ["build", "manifest"])
@pytest.mark.parametrize("kind", sorted(BLUEPRINTS))
def test_policy_violation_one_line_exit_2(tmp_path, command, kind):
    toml, message = BLUEPRINTS[kind]
    bp = tmp_path / "bp.toml"
    bp.write_text('name = "probe"\nversion = "0.0.1"\n' + toml)
    state = tmp_path / "s"
    args = [command, "--state-dir", str(state), "--distro", "debian-12", "--type", "qcow2", "--blueprint", str(bp)]
    if command == "build":
        args += ["--output", str(tmp_path / "o")]
    p = _cli(*args)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"osbuildd {command}: ") and message in lines[0], p.stderr
    assert p.stdout == ""
    assert not (tmp_path / "o").exists()
    if (state / "osbuildd.db").exists():
        with sqlite3.connect(state / "osbuildd.db") as db:
            for table in ("jobs", "composes"):
                assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_nul_byte_path_refused_when_read(tmp_path):
    bp = tmp_path / "bp.json"
    bp.write_text('{"name": "probe", "customizations": {"directories": [{"path": "/etc/a\\u0000b"}]}}')
    p = _cli("manifest", "--state-dir", str(tmp_path / "s"), "--distro", "debian-12", "--type", "qcow2",
             "--blueprint", str(bp))
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and 'path "/etc/a\\x00b" must not contain NUL bytes' in lines[0], p.stderr
