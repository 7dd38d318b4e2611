"""One process per state dir (osbuildd/statedir.py): the lock, its message, and the commands that take
it before any recovery. Fast: the holder is a tiny process; nothing is built."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from osbuildd import statedir

HOLD = ("import sys, time, subprocess; from pathlib import Path; from osbuildd import statedir;"
        "lock = statedir.acquire(Path(sys.argv[1]));"
        "kids = [subprocess.Popen(['sleep', '60']) for _ in range(int(sys.argv[2]))];"
        "print('locked', *[k.pid for k in kids], flush=True); time.sleep(60)")


def hold(repo_root: Path, state: Path, children: int = 0) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(state), str(children)], cwd=repo_root,
                         stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert p.stdout is not None
    line = p.stdout.readline().split()
    assert line[:1] == ["locked"]
    p.children = [int(x) for x in line[1:]]  # type: ignore[attr-defined]
    return p


def osbuildd(repo_root: Path, *args: str, cwd: Path | None = None, timeout: float = 120,
             **popen) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    env.pop("OSBUILDD_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "osbuildd.cli", *args], cwd=cwd or repo_root, env=env,
                          capture_output=True, text=True, timeout=timeout, **popen)


def test_second_acquire_names_the_holder(tmp_path: Path, repo_root: Path) -> None:
    state = tmp_path / "state"
    holder = hold(repo_root, state)
    try:
        assert (state / "lock").read_text() == f"{holder.pid}\n"
        assert (state / "lock").stat().st_mode & 0o777 == 0o600
        assert state.stat().st_mode & 0o777 == 0o700
        with pytest.raises(statedir.StateDirBusy) as exc:
            statedir.acquire(state)
        assert exc.value.pid == holder.pid
        assert str(exc.value) == f"state dir {state} is in use by process {holder.pid} ({state}/lock)"
    finally:
        holder.kill()
        holder.wait()
    # the kernel drops the lock with the process (even SIGKILL): the next one gets it
    with statedir.acquire(state) as lock:
        assert lock.held and (state / "lock").read_text() == f"{os.getpid()}\n"
    assert (state / "lock").read_text() == ""   # released: no stale pid


def test_lock_not_kept_by_orphaned_children(tmp_path: Path, repo_root: Path) -> None:
    """Processes the holder started (an engine, say) do not keep the lock once the holder died,
    so the next start can run recovery and kill them."""
    state = tmp_path / "state"
    holder = hold(repo_root, state, children=2)
    try:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        for pid in holder.children:  # type: ignore[attr-defined]
            os.kill(pid, 0)   # still running
        with statedir.acquire(state):
            pass
    finally:
        os.killpg(holder.pid, signal.SIGKILL)   # the sleeps (own session: only ours)


def test_commands_refuse_a_busy_state_dir(tmp_path: Path, repo_root: Path) -> None:
    """serve, build and manifest on a state dir another process holds: one line naming the holder,
    exit 2, and no recovery (tmp/ untouched, no database made)."""
    state = tmp_path / "state"
    (state / "tmp" / "build-of-the-holder").mkdir(parents=True)
    (state / "tmp" / "build-of-the-holder" / "half.img").write_bytes(b"x" * 100)
    holder = hold(repo_root, state)
    try:
        want = f"state dir {state} is in use by process {holder.pid} ({state}/lock)"
        runs = {
            "serve": (osbuildd(repo_root, "serve", "--state-dir", str(state)), f"osbuildd: {want}"),
            "build": (osbuildd(repo_root, "build", "--distro", "debian-12", "--type", "tar",
                               "--state-dir", str(state), "--output", str(tmp_path / "out")),
                      f"osbuildd build: error: {want}"),
            "manifest": (osbuildd(repo_root, "manifest", "--distro", "debian-12", "--type", "tar",
                                  "--state-dir", str(state)), f"osbuildd manifest: {want}"),
        }
        for name, (res, line) in runs.items():
            assert res.returncode == 2, (name, res.stderr)
            assert res.stderr.splitlines() == [line], name
            assert res.stdout == "", name
        assert (state / "tmp" / "build-of-the-holder" / "half.img").read_bytes() == b"x" * 100
        assert not (state / "osbuildd.db").exists()
        assert not (state / "api.socket").exists()
        assert not (tmp_path / "out").exists()
        assert holder.poll() is None
    finally:
        holder.kill()
        holder.wait()


def test_relative_state_dir_is_made_absolute(tmp_path: Path, repo_root: Path) -> None:
    """A relative --state-dir names the same lock as its absolute spelling."""
    state = tmp_path / "state"
    holder = hold(repo_root, state)
    try:
        res = osbuildd(repo_root, "serve", "--state-dir", "./state", cwd=tmp_path)
        assert res.returncode == 2
        assert res.stderr.strip() == (f"osbuildd: state dir {state} is in use by process {holder.pid}"
                                      f" ({state}/lock)")
    finally:
        holder.kill()
        holder.wait()
    assert statedir.absolute("x/y") == Path.cwd() / "x" / "y"


def test_serve_starts_once_the_holder_is_gone(tmp_path: Path, repo_root: Path) -> None:
    """The daemon itself holds the lock for its life and gives it up when it stops."""
    state = tmp_path / "state"
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    env.pop("OSBUILDD_CONFIG", None)
    p = subprocess.Popen([sys.executable, "-m", "osbuildd.cli", "serve", "--state-dir", str(state)],
                         cwd=repo_root, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (state / "api.socket").exists():
            assert p.poll() is None, p.stderr.read() if p.stderr else ""
            assert time.monotonic() < deadline, "the daemon did not start"
            time.sleep(0.1)
        assert (state / "lock").read_text() == f"{p.pid}\n"
        second = osbuildd(repo_root, "serve", "--state-dir", str(state))
        assert second.returncode == 2 and f"in use by process {p.pid}" in second.stderr
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=60) == 0
    with statedir.acquire(state):
        pass
