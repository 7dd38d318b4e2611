"""Running ``osbuildd-engine`` as the runner does: a subprocess with the manifest on a path or stdin."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from testdata import data_file

MANIFESTS = Path(__file__).resolve().parent / "manifests"
ENGINE = [sys.executable, "-m", "osbuildd.engine.cli"]


def engine(*args: str, stdin: bytes | None = None, monitor_fd: bool = False,
           timeout: float = 900) -> tuple[subprocess.CompletedProcess[bytes], bytes]:
    """Run the engine; with ``monitor_fd`` the monitor goes to fd 3 (a pipe), as images does it."""
    if not monitor_fd:
        proc = subprocess.run([*ENGINE, *args], input=stdin, capture_output=True, timeout=timeout)
        return proc, b""
    r, w = os.pipe()
    try:
        p = subprocess.Popen([*ENGINE, *args, f"--monitor-fd={w}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, pass_fds=(w,))
        os.close(w)
        w = -1
        chunks: list[bytes] = []

        def drain() -> None:
            while data := os.read(r, 65536):
                chunks.append(data)

        t = threading.Thread(target=drain)
        t.start()
        out, err = p.communicate(stdin, timeout=timeout)
        t.join()
        return subprocess.CompletedProcess(p.args, p.returncode, out, err), b"".join(chunks)
    finally:
        if w >= 0:
            os.close(w)
        os.close(r)


def result_json(proc: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    assert proc.stdout.strip(), f"no JSON on stdout; stderr: {proc.stderr.decode()[-2000:]}"
    return json.loads(proc.stdout)


def parse_jsonseq(data: bytes) -> list[dict[str, Any]]:
    records = []
    for chunk in data.split(b"\x1e"):
        if chunk.strip():
            records.append(json.loads(chunk))
    return records


def tiny() -> dict[str, Any]:
    return json.loads(data_file("osbuild", "tiny-tar.manifest.json").read_text())


def build_on_tarball(tmp_path: Path, tarball: bytes, stages: list[dict[str, Any]]) -> tuple[dict[str, Any], Path]:
    """Run ``stages`` on a tree unpacked from ``tarball`` (one pipeline, exported): (result, tree)."""
    blob = tmp_path / "tree.tar"
    blob.write_bytes(tarball)
    checksum = "sha256:" + hashlib.sha256(tarball).hexdigest()
    untar = {"type": "org.osbuild.untar", "inputs": {"file": {"type": "org.osbuild.files",
             "origin": "org.osbuild.source", "references": [checksum]}}}
    manifest = {"version": "2", "sources": {"org.osbuild.curl": {"items": {checksum: {"url": blob.as_uri()}}}},
                "pipelines": [{"name": "tree", "stages": [untar, *stages]}]}
    out = tmp_path / "out"
    proc, _ = engine("--store", str(tmp_path / "store"), "--output-directory", str(out), "--export", "tree",
                     "--json", "-", stdin=json.dumps(manifest).encode())
    return result_json(proc), out / "tree"
