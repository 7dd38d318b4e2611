"""The versioned blueprint store (upstream ``internal/store`` semantics) on SQLite or PostgreSQL.

Committed blueprints and workspace copies are also kept in memory, so reads (the hot path of the
Weldr API) never wait for a writer. Several daemons may share one PostgreSQL database: every write
transaction sends ``"blueprints"`` on ``DATA_CHANNEL``, and a notification this store did not cause
(or a listener reconnect, payload ``""``) marks the memory stale, so the next read reloads it.
Writes read what they depend on (the committed version for the bump) from the database, locked.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from osbuildd.errors import ErrorKind, ServiceError
from osbuildd.queue.db import DATA_CHANNEL

from .codec import encode
from .model import Blueprint, Package

if TYPE_CHECKING:
    from osbuildd.queue.db import Conn, Database

NEWEST = "NEWEST"
NOTIFY_PAYLOAD = "blueprints"   # on DATA_CHANNEL
WORKSPACE = "WORKSPACE"


class StoreError(ServiceError):
    """Base of the store's errors; ``str()`` is upstream's store message."""

    kind = ErrorKind.INVALID
    error_id = "BlueprintsError"


class UnknownBlueprint(StoreError):
    kind = ErrorKind.NOT_FOUND
    error_id = "UnknownBlueprint"

    def __init__(self, name: str) -> None:
        super().__init__(f"Unknown blueprint: {name}")
        self.name = name


class UnknownCommit(StoreError):
    """Unknown commit for undo/change ("Unknown commit"), or a diff revision other than
    NEWEST/WORKSPACE (message "ggit-error: revspec '<x>' not found (-3)")."""

    kind = ErrorKind.NOT_FOUND
    error_id = "UnknownCommit"

    def __init__(self, commit: str, message: str = "Unknown commit") -> None:
        super().__init__(message)
        self.commit = commit


class NoBlueprintForCommit(StoreError):
    """The change exists but its blueprint was not kept (upstream's "old changes")."""

    kind = ErrorKind.NOT_FOUND

    def __init__(self, commit: str) -> None:
        super().__init__(f"no blueprint found for commit {commit}")
        self.commit = commit


class NoCommits(StoreError):
    kind = ErrorKind.NOT_FOUND

    def __init__(self, name: str) -> None:
        super().__init__("No commits for blueprint")
        self.name = name


class Change:
    """One commit of a blueprint's history. ``blueprint`` is the blueprint as pushed (before the
    version bump), parsed on first use; None for old changes whose blueprint was not kept."""

    __slots__ = ("commit", "message", "revision", "timestamp", "_bp_json", "_bp")

    def __init__(self, commit: str, message: str, revision: int | None, timestamp: str,
                 blueprint: Blueprint | str | None) -> None:
        self.commit = commit
        self.message = message
        self.revision = revision
        self.timestamp = timestamp
        self._bp_json = blueprint if isinstance(blueprint, str) else None
        self._bp = blueprint if isinstance(blueprint, Blueprint) else None

    @property
    def blueprint(self) -> Blueprint | None:
        if self._bp is None and self._bp_json is not None:
            self._bp = Blueprint.from_json(self._bp_json)
        return self._bp

    def to_dict(self) -> dict[str, Any]:
        """Upstream's change object (the blueprint is not part of it)."""
        return {"commit": self.commit, "message": self.message, "revision": self.revision,
                "timestamp": self.timestamp}

    def __repr__(self) -> str:
        return f"Change(commit={self.commit!r}, message={self.message!r}, revision={self.revision!r})"


@dataclass
class Page:
    total: int
    offset: int
    limit: int
    names: list[str]


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class BlueprintStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._committed: dict[str, Blueprint] = {}
        self._workspace: dict[str, Blueprint] = {}
        # memory is fresh while _loaded_epoch == _epoch; a notification bumps _epoch, and a reload
        # started before it does not count as fresh
        self._epoch = 0
        self._loaded_epoch = -1
        # own commits whose notification has not come back yet (those need no reload)
        self._own_pending = 0
        # serialises this store's reloads and writes: a reload never overwrites a newer own write
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._unsubscribe = db.subscribe(DATA_CHANNEL, self._notified)

    # ---------------------------------------------------------------- cache

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        """``callback()`` whenever a change this store did not make (another daemon's, or an
        unknown one after a listener reconnect) makes its memory stale; API layers drop what they
        rendered from it. Returns the unregister."""
        self._listeners.append(callback)

        def remove() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)
        return remove

    def close(self) -> None:
        """Stop listening (the database outlives the store in tests)."""
        self._unsubscribe()

    def _notified(self, payload: str) -> None:
        if payload == NOTIFY_PAYLOAD and self._own_pending > 0:
            # counted own commits: a foreign one taken for ours still leads to a reload, as the
            # notification of ours then arrives with nothing pending
            self._own_pending -= 1
            return
        if payload not in (NOTIFY_PAYLOAD, ""):
            return
        if payload == "":
            self._own_pending = 0   # notifications were lost: count nothing as ours
        self._epoch += 1
        for callback in list(self._listeners):
            callback()

    def _fresh(self) -> bool:
        return self._loaded_epoch == self._epoch

    async def load(self) -> None:
        """Read the committed and workspace blueprints into memory (done on first use anyway;
        the daemon may call it at start so that the first request does not pay for it)."""
        await self._ensure_loaded()

    async def _ensure_loaded(self) -> None:
        if self._fresh():
            return
        async with self._lock:
            if not self._fresh():
                await self._reload()

    async def _reload(self) -> None:
        """With ``_lock`` held."""
        epoch = self._epoch
        # inside a transaction: never sees another task's half-done write on the shared connection
        async with self.db.transaction() as conn:
            async with conn.execute("SELECT name, blueprint FROM blueprints") as cur:
                committed_rows = await cur.fetchall()
            async with conn.execute("SELECT name, blueprint FROM blueprint_workspace") as cur:
                workspace_rows = await cur.fetchall()
        committed = {name: Blueprint.from_json(text) for name, text in committed_rows}
        workspace = {name: Blueprint.from_json(text) for name, text in workspace_rows}
        self._committed, self._workspace, self._loaded_epoch = committed, workspace, epoch

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Conn]:
        """One write transaction that tells every daemon. Writers change the memory as the last
        step of their body, so a store error leaves it alone; any other failure (a failed COMMIT)
        makes it reload."""
        async with self._lock:
            if not self._fresh():
                await self._reload()
            counted = False
            try:
                async with self.db.transaction() as conn:
                    yield conn
                    await self.db.notify(DATA_CHANNEL, NOTIFY_PAYLOAD)
                    # before COMMIT: on SQLite the notification arrives inside the commit
                    self._own_pending += 1
                    counted = True
            except StoreError:
                raise
            except BaseException:
                if counted:
                    self._own_pending = max(0, self._own_pending - 1)
                self._epoch += 1
                raise

    # ---------------------------------------------------------------- reads

    async def get(self, name: str) -> tuple[Blueprint, bool] | None:
        """The workspace copy with ``changed=True`` if there is one, else the committed blueprint
        with ``changed=False``; None if neither exists. The caller gets its own copy."""
        await self._ensure_loaded()
        ws = self._workspace.get(name)
        if ws is not None:
            return ws.copy(), True
        bp = self._committed.get(name)
        return (bp.copy(), False) if bp is not None else None

    async def get_committed(self, name: str) -> Blueprint | None:
        await self._ensure_loaded()
        bp = self._committed.get(name)
        return bp.copy() if bp is not None else None

    async def get_workspace(self, name: str) -> Blueprint | None:
        await self._ensure_loaded()
        bp = self._workspace.get(name)
        return bp.copy() if bp is not None else None

    async def list_names(self) -> list[str]:
        """Names of committed blueprints, sorted (workspace-only names are not listed, as upstream)."""
        await self._ensure_loaded()
        return sorted(self._committed)

    async def list_page(self, offset: int = 0, limit: int = 20) -> Page:
        """blueprints/list paging: offset and limit clamped to the total, as upstream echoes them."""
        names = await self.list_names()
        total = len(names)
        offset = min(max(offset, 0), total)
        limit = min(max(limit, 0), total - offset)
        return Page(total, offset, limit, names[offset:offset + limit])

    async def changes(self, name: str) -> list[Change]:
        """The change history, newest first; [] if the name never had a commit. Kept after delete."""
        async with self.db.conn.execute(
                "SELECT commit_id, message, revision, timestamp, blueprint FROM blueprint_changes"
                " WHERE name = ? ORDER BY seq DESC", (name,)) as cur:
            rows = await cur.fetchall()
        return [Change(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def change(self, name: str, commit: str) -> Change:
        """One change; raises UnknownCommit (also for an unknown name, as upstream's API answers)."""
        async with self.db.conn.execute(
                "SELECT commit_id, message, revision, timestamp, blueprint FROM blueprint_changes"
                " WHERE name = ? AND commit_id = ?", (name, commit)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise UnknownCommit(commit)
        return Change(row[0], row[1], row[2], row[3], row[4])

    async def blueprint_at(self, name: str, commit: str) -> Blueprint:
        """The blueprint stored with a change (blueprints/change); raises UnknownCommit or
        NoBlueprintForCommit."""
        ch = await self.change(name, commit)
        if ch.blueprint is None:
            raise NoBlueprintForCommit(commit)
        return ch.blueprint

    async def diff(self, name: str, from_commit: str = NEWEST, to_commit: str = WORKSPACE) -> list[dict[str, Any]]:
        """blueprints/diff: only NEWEST -> WORKSPACE, packages only, in upstream's item shape.
        Raises UnknownCommit (message "ggit-error: ...") or UnknownBlueprint (no committed blueprint)."""
        for rev, wanted in ((from_commit, NEWEST), (to_commit, WORKSPACE)):
            if rev != wanted:
                raise UnknownCommit(rev, f"ggit-error: revspec '{rev}' not found (-3)")
        await self._ensure_loaded()
        old = self._committed.get(name)
        if old is None:
            raise UnknownBlueprint(name)
        new = self._workspace.get(name) or old
        return diff_packages(old.packages, new.packages)

    # ---------------------------------------------------------------- writes

    async def push(self, bp: Blueprint, message: str | None = None) -> Change:
        """Commit ``bp`` (one transaction): Initialize, a change with a random commit id, the
        workspace copy dropped, and upstream's version bump (patch + 1 when the version is empty or
        equal to the committed one; the first push keeps it). Default message:
        "Recipe <name>, version <version> saved." with the version before the bump."""
        bp = await _initialized(bp)
        if message is None:
            message = f"Recipe {bp.name}, version {bp.version} saved."
        async with self._write() as conn:
            return await self._push_locked(conn, bp, message)

    async def _push_locked(self, conn: Conn, bp: Blueprint, message: str) -> Change:
        change = Change(secrets.token_hex(20), message, None, _timestamp(), bp.copy())
        committed = bp
        # from the database, locked: another daemon may have pushed since this memory was loaded
        async with conn.execute("SELECT blueprint FROM blueprints WHERE name = ?" + self.db.dialect.for_update,
                                (bp.name,)) as cur:
            row = await cur.fetchone()
        old = Blueprint.from_json(row[0]) if row is not None else None
        if old is not None and (bp.version == "" or bp.version == old.version):
            committed = bp.copy()
            committed.bump_version(old.version)
        now = time.time()
        await conn.execute(
            "INSERT INTO blueprint_changes (name, commit_id, message, revision, timestamp, blueprint)"
            " VALUES (?, ?, ?, NULL, ?, ?)", (bp.name, change.commit, message, change.timestamp, bp.to_json()))
        await conn.execute(
            "INSERT INTO blueprints (name, blueprint, updated) VALUES (?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET blueprint = excluded.blueprint, updated = excluded.updated",
            (bp.name, committed.to_json(), now))
        await conn.execute("DELETE FROM blueprint_workspace WHERE name = ?", (bp.name,))
        self._committed[bp.name] = committed
        self._workspace.pop(bp.name, None)
        return change

    async def set_workspace(self, bp: Blueprint) -> None:
        """Store ``bp`` (Initialized) as the workspace copy: no commit, no version bump."""
        bp = await _initialized(bp)
        async with self._write() as conn:
            await conn.execute(
                "INSERT INTO blueprint_workspace (name, blueprint, updated) VALUES (?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET blueprint = excluded.blueprint, updated = excluded.updated",
                (bp.name, bp.to_json(), time.time()))
            self._workspace[bp.name] = bp

    async def delete_workspace(self, name: str) -> None:
        """Drop the workspace copy; UnknownBlueprint if there is none."""
        async with self._write() as conn:
            cur = await conn.execute("DELETE FROM blueprint_workspace WHERE name = ?", (name,))
            if cur.rowcount == 0:
                raise UnknownBlueprint(name)
            self._workspace.pop(name, None)

    async def delete(self, name: str) -> None:
        """Remove the committed blueprint and its workspace copy (the history stays);
        UnknownBlueprint if nothing is committed under that name."""
        async with self._write() as conn:
            cur = await conn.execute("DELETE FROM blueprints WHERE name = ?", (name,))
            if cur.rowcount == 0:
                raise UnknownBlueprint(name)
            await conn.execute("DELETE FROM blueprint_workspace WHERE name = ?", (name,))
            self._committed.pop(name, None)
            self._workspace.pop(name, None)

    async def tag(self, name: str) -> int:
        """Give the newest commit a revision (highest earlier revision + 1); a no-op if it has one.
        Returns the newest commit's revision. Raises UnknownBlueprint or NoCommits."""
        async with self._write() as conn:
            # locked: tags of one blueprint by two daemons take turns
            async with conn.execute("SELECT 1 FROM blueprints WHERE name = ?" + self.db.dialect.for_update,
                                    (name,)) as cur:
                if await cur.fetchone() is None:
                    raise UnknownBlueprint(name)
            async with conn.execute(
                    "SELECT seq, revision FROM blueprint_changes WHERE name = ? ORDER BY seq DESC", (name,)) as cur:
                rows = list(await cur.fetchall())
            if not rows:
                raise NoCommits(name)
            newest_seq, newest_rev = rows[0]
            if newest_rev is not None:
                return int(newest_rev)
            # upstream takes the first revision found scanning newest -> oldest
            latest = next((int(r) for _, r in rows if r is not None and r > 0), 0)
            await conn.execute("UPDATE blueprint_changes SET revision = ? WHERE seq = ?", (latest + 1, newest_seq))
            return latest + 1

    async def undo(self, name: str, commit: str) -> Change:
        """Re-push the blueprint stored at ``commit`` with "<name>.toml reverted to commit <commit>"
        (same bump rule as push). Raises UnknownCommit or NoBlueprintForCommit."""
        async with self._write() as conn:
            async with conn.execute(
                    "SELECT blueprint FROM blueprint_changes WHERE name = ? AND commit_id = ?",
                    (name, commit)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise UnknownCommit(commit)
            if row[0] is None:
                raise NoBlueprintForCommit(commit)
            bp = Blueprint.from_json(row[0])
            bp.initialize()
            return await self._push_locked(conn, bp, f"{name}.toml reverted to commit {commit}")

    async def add_old_change(self, name: str, commit: str, message: str, timestamp: str,
                             revision: int | None = None) -> None:
        """Record a change whose blueprint is not kept (upstream's OldChangesFixture)."""
        async with self._write() as conn:
            await conn.execute(
                "INSERT INTO blueprint_changes (name, commit_id, message, revision, timestamp, blueprint)"
                " VALUES (?, ?, ?, ?, ?, NULL)", (name, commit, message, revision, timestamp))


async def _initialized(bp: Blueprint) -> Blueprint:
    """A copy of ``bp`` after Initialize (and the Weldr name rule, so no caller can store a name
    with '/' or NUL); password hashing (CPU) runs off the event loop."""
    bp = bp.copy()
    if bp.name:
        bp.check_name()
    c = bp.customizations
    if c is not None and any(u.password for u in c.user):
        await asyncio.to_thread(bp.initialize)
    else:
        bp.initialize()
    return bp


def diff_packages(old: list[Package], new: list[Package]) -> list[dict[str, Any]]:
    """Upstream's package diff: for each new package in order, added (old null) or version
    changed (old + new); then each removed package (new null) in the old list's order."""

    def item(p: Package) -> dict[str, Any]:
        return {"Package": encode(p)}

    old_by_name = {p.name: p for p in old}
    new_names = {p.name for p in new}
    out: list[dict[str, Any]] = []
    for p in new:
        before = old_by_name.get(p.name)
        if before is None:
            out.append({"new": item(p), "old": None})
        elif before.version != p.version:
            out.append({"new": item(p), "old": item(before)})
    out += [{"new": None, "old": item(p)} for p in old if p.name not in new_names]
    return out
