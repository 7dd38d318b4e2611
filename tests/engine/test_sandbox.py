"""Every stage runs in a bubblewrap sandbox: real builds with a probe planted in the tree.

The probe (``data/sandbox_probe.c``, compiled static here) is the command org.osbuild.pki.update-ca-trust
runs chrooted in the tree. It leaves the chroot, as a hostile package or blueprint-planted binary could,
and reports what it can reach; the test checks the host afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import need_tool

from osbuildd.engine import bwrap

from .helpers import ENGINE, engine, result_json

pytestmark = pytest.mark.usefixtures("require_root")
PROBE_SRC = Path(__file__).resolve().parent / "data" / "sandbox_probe.c"
HOST_PROBES = ["/etc/osbuildd-probe", "/usr/osbuildd-probe", "/run/osbuildd-probe", "/root/osbuildd-probe"]


def _inline(data: bytes) -> tuple[str, dict]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), {"encoding": "base64", "data": base64.b64encode(data).decode()}


def probe_manifest(probe: bytes) -> dict:
    ref, item = _inline(probe)
    return {"version": "2", "sources": {"org.osbuild.inline": {"items": {ref: item}}}, "pipelines": [{
        "name": "tree", "stages": [
            {"type": "org.osbuild.mkdir", "options": {"paths": [{"path": "/usr/bin", "parents": True}]}},
            {"type": "org.osbuild.copy",
             "inputs": {"probe": {"type": "org.osbuild.files", "origin": "org.osbuild.source", "references": {ref: {}}}},
             "options": {"paths": [{"from": f"input://probe/{ref}", "to": "tree:///usr/bin/update-ca-trust"}]}},
            {"type": "org.osbuild.chmod", "options": {"items": {"/usr/bin/update-ca-trust": {"mode": "0755"}}}},
            {"type": "org.osbuild.pki.update-ca-trust", "options": {}},
        ]}]}


@pytest.fixture(scope="module")
def probe_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    tmp = tmp_path_factory.mktemp("sandbox")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    for p in HOST_PROBES:
        assert not os.path.lexists(p), f"{p} exists before the build"
    try:
        subprocess.run([need_tool("gcc"), "-static", "-O1", f"-DPORT={port}", "-o", str(tmp / "probe"), str(PROBE_SRC)],
                       check=True)
        proc, _ = engine("--store", str(tmp / "store"), "--output-directory", str(tmp / "out"), "--export", "tree",
                         "--json", "-", stdin=json.dumps(probe_manifest((tmp / "probe").read_bytes())).encode())
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]
        res = result_json(proc)
    finally:
        listener.close()
    output = res["log"]["tree"][3]["output"]
    # writes the probe made in its private /run and /root vanish; none reached the host
    for p in HOST_PROBES:
        assert not os.path.lexists(p), f"the stage wrote {p} on the host"
    report = dict(line.split("\t", 1) for line in output.splitlines() if "\t" in line)
    return report, tmp / "out"


def test_probe_left_the_chroot(probe_build) -> None:
    report, _ = probe_build
    assert report["escaped"] == "yes"  # so every check below is of the sandbox, not of the tree


def test_host_paths_read_only_or_private(probe_build) -> None:
    report, _ = probe_build
    assert report["/etc/osbuildd-probe"] == "Read-only file system"
    assert report["/usr/osbuildd-probe"] == "Read-only file system"
    assert report["/run/osbuild/lib/osbuildd/probe"] == "Read-only file system"
    # /run and /root are the sandbox's own tmpfs: the write works and lands nowhere (checked in the fixture)
    assert report["/run/osbuildd-probe"] == "ok"
    assert report["/root/osbuildd-probe"] == "ok"
    assert report["hostpath /var/lib"] == "absent"
    assert report["hostpath /work"] == "absent"


def test_tree_writable(probe_build) -> None:
    report, out = probe_build
    assert report["/run/osbuild/tree/probe-tree-ok"] == "ok"
    assert (out / "tree" / "probe-tree-ok").read_text() == "probe\n"


def test_proc_shows_only_the_sandbox(probe_build) -> None:
    report, _ = probe_build
    # bwrap's init, the stage's python, the probe (chroot exec'd into it)
    assert 1 <= int(report["procs"]) <= 4, report["procs"]


def test_no_network(probe_build) -> None:
    report, _ = probe_build
    # the test's listener on 127.0.0.1 is in the host's network namespace, not the stage's
    assert report["connect"] in ("Connection refused", "Network is unreachable"), report["connect"]


def test_inputs_read_only_tree_writable(tmp_path: Path) -> None:
    """The very argv the executor uses, with an input and a tree: the input refuses writes."""
    for d in ("tree", "api", "mounts", "input"):
        (tmp_path / d).mkdir()
    (tmp_path / "input" / "f").write_text("x")
    box = bwrap.Sandbox(root=None, tree=tmp_path / "tree", api=tmp_path / "api", mounts=tmp_path / "mounts",
                        inputs={"in": tmp_path / "input"})
    script = ("import os\n"
              "for p in ('/run/osbuild/inputs/in/f', '/run/osbuild/inputs/in/new', '/run/osbuild/tree/t'):\n"
              "    try:\n        open(p, 'w').write('y'); print(p, 'ok')\n"
              "    except OSError as e:\n        print(p, e.strerror)\n")
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", *box.argv(bwrap.require()),
                          "/usr/bin/python3", "-c", script], capture_output=True, text=True, check=True).stdout
    assert "/run/osbuild/inputs/in/f Read-only file system" in out
    assert "/run/osbuild/inputs/in/new Read-only file system" in out
    assert "/run/osbuild/tree/t ok" in out
    assert (tmp_path / "input" / "f").read_text() == "x"
    assert (tmp_path / "tree" / "t").read_text() == "y"


def test_engine_refuses_to_build_without_bwrap(tmp_path: Path) -> None:
    m = {"version": "2", "sources": {}, "pipelines": [{"name": "tree", "stages": [
        {"type": "org.osbuild.mkdir", "options": {"paths": [{"path": "/x"}]}}]}]}
    env = dict(os.environ, PATH=str(tmp_path))  # no bwrap on PATH
    proc = subprocess.run([*ENGINE, "--store", str(tmp_path / "store"), "-"], input=json.dumps(m).encode(),
                          capture_output=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert b"bwrap (bubblewrap) is not installed" in proc.stderr
    assert not (tmp_path / "store" / "objects").exists() or not any((tmp_path / "store" / "objects").iterdir())
