"""`osbuildd build` argument handling: one line naming the bad value, exit 2 (no build started)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest


def run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "osbuildd.cli", "build", "--state-dir", str(tmp_path / "s"),
                           "--output", str(tmp_path / "o"), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args,needle", [
    (["--distro", "debian-12"], "--type"),
    (["--distro", "debian-99", "--type", "qcow2"], "debian-99"),
    (["--distro", "debian-12", "--type", "floppy"], "floppy"),
    (["--distro", "debian-12", "--type", "qcow2", "--arch", "mips"], "mips"),
    (["--distro", "debian-12", "--type", "qcow2", "--size", "lots"], "--size"),
    (["--distro", "debian-12", "--type", "qcow2", "--blueprint", "/nonexistent.toml"], "/nonexistent.toml"),
    (["--distro", "debian-12", "--type", "qcow2", "--frobnicate"], "--frobnicate"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, needle):
    p = run(tmp_path, *args)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("osbuildd build: error:")
    assert p.stdout == ""
    assert not (tmp_path / "o").exists()


def test_bad_blueprint_names_the_field(tmp_path):
    bp = tmp_path / "bp.toml"
    bp.write_text('name = "x"\nversion = "not-semver"\n')
    p = run(tmp_path, "--distro", "debian-12", "--type", "qcow2", "--blueprint", str(bp))
    assert p.returncode == 2 and "version" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_unresolvable_package_fails_at_once(tmp_path, shared_state_dir):
    """Depsolve runs before anything is queued: one line with the solver's reason, exit 2, no build."""
    (tmp_path / "s").mkdir()
    os.symlink(shared_state_dir / "cache", tmp_path / "s" / "cache")   # a warm apt cache
    bp = tmp_path / "bp.toml"
    bp.write_text('name = "x"\nversion = "0.0.1"\n[[packages]]\nname = "no-such-package-xyz"\n')
    p = run(tmp_path, "--distro", "debian-12", "--type", "tar", "--blueprint", str(bp))
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("osbuildd build: error:"), p.stderr
    assert "no-such-package-xyz" in lines[0] and "not found" in lines[0]
    assert p.stdout == "" and not (tmp_path / "o").exists()
    with sqlite3.connect(tmp_path / "s" / "osbuildd.db") as db:
        assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
