"""``dead_scratch_dirs``: a killed build's scratch dirs in a store, never a running engine's (its lock
held), so a worker or daemon sharing the store cleans only its own leftovers."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from osbuildd.runner import dead_scratch_dirs


def test_only_unlocked_build_dirs(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for name in ("build-live", "build-dead", "build-nolock"):
        (store / "tmp" / name).mkdir(parents=True)
    (store / "tmp" / "build-live" / ".lock").touch()
    (store / "tmp" / "build-dead" / ".lock").touch()
    (store / "tmp" / ".new-x").mkdir()          # being created: not a build dir yet
    fd = os.open(store / "tmp" / "build-live" / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)         # as a running engine holds it
        dead = dead_scratch_dirs(store)
    finally:
        os.close(fd)
    assert [d.name for d in dead] == ["build-dead", "build-nolock"]
    assert [d.name for d in dead_scratch_dirs(store)] == ["build-dead", "build-live", "build-nolock"]
    assert dead_scratch_dirs(tmp_path / "absent") == []
