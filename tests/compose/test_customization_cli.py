"""`osbuildd build` / `osbuildd manifest` refuse a bad hostname before anything runs: one line on
stderr naming the field, exit 2, no output written."""

from __future__ import annotations

import subprocess
import sys

import pytest

BP = 'name = "probe"\nversion = "0.0.1"\n[customizations]\nhostname = "-bad host-"\n'


@pytest.mark.parametrize("command", ["build", "manifest"])
def test_bad_hostname_exit_2(tmp_path, command):
    bp = tmp_path / "bp.toml"
    bp.write_text(BP)
    args = [command, "--state-dir", str(tmp_path / "s"), "--distro", "debian-12", "--type", "tar",
            "--blueprint", str(bp)]
    if command == "build":
        args += ["--output", str(tmp_path / "o")]
    p = subprocess.run([sys.executable, "-m", "osbuildd.cli", *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"osbuildd {command}: "), p.stderr
    assert "customizations.hostname: invalid hostname '-bad host-'" in lines[0]
    assert lines[0].count("customizations.hostname") == 1          # named once, not twice
    assert p.stdout == "" and not (tmp_path / "o").exists()
