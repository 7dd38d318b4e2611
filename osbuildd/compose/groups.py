"""Composes of several images (one Cloud compose id for N composes): the ``compose_groups`` rows, held
in memory and read again only when they changed (the database's data version said someone committed, and
the table's row mark moved), so a status or a listing asks the database nothing while nothing changed
(on a shared PostgreSQL the version moves when another daemon's compose write notifies)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from osbuildd.queue import Database
from osbuildd.queue.db import VersionSource

from . import store


@dataclass(frozen=True)
class Groups:
    """``members``: group id -> its compose ids in image order (the first is the group id itself);
    ``of``: compose id -> its group id. ``version`` changes whenever the groups do."""

    members: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    of: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    version: int = 0

    def images(self, compose_id: str) -> tuple[str, ...]:
        """The compose ids a Cloud compose id stands for (itself alone when it heads no group)."""
        return self.members.get(compose_id) or (compose_id,)

    def hidden(self, compose_id: str) -> bool:
        """A later image of a group (listed through its group's first compose, not on its own)."""
        gid = self.of.get(compose_id)
        return gid is not None and gid != compose_id and gid in self.of


class GroupIndex:
    def __init__(self, db: Database, version: VersionSource) -> None:
        self._db, self._version = db, version
        self._groups = Groups()
        self._seen: tuple[int, tuple[int, int, int]] | None = None   # (data version, row mark) read at

    async def get(self) -> Groups:
        return await self.at(await self._version.get())

    async def at(self, gen: int | None) -> Groups:
        """The groups as of data version ``gen``, read by the caller just now (None: unknown)."""
        if gen is not None and self._seen is not None and gen == self._seen[0]:
            return self._groups
        mark = await store.group_mark(self._db)
        if self._seen is None or mark != self._seen[1]:
            rows = await store.group_rows(self._db)
            members: dict[str, list[str]] = {}
            for gid, _position, cid in rows:
                members.setdefault(gid, []).append(cid)
            self._groups = Groups(MappingProxyType({g: tuple(m) for g, m in members.items()}),
                                  MappingProxyType({cid: gid for gid, _p, cid in rows}), self._groups.version + 1)
        self._seen = (gen if gen is not None else -1, mark)
        return self._groups
