"""Real Debian 12 composes: request -> depsolve (deb.debian.org) -> manifest -> osbuildd-engine -> artifact.

The qcow2 of the example blueprint is built once per run (module fixture) on the shared store; the
`osbuildd build` test then reuses that store with the same seed, so it does not bootstrap again.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from testdata import OSBUILD

from osbuildd.blueprint import Blueprint
from osbuildd.compose import ComposeRequest
from osbuildd.config import Config
from osbuildd.executor import start_local
from osbuildd.services import Services

from .helpers import NOTHING, leftovers, until, wait_state

pytestmark = pytest.mark.build
SEED = 20261125


def state_on_shared_store(path: Path, shared_state_dir: Path) -> Path:
    """A fresh state dir (own db, results, tmp) whose store/ and cache/ are the run's shared ones."""
    path.mkdir(parents=True, exist_ok=True)
    for sub in ("store", "cache"):
        (path / sub).symlink_to(shared_state_dir / sub)
    return path


def example(repo_root: Path, **extra) -> Blueprint:
    bp = Blueprint.from_toml((repo_root / "examples" / "debian-qcow2.toml").read_text())
    if extra:
        bp = Blueprint.from_json({**bp.to_dict(), **extra})
    bp.initialize()
    return bp


async def open_services(state: Path, **builder) -> Services:
    config = Config.embedded(state)
    for k, v in builder.items():
        setattr(config.builder, k, v)
    s = await Services.open(config)
    await start_local(s)
    return s


@pytest.fixture(scope="module")
def qcow2_compose(tmp_path_factory, shared_state_dir, repo_root, require_root):
    """Build the example qcow2 once, watching it from outside while it runs."""
    state = state_on_shared_store(tmp_path_factory.mktemp("compose") / "state", shared_state_dir)
    watched: dict = {"percents": [], "stage_logs_while_running": {}}

    async def run() -> dict:
        s = await open_services(state)
        try:
            cid = await s.compose.start(ComposeRequest(
                distro="debian-12", arch="x86_64", image_type="qcow2", blueprint=example(repo_root),
                seed=SEED, origin="test"))
            stages = state / "results" / cid / "logs" / "stages"
            async with asyncio.timeout(1500):
                while (c := await s.compose.get(cid)).state in ("waiting", "running"):
                    if c.progress and c.state == "running":
                        watched["percents"].append(c.progress["percent"])
                    if c.state == "running" and stages.is_dir():
                        for f in stages.glob("*.log"):
                            text = f.read_text(errors="replace")
                            if text and (await s.compose.get(cid)).state == "running":
                                watched["stage_logs_while_running"][f.name] = text
                    await asyncio.sleep(0.5)
            return {"compose": c, "state": state, **watched}
        finally:
            await s.close()

    return asyncio.run(run())


def test_compose_finishes_with_a_qcow2(qcow2_compose):
    c = qcow2_compose["compose"]
    assert c.state == "finished", c.error
    assert c.weldr_status == "FINISHED"
    assert c.image_path is not None and c.image_path.name == c.image_filename
    with open(c.image_path, "rb") as f:
        assert f.read(4) == b"QFI\xfb"   # qcow2 magic
    assert c.manifest and c.manifest["version"] == "2"
    names = {p.name for p in c.packages}
    assert {"openssh-server", "curl", "linux-image-amd64"} <= names
    assert c.result["success"] is True and c.result["osbuild_output"]["success"] is True


def test_progress_only_moves_forward_to_100(qcow2_compose):
    pcts = qcow2_compose["percents"]
    assert len(pcts) > 3
    assert pcts == sorted(pcts)
    assert qcow2_compose["compose"].progress["percent"] == 100.0


def test_stage_logs_readable_during_and_after(qcow2_compose):
    c = qcow2_compose["compose"]
    during = qcow2_compose["stage_logs_while_running"]
    assert during, "no per-stage log was readable while the build ran"
    for name, text in during.items():
        after = (c.logs_dir / "stages" / name).read_text(errors="replace")
        assert after.startswith(text)   # the log only grew
    assert "Finished module org.osbuild.qemu" in c.log_path.read_text()


def test_nothing_left_behind(qcow2_compose):
    assert leftovers(qcow2_compose["state"]) == NOTHING


def _different(repo_root: Path, pkg: str) -> Blueprint:
    # another package set: a new os tree, so the bootstrap really runs (no checkpoint hit)
    base = example(repo_root)
    return Blueprint.from_json({**base.to_dict(), "packages": [{"name": pkg}]})


async def test_cancel_during_build_stage(tmp_path, shared_state_dir, repo_root, qcow2_compose):
    state = state_on_shared_store(tmp_path / "state", shared_state_dir)
    s = await open_services(state)
    try:
        cid = await s.compose.start(ComposeRequest(
            distro="debian-12", arch="x86_64", image_type="qcow2", blueprint=_different(repo_root, "less"),
            seed=SEED, origin="test"))
        async with asyncio.timeout(600):
            while True:
                c = await s.compose.get(cid)
                if c.state == "running" and c.progress and c.progress.get("stage"):
                    break
                assert c.state in ("waiting", "running"), c.error
                await asyncio.sleep(0.2)
        stage = c.progress["stage"]
        await asyncio.sleep(2)
        await s.compose.cancel(cid)
        c = await wait_state(s, cid, {"canceled", "failed", "finished"}, 120)
        assert c.state == "canceled", (stage, c.error)
        await until(lambda: leftovers(state) == NOTHING, 60)
        assert not (state / "results" / cid / c.image_filename).exists()
    finally:
        await s.close()


async def test_stage_timeout(tmp_path, shared_state_dir, repo_root, qcow2_compose):
    state = state_on_shared_store(tmp_path / "state", shared_state_dir)
    s = await open_services(state, stage_timeout=3)
    try:
        cid = await s.compose.start(ComposeRequest(
            distro="debian-12", arch="x86_64", image_type="qcow2", blueprint=_different(repo_root, "file"),
            seed=SEED, origin="test"))
        c = await wait_state(s, cid, {"canceled", "failed", "finished"}, 900)
        assert c.state == "failed" and "exceeded the stage timeout of 3s" in c.error["reason"], c.error
        await until(lambda: leftovers(state) == NOTHING, 60)
    finally:
        await s.close()


def test_osbuildd_build_cli_from_clean_state(tmp_path, shared_state_dir, repo_root, qcow2_compose):
    import subprocess
    state = state_on_shared_store(tmp_path / "state", shared_state_dir)
    out = tmp_path / "out"
    p = subprocess.run(
        [sys.executable, "-m", "osbuildd.cli", "build", "--distro", "debian-12", "--type", "qcow2",
         "--blueprint", str(repo_root / "examples" / "debian-qcow2.toml"), "--state-dir", str(state),
         "--output", str(out), "--seed", str(SEED)],
        capture_output=True, text=True, timeout=1500, env={**os.environ, "TERM": "dumb"})
    assert p.returncode == 0, p.stderr[-3000:]
    image = Path(p.stdout.strip().splitlines()[-1])
    assert image.parent == out and image.is_file()
    with open(image, "rb") as f:
        assert f.read(4) == b"QFI\xfb"
    # plain progress lines (not a tty), ending at 100 %
    assert "[100.0%]" in p.stderr or "finished" in p.stderr
    # the compose is in the CLI's state like any other, with its logs and result
    results = list((state / "results").iterdir())
    assert len(results) == 1 and json.loads((results[0] / "result.json").read_text())["success"] is True
    assert "time per stage" not in p.stderr   # the stage table is --verbose only


def test_osbuildd_build_verbose_prints_the_stage_table(tmp_path, shared_state_dir):
    """--verbose: after the build (here a replayed upstream failure: no image build), the time of
    each stage that ran, its share of the total, and the total."""
    import subprocess

    state = state_on_shared_store(tmp_path / "state", shared_state_dir)
    fake = Path(__file__).parent.parent / "runner" / "fake_osbuild.py"
    env = {**os.environ, "FAKE_OSBUILD_NOTES": str(OSBUILD), "FAKE_OSBUILD_MODE": "failure", "TERM": "dumb"}
    p = subprocess.run(
        [sys.executable, "-m", "osbuildd.cli", "build", "--distro", "debian-12", "--type", "tar", "--verbose",
         "--state-dir", str(state), "--output", str(tmp_path / "out"), "--osbuild", str(fake)],
        capture_output=True, text=True, timeout=900, env=env)
    assert p.returncode == 1, p.stderr[-3000:]
    lines = p.stderr.splitlines()
    head = lines.index("osbuildd build: time per stage (from the build's progress stream)")
    table = [line.split() for line in lines[head + 1:head + 6]]
    assert table[0] == ["pipeline", "stage", "seconds", "share"]
    assert [row[:2] for row in table[1:4]] == [["tree", "org.osbuild.mkdir"], ["tree", "org.osbuild.copy"],
                                               ["tree", "org.osbuild.error"]]
    assert all(row[-1].endswith("%") and float(row[-2]) >= 0 for row in table[1:5])
    assert table[4][0] == "total" and table[4][-1] == "100.0%"
    assert "build failed" in p.stderr and p.stdout == ""


