"""The state dir with real builds: a second daemon (or ``osbuildd build``/``manifest``) on a state dir
whose daemon is building is refused and the build finishes; file modes under umask 000; a relative
``--state-dir`` for ``manifest`` and ``build``. Debian tars on the run's shared store and cache."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import stat
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from osbuildd.runner.cleanup import processes_marked

pytestmark = pytest.mark.build


def on_shared_store(state: Path, shared_state_dir: Path) -> Path:
    state.mkdir(parents=True)
    for sub in ("store", "cache"):
        (state / sub).symlink_to(shared_state_dir / sub)
    return state


def env(repo_root: Path) -> dict[str, str]:
    e = dict(os.environ, PYTHONPATH=str(repo_root))
    e.pop("OSBUILDD_CONFIG", None)
    return e


def cli(repo_root: Path, *args: str, cwd: Path, umask: int = 0o022, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "osbuildd.cli", *args], cwd=cwd, env=env(repo_root),
                          capture_output=True, text=True, timeout=timeout, umask=umask)


def engine_roots(marked: dict[int, int], daemon: int) -> set[int]:
    """The marked processes whose parent is the daemon: the engine itself, not its passing stages."""
    roots = set()
    for pid in marked:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == daemon:
            roots.add(pid)
    return roots


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def private_tree(root: Path) -> dict[str, int]:
    """Everything under ``root`` that is not owner-only (0700 dirs, 0600 files): should be empty."""
    bad: dict[str, int] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            if p.is_symlink():
                continue
            want = 0o700 if p.is_dir() else 0o600
            if mode(p) != want:
                bad[str(p.relative_to(root))] = mode(p)
    return bad


class Weldr:
    def __init__(self, socket_path: Path) -> None:
        self.session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket_path)))

    async def call(self, method: str, path: str, body: dict | None = None) -> dict:
        async with self.session.request(method, f"http://localhost{path}", json=body) as r:
            data = await r.json(content_type=None)
            assert r.status == 200, data
            return data

    async def status(self, cid: str) -> str:
        return (await self.call("GET", f"/api/v1/compose/status/{cid}"))["uuids"][0]["queue_status"]

    async def close(self) -> None:
        await self.session.close()


async def wait_socket(path: Path, proc: subprocess.Popen, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while True:
        assert proc.poll() is None, "the daemon exited at start"
        try:
            _, w = await asyncio.open_unix_connection(str(path))
            w.close()
            return
        except OSError:
            pass
        assert time.monotonic() < deadline, "the daemon did not start"
        await asyncio.sleep(0.2)


async def test_second_daemon_refused_while_the_first_builds(tmp_path: Path, shared_state_dir: Path,
                                                            repo_root: Path, require_root: None) -> None:
    state = on_shared_store(tmp_path / "state", shared_state_dir)
    err = (tmp_path / "a.stderr").open("wb")
    a = await asyncio.to_thread(functools.partial(
        subprocess.Popen, [sys.executable, "-m", "osbuildd.cli", "serve", "--state-dir", str(state)],
        cwd=repo_root, env=env(repo_root), stdout=err, stderr=err, umask=0))
    weldr = Weldr(state / "api.socket")
    try:
        await wait_socket(state / "api.socket", a)
        # a hostname of its own: the os tree is built afresh (the bootstrap is shared), so the
        # build runs long enough to be seen running
        name = "statedir-two-daemons"
        await weldr.call("POST", "/api/v1/blueprints/new", {
            "name": name, "version": "0.0.1", "packages": [], "modules": [], "groups": [],
            "customizations": {"hostname": f"sd-{uuid.uuid4().hex[:8]}"}})
        cid = (await weldr.call("POST", "/api/v1/compose", {
            "blueprint_name": name, "compose_type": "tar", "branch": "master"}))["build_id"]
        async with asyncio.timeout(1500):
            while True:
                if (await weldr.status(cid) == "RUNNING" and processes_marked(state)
                        and any((state / "tmp").iterdir())):
                    break
                await asyncio.sleep(0.5)
        engine = processes_marked(state)
        scratch = sorted(p.name for p in (state / "tmp").iterdir())

        # owner-only, whatever the umask the daemon was started with (000 here)
        assert mode(state) == 0o700
        for f in ("osbuildd.db", "osbuildd.db-wal", "osbuildd.db-shm", "lock"):
            assert mode(state / f) == 0o600, f
        assert private_tree(state / "results") == {}
        assert (state / "results" / cid / "logs" / "osbuild.log").is_file()

        want = f"state dir {state} is in use by process {a.pid} ({state}/lock)"
        second = await asyncio.to_thread(cli, repo_root, "serve", "--state-dir", str(state), cwd=tmp_path)
        build = await asyncio.to_thread(cli, repo_root, "build", "--distro", "debian-12", "--type", "tar",
                                        "--state-dir", str(state), "--output", str(tmp_path / "out"),
                                        cwd=tmp_path)
        manifest = await asyncio.to_thread(cli, repo_root, "manifest", "--distro", "debian-12", "--type",
                                           "tar", "--state-dir", str(state), cwd=tmp_path)
        assert (second.returncode, second.stderr.splitlines()) == (2, [f"osbuildd: {want}"])
        assert (build.returncode, build.stderr.splitlines()) == (2, [f"osbuildd build: error: {want}"])
        assert (manifest.returncode, manifest.stderr.splitlines()) == (2, [f"osbuildd manifest: {want}"])
        # none of them ran recovery: the build, its scratch files and its processes are still there
        assert await weldr.status(cid) == "RUNNING"
        # the engine the daemon started is still running (its stages come and go meanwhile)
        assert engine_roots(engine, a.pid) and engine_roots(engine, a.pid) <= set(processes_marked(state))
        assert set(scratch) <= {p.name for p in (state / "tmp").iterdir()}

        async with asyncio.timeout(1500):
            while True:
                if (st := await weldr.status(cid)) not in ("WAITING", "RUNNING"):
                    break
                await asyncio.sleep(1)
        log = (state / "results" / cid / "logs" / "osbuild.log").read_text(errors="replace")
        assert st == "FINISHED", log[-3000:]
        assert private_tree(state / "results") == {}
        image = state / "results" / cid / "root.tar.xz"
        assert mode(image) == 0o600
        # the engine ran with umask 022: the image's modes are the usual ones, not the daemon's
        with tarfile.open(image) as tf:
            modes = {m.name.lstrip("./"): m.mode for m in tf.getmembers()[:4000]}
        assert modes["etc"] == 0o755 and modes["etc/hostname"] == 0o644
    finally:
        await weldr.close()
        a.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(a.wait, 120)
        err.close()
    assert rc == 0, (tmp_path / "a.stderr").read_text()[-3000:]


def test_relative_state_dir_manifest_and_build(tmp_path: Path, shared_state_dir: Path, repo_root: Path,
                                               require_root: None) -> None:
    """``--state-dir ./s`` (cwd = a temp dir): apt, the engine's store and the results all end up in
    the one absolute place, and the image leaves it with the user's umask (002 here)."""
    on_shared_store(tmp_path / "s", shared_state_dir)
    res = cli(repo_root, "manifest", "--distro", "debian-12", "--type", "tar", "--state-dir", "./s",
              cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    manifest = json.loads(res.stdout)
    assert [p["name"] for p in manifest["pipelines"]] == ["os", "archive"]
    assert (tmp_path / "s" / "lock").is_file()

    res = cli(repo_root, "build", "--distro", "debian-12", "--type", "tar", "--state-dir", "./s",
              "--output", "./out", cwd=tmp_path, umask=0o002)
    assert res.returncode == 0, res.stderr[-3000:]
    image = tmp_path / "out" / "root.tar.xz"
    assert res.stdout.strip() == str(image)
    assert mode(image) == 0o664 and mode(tmp_path / "out") == 0o775
    with tarfile.open(image) as tf:
        assert "etc/os-release" in {m.name.lstrip("./") for m in tf.getmembers()}
    state = tmp_path / "s"
    assert mode(state) == 0o700 and mode(state / "osbuildd.db") == 0o600
    assert private_tree(state / "results") == {}
    # nothing was made relative to another directory (apt's root, the engine's cwd)
    assert not Path("/s").exists() and not (repo_root / "s").exists()
