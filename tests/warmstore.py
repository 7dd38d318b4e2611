"""The warm state the suite keeps between runs, and its bounds.

Building tests share one state dir (``$OSBUILDD_TEST_STATE``, default ``/var/tmp/osbuildd-test/state``):
``store/`` (the engine object store: checkpoints and downloaded packages) and ``cache/`` (apt metadata,
the engine tests' base tree). Builds inside a run may grow the store as they need; at the start and
at the end of every run it is cut back:

- engine objects, least recently used first, until they fit ``$OSBUILDD_TEST_STORE_MAX``
  (default 3 GiB; ``0`` empties it);
- downloaded sources, apt caches and the .debs apt fetched that nobody used for ``KEEP_DAYS`` days.

Nothing is removed while another build holds the store (the engine's lock): a run beside a running
build prunes next time. Wipe it all with ``rm -rf /var/tmp/osbuildd-test/state``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from pathlib import Path

from osbuildd.common import datasizes
from osbuildd.engine.objectstore import Store

DEFAULT_STATE = "/var/tmp/osbuildd-test/state"
DEFAULT_MAX = "3GiB"
KEEP_DAYS = 14


def state_dir() -> Path:
    return Path(os.environ.get("OSBUILDD_TEST_STATE", DEFAULT_STATE))


def store_cap() -> int:
    return datasizes.parse(os.environ.get("OSBUILDD_TEST_STORE_MAX", DEFAULT_MAX))


def _last_use(path: Path) -> float:
    st = path.stat()
    return max(st.st_atime, st.st_mtime)


def _drop_unused(entries: list[Path], cutoff: float) -> None:
    for p in entries:
        try:
            if _last_use(p) >= cutoff:
                continue
        except FileNotFoundError:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def prune(state: Path | None = None, cap: int | None = None, keep_days: float = KEEP_DAYS) -> None:
    """Cut the warm state back to its bounds (see the module doc)."""
    state = state or state_dir()
    store_path = state / "store"
    if (store_path / "objects").is_dir():
        store = Store(store_path, None)      # None: the persisted cache.info stays as the builds set it
        try:
            store.max_size = store_cap() if cap is None else cap
            store.evict()                    # skips itself while another build holds the store
        finally:
            store.close()
    cutoff = time.time() - keep_days * 86400
    lock = store_path / "cache.lock"
    if not lock.exists():
        return
    fd = os.open(lock, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return                           # a build is running: its sources are in use
        sources = store_path / "sources" / "org.osbuild.files"
        if sources.is_dir():
            _drop_unused(list(sources.iterdir()), cutoff)
        apt = state / "cache" / "depsolve" / "apt"
        if apt.is_dir():
            _drop_unused([d for d in apt.iterdir() if d.is_dir()], cutoff)
            # the .debs fetched for package metadata pile up with every new Debian point release
            _drop_unused([f for f in apt.glob("*/archives/*.deb")], cutoff)
    finally:
        os.close(fd)

