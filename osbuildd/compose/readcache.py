"""What the compose service's reads are cached against: the database's data version (has anyone
committed since?) and the whole settled composes ``get()`` hands out again."""

from __future__ import annotations

from osbuildd.queue import Database
from osbuildd.queue.db import VersionSource

from . import store
from .model import Compose

WHOLE_CACHE = 256   # settled composes get() keeps whole (packages, manifest: up to ~100 KB each)


class SettledComposes:
    """Settled finished/failed composes (they can only be deleted now), most recently used last,
    emptied when compose or job rows appeared or went behind the service's back (another daemon on
    the database, a damaged store: a cached compose may be gone or have lost its jobs): one count
    query per data version. Callers put only what they read while the version stood still."""

    def __init__(self, db: Database, version: VersionSource) -> None:
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