def test_osbuildd_build_ctrl_c_cancels(tmp_path, shared_state_dir, repo_root):
    """SIGINT while the build runs: the build is canceled, nothing is left, exit 130."""
    import signal
    import subprocess
    import time

    from .helpers import leftovers as left

    state = state_on_shared_store(tmp_path / "state", shared_state_dir)
    fake = repo_root / "tests" / "runner" / "fake_osbuild.py"   # hangs in its first stage
    env = {**os.environ, "FAKE_OSBUILD_NOTES": str(OSBUILD), "FAKE_OSBUILD_MODE": "stubborn"}
    p = subprocess.Popen(
        [sys.executable, "-m", "osbuildd.cli", "build", "--distro", "debian-12", "--type", "qcow2",
         "--state-dir", str(state), "--output", str(tmp_path / "out"), "--osbuild", str(fake)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 600
    while not left(state)["processes"]:
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "canceled" in err and out == ""
    assert left(state) == NOTHING
    assert not (tmp_path / "out").exists()


def _job_row(db: Path, job_id: str) -> dict:
    import sqlite3
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        con.row_factory = sqlite3.Row
        row = con.execute("SELECT status, error, progress FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return dict(row) if row else {}
    finally:
        con.close()


def test_kill_9_daemon_mid_debian_build(tmp_path, shared_state_dir, repo_root, qcow2_compose):
    """`osbuildd serve` SIGKILLed in the middle of a real Debian build; the next start fails the build
    with "interrupted", kills the orphaned engine, leaves no mounts or loop devices, and still works."""
    import signal
    import subprocess
    import time

    state = state_on_shared_store(tmp_path / "state", shared_state_dir)
    cfg = tmp_path / "osbuildd.toml"
    sock = tmp_path / "api.socket"
    cfg.write_text(f'state_dir = "{state}"\nlog_format = "json"\n[weldr]\nsocket = "{sock}"\n')

    async def enqueue() -> str:
        s = await Services.open(Config.load(cfg))
        await start_local(s, start=False)
        try:
            return await s.compose.start(ComposeRequest(
                distro="debian-12", arch="x86_64", image_type="qcow2", blueprint=_different(repo_root, "less"),
                seed=SEED, origin="test"))
        finally:
            await s.close()

    cid = asyncio.run(enqueue())
    log = open(tmp_path / "serve.log", "ab")  # noqa: SIM115
    serve = [sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(cfg)]
    daemon = subprocess.Popen(serve, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 900
        while True:   # until the engine runs a stage
            row = _job_row(state / "osbuildd.db", cid)
            prog = json.loads(row["progress"]) if row.get("progress") else {}
            if row.get("status") == "running" and prog.get("stage") and leftovers(state)["processes"]:
                break
            assert row.get("status") in ("pending", "running"), row
            assert daemon.poll() is None and time.monotonic() < deadline
            time.sleep(0.3)
        time.sleep(2)
        orphans = leftovers(state)["processes"]
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
        time.sleep(0.5)
        assert set(orphans) & set(leftovers(state)["processes"]), "the engine should outlive a SIGKILLed daemon"
        daemon = subprocess.Popen(serve, stdout=subprocess.DEVNULL, stderr=log)
        import socket
        while True:   # the killed daemon left its socket file: wait until the new one answers
            assert daemon.poll() is None and time.monotonic() < deadline
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(str(sock))
                break
            except OSError:
                time.sleep(0.2)
        # the socket is bound (and connectable) before the recovery ends: wait for the recovery's write
        row = _job_row(state / "osbuildd.db", cid)
        while row["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            row = _job_row(state / "osbuildd.db", cid)
        assert row["status"] == "finished" and json.loads(row["error"])["reason"] == "interrupted", row
        while leftovers(state) != NOTHING:
            assert time.monotonic() < deadline, leftovers(state)
            time.sleep(0.2)
        # the restarted daemon still answers
        c = socket.socket(socket.AF_UNIX)
        c.connect(str(sock))
        c.sendall(b"GET /api/status HTTP/1.0\r\n\r\n")
        assert c.recv(100).startswith(b"HTTP/1.")
        c.close()
    finally:
        daemon.terminate()
        daemon.wait(60)
        log.close()
