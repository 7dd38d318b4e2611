"""Cleanup: SIGTERM, SIGKILL and --stage-timeout in the middle of a stage that holds a mounted loop device.

The stage blocks for ever: ``cp`` opens a FIFO on the mounted ext4 file system for writing (no reader).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from .helpers import ENGINE, parse_jsonseq

pytestmark = pytest.mark.usefixtures("require_root")


def _inline(data: bytes) -> tuple[str, dict]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), {"encoding": "base64", "data": base64.b64encode(data).decode()}


def hanging_manifest() -> dict:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        fifo = tarfile.TarInfo("fifo")
        fifo.type = tarfile.FIFOTYPE
        tar.addfile(fifo)
    tar_sum, tar_item = _inline(buf.getvalue())
    pay_sum, pay_item = _inline(b"payload\n")
    loop = {"type": "org.osbuild.loopback", "options": {"filename": "disk.img"}}
    mount = [{"name": "root", "type": "org.osbuild.ext4", "source": "root", "target": "/"}]
    return {"version": "2", "sources": {"org.osbuild.inline": {"items": {tar_sum: tar_item, pay_sum: pay_item}}},
            "pipelines": [
                {"name": "fifo", "stages": [{"type": "org.osbuild.untar", "inputs": {"file": {
                    "type": "org.osbuild.files", "origin": "org.osbuild.source", "references": [tar_sum]}}}]},
                {"name": "image", "stages": [
                    {"type": "org.osbuild.truncate", "options": {"filename": "disk.img", "size": "33554432"}},
                    {"type": "org.osbuild.mkfs.ext4", "devices": {"device": loop},
                     "options": {"uuid": "2b8e9d7e-0d3c-4c52-9d1f-5a1f0e0b6a11"}},
                    {"type": "org.osbuild.copy", "devices": {"root": loop}, "mounts": mount,
                     "inputs": {"tree": {"type": "org.osbuild.tree", "origin": "org.osbuild.pipeline",
                                         "references": ["name:fifo"]}},
                     "options": {"paths": [{"from": "input://tree/", "to": "mount://root/"}]}},
                    {"type": "org.osbuild.copy", "devices": {"root": loop}, "mounts": mount,
                     "inputs": {"payload": {"type": "org.osbuild.files", "origin": "org.osbuild.source",
                                            "references": [pay_sum]}},
                     "options": {"paths": [{"from": f"input://payload/{pay_sum}", "to": "mount://root/fifo"}]}},
                ]}]}


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            mounts = Path(f"/proc/{entry}/mountinfo").read_text()
        except OSError:
            continue
        if text.encode() in cmd or text in mounts:
            found.append(int(entry))
    return found


def loops_of(text: str) -> list[str]:
    out = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if text in line]


class Running:
    """The engine running the hanging manifest, its monitor stream read in a thread."""

    def __init__(self, tmp: Path, *extra: str, session: bool = False) -> None:
        self.store = tmp / "store"
        r, w = os.pipe()
        self.proc = subprocess.Popen([*ENGINE, "--store", str(self.store), "--json", "--monitor=JSONSeqMonitor",
                                      f"--monitor-fd={w}", *extra, "-"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(w,), start_new_session=session)
        os.close(w)
        self.stream = b""
        self.reader = threading.Thread(target=self._read, args=(r,), daemon=True)
        self.reader.start()
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(hanging_manifest()).encode())
        self.proc.stdin.close()
        self.proc.stdin = None

    def _read(self, fd: int) -> None:
        while data := os.read(fd, 65536):
            self.stream += data
        os.close(fd)

    def wait_until_blocked(self) -> int:
        """Wait until the second copy stage is blocked with its file system mounted; its cp pid."""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read().decode() if self.proc.stderr else ""
            starts = [r for r in parse_jsonseq(self.stream.rsplit(b"\x1e", 1)[0])
                      if r.get("message") == "Starting module org.osbuild.copy"]
            if len(starts) == 2:
                for pid in processes_mentioning(str(self.store)):
                    try:
                        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
                    except OSError:
                        continue
                    if cmd[0] == b"cp" and b"mounts/fifo" in b" ".join(cmd) and state == "S":
                        return pid
            time.sleep(0.2)
        raise AssertionError("the stage never blocked")


def assert_clean(store: Path, running: Running) -> None:
    """Nothing of the build remains: processes, mounts in any namespace, loop devices."""
    deadline = time.monotonic() + 60  # the kernel tears namespaces and loop devices down asynchronously
    while time.monotonic() < deadline and (processes_mentioning(str(store)) or loops_of(str(store))):
        time.sleep(0.25)
    assert processes_mentioning(str(store)) == []
    assert loops_of(str(store)) == []
    assert str(store) not in Path("/proc/mounts").read_text()


@pytest.mark.parametrize("to_group", [False, True], ids=["engine", "process-group"])
def test_sigterm_cleans_up(tmp_path, to_group: bool) -> None:
    run = Running(tmp_path, session=to_group)
    cp = run.wait_until_blocked()
    # the build really holds a mount and a loop device now (else the checks below prove nothing)
    assert str(run.store) in Path(f"/proc/{cp}/mountinfo").read_text()
    assert loops_of(str(run.store))
    if to_group:  # what a terminal or a service manager does: every process of the group gets it
        os.killpg(run.proc.pid, signal.SIGTERM)
    else:
        run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(timeout=120) == 128 + signal.SIGTERM
    assert_clean(run.store, run)
    assert [p.name for p in (run.store / "tmp").iterdir()] == []


def test_sigkill_leaves_nothing_behind(tmp_path) -> None:
    run = Running(tmp_path)
    cp = run.wait_until_blocked()
    assert str(run.store) in Path(f"/proc/{cp}/mountinfo").read_text()
    run.proc.kill()
    run.proc.wait(timeout=60)
    assert_clean(run.store, run)
    # the scratch dir of the killed build is removed by the next engine using the store
    assert list((run.store / "tmp").glob("build-*"))
    subprocess.run([*ENGINE, "--store", str(run.store), "--json", "-"], input=json.dumps(
        {"version": "2", "pipelines": [{"name": "empty", "stages": [{"type": "org.osbuild.noop"}]}]}).encode(),
        capture_output=True, check=True)
    assert list((run.store / "tmp").glob("build-*")) == []


def test_stage_timeout(tmp_path) -> None:
    run = Running(tmp_path, "--stage-timeout", "20")
    run.wait_until_blocked()
    out, _ = run.proc.communicate(timeout=300)
    assert run.proc.returncode == 1
    res = json.loads(out)
    assert res["error"]["type"] == "org.osbuild.error.stage"
    stage = res["error"]["details"]["stage"]
    assert stage["type"] == "org.osbuild.copy" and "timed out" in stage["output"]
    assert res["log"]["image"][-1]["success"] is False
    assert_clean(run.store, run)
