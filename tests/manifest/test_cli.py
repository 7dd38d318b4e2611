"""`osbuildd manifest` as a user runs it: a real process, real depsolve, JSON on stdout, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from osbuildd.manifest import schema

from .helpers import SCHEMAS
from .rpmrepo import build_repo


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "osbuildd.cli", "manifest", *args], capture_output=True,
                          text=True, timeout=600)


def test_debian_tar_manifest(tmp_path: Path, shared_state_dir: Path) -> None:
    bp = tmp_path / "bp.toml"
    bp.write_text('name = "cli"\nversion = "0.0.1"\n[[packages]]\nname = "tmux"\n'
                  '[customizations]\nhostname = "cli-host"\n')
    # a state dir of its own (one process per state dir) on the run's shared depsolve cache
    state = tmp_path / "state"
    state.mkdir()
    (state / "cache").symlink_to(shared_state_dir / "cache")
    args = ["--distro", "debian-12", "--type", "tar", "--arch", "x86_64", "--blueprint", str(bp),
            "--state-dir", str(state), "--seed", "5"]
    first = run(*args)
    assert first.returncode == 0, first.stderr
    m = json.loads(first.stdout)
    assert schema.validate(m, SCHEMAS) == []
    stages = [s for p in m["pipelines"] for s in p["stages"]]
    assert {"type": "org.osbuild.hostname", "options": {"hostname": "cli-host"}} in stages
    urls = [i["url"] for i in m["sources"]["org.osbuild.curl"]["items"].values()]
    assert any("/tmux_" in u for u in urls)
    second = run(*args)
    assert second.stdout == first.stdout            # same inputs, same bytes


def test_rpm_depsolve_failure_names_the_package(tmp_path: Path) -> None:
    repo = build_repo(tmp_path / "rpms")
    res = run("--distro", "fedora-43", "--type", "qcow2", "--arch", "x86_64", "--repo", f"file://{repo}",
              "--state-dir", str(tmp_path / "state"))
    assert res.returncode == 1
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "depsolve failed" in lines[0] and "dnf" in lines[0]


@pytest.mark.parametrize(("args", "needle"), [
    (["--distro", "nope-1", "--type", "qcow2"], "unknown distribution: nope-1"),
    (["--distro", "debian-12"], "--type"),
    (["--distro", "debian-12", "--type", "iso"], "unknown image type 'iso'"),
    (["--distro", "debian-12", "--type", "tar", "--arch", "sparc"], "unknown architecture 'sparc'"),
    (["--distro", "debian-12", "--type", "tar", "--repo", "not-a-url"], "--repo"),
    (["--distro", "debian-12", "--type", "tar", "--blueprint", "/nonexistent/bp.toml"], "--blueprint"),
    (["--distro", "debian-12", "--type", "tar", "--seed", "x"], "--seed"),
])
def test_bad_arguments_one_line_exit_2(args: list[str], needle: str) -> None:
    res = run(*args)
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr


@pytest.mark.parametrize(("content", "needle"), [
    ('name = "x"\nversion = "0.0.1"\n[customizations]\nfips = true\n', "customizations.fips"),
    ('name = "x"\nversion = "0.0.1"\n[[customizations.filesystem]]\nmountpoint = "/opt"\nminsize = 1024\n',
     "customizations.filesystem"),
    ('name = "x"\nversion = [', "blueprint"),
])
def test_bad_blueprint_exit_2(tmp_path: Path, content: str, needle: str) -> None:
    bp = tmp_path / "bp.toml"
    bp.write_text(content)
    res = run("--distro", "debian-12", "--type", "tar", "--blueprint", str(bp), "--state-dir", str(tmp_path))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr
