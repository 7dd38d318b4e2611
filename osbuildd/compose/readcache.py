"""What the compose service's reads are cached against: SQLite's ``PRAGMA data_version`` (has anyone
committed since?) and the whole settled composes ``get()`` hands out again."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from osbuildd.queue import Database

from . import store
from .model import Compose

WHOLE_CACHE = 256   # settled composes get() keeps whole (packages, manifest: up to ~100 KB each)


class DataVersion:
    """``PRAGMA data_version`` of a read-only connection of its own: it changes whenever any other
    connection (the daemon's writer, a remote worker's, a test's) commits."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._tried = False

    async def get(self) -> int | None:
        """None: cannot tell, cache nothing. Read on the loop on purpose: in WAL mode it reads the
        shared-memory index (~3 us), where a hop to a database thread costs ~50 us of CPU."""
        if self._conn is None:
            if self._tried or self._path is None:
                return None
            self._tried = True
            try:
                self._conn = await asyncio.to_thread(
                    sqlite3.connect, f"file:{self._path}?mode=ro", uri=True, check_same_thread=False,
                    isolation_level=None)
            except sqlite3.Error:
                return None
        try:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:   # busy (WAL recovery) or gone: read from the database this time
            return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SettledComposes:
    """Settled finished/failed composes (they can only be deleted now), most recently used last,
    emptied when compose or job rows appeared or went behind the service's back (a cached compose
    may have lost its jobs): one count query per data version."""

    def __init__(self, db: Database, version: DataVersion) -> None:
        self._db, self._version = db, version
        self._items: dict[str, Compose] = {}
        self._mark: tuple[int, tuple[int, int] | None] = (-1, None)   # (data version, row counts)

    async def get(self, compose_id: str) -> Compose | None:
        if compose_id not in self._items or not await self._valid():
            return None
        hit = self._items.pop(compose_id, None)
        if hit is not None:
            self._items[compose_id] = hit
        return hit

    def put(self, compose_id: str, compose: Compose) -> None:
        self._items[compose_id] = compose
        if len(self._items) > WHOLE_CACHE:
            del self._items[next(iter(self._items))]

    def drop(self, compose_id: str) -> None:
        self._items.pop(compose_id, None)

    async def _valid(self) -> bool:
        gen = await self._version.get()
        if gen is None:
            return False
        if gen == self._mark[0]:
            return True
        counts = await store.counts(self._db)
        if counts != self._mark[1]:
            self._items.clear()
        self._mark = (gen, counts)
        return bool(self._items)
