"""The shipped systemd units: systemd accepts them, and their names match what the daemon expects."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

from conftest import need_tool

from osbuildd.daemon import APIS


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in systemd
    parser.read_string(path.read_text())
    return parser


def test_units_verify(repo_root: Path, tmp_path: Path) -> None:
    analyze = need_tool("systemd-analyze")
    units = sorted((repo_root / "etc" / "systemd").iterdir())
    osbuildd = Path(sys.executable).with_name("osbuildd")
    for unit in units:
        # the real binary path of this checkout, so verify can check ExecStart= exists
        (tmp_path / unit.name).write_text(unit.read_text().replace("/usr/bin/osbuildd", str(osbuildd)))
    res = subprocess.run([analyze, "verify", "--man=no", *[u.name for u in units]], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stderr.strip() == "", res.stderr


def test_socket_names_match_daemon(repo_root: Path) -> None:
    sockets = {}
    for unit in (repo_root / "etc" / "systemd").glob("*.socket"):
        section = _unit(unit)["Socket"]
        assert section["Service"] == "osbuildd.service"
        sockets[section["FileDescriptorName"]] = section
    assert sorted(sockets) == sorted(APIS)
    weldr = sockets["weldr"]
    assert weldr["ListenStream"] == "/run/weldr/api.socket"
    assert (weldr["SocketMode"], weldr["SocketGroup"]) == ("0660", "weldr")
    service = _unit(repo_root / "etc" / "systemd" / "osbuildd.service")["Service"]
    assert service["Type"] == "notify" and service["ExecStart"].endswith(" serve")
