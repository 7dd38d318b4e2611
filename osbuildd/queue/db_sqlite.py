"""The embedded SQLite backend of :class:`osbuildd.queue.db.Database`: one writer and one reader
connection (WAL), pragmas, migrations, transactions, in-process change notifications."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from .db import DONE, Database, MigrationError, VersionSource, migrations
from .dialect import SQLITE

# Set while this task (or one it started) holds the write lock: its statements use the writer.
_WRITING: contextvars.ContextVar[bool] = contextvars.ContextVar("osbuildd_db_writing", default=False)


class _Rows:
    """A reader statement's rows, fetched whole in one trip to the database thread: no cursor is
    left open on the reader, so its snapshot never outlives the statement."""

    def __init__(self, op: Awaitable[Any]) -> None:
        self._op = op
        self._rows: list[Any] | None = None

    def __await__(self) -> Any:
        return self._load().__await__()

    async def _load(self) -> _Rows:
        if self._rows is None:
            self._rows = list(await self._op)
        return self

    async def __aenter__(self) -> _Rows:
        return await self._load()

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows or [], []
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int = 1) -> list[Any]:
        rows, self._rows = (self._rows or [])[:size], (self._rows or [])[size:]
        return rows

    def __aiter__(self) -> _Rows:
        return self

    async def __anext__(self) -> Any:
        if not self._rows:
            raise StopAsyncIteration
        return self._rows.pop(0)


class _Routed:
    """``db.conn``: a task's statements go to the writer connection unless another task holds the
    write lock; then they go to a second (reader) connection. In WAL mode the reader sees only
    committed data, so a read never sees another task's open transaction, nor waits for it.

    The lock, not ``in_transaction``, decides: a task that holds the lock may not have run its
    BEGIN yet, and a read queued behind it on the writer would see its uncommitted rows."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection,
                 lock: asyncio.Lock) -> None:
        self._writer, self._reader, self._lock = writer, reader, lock

    def _use_reader(self) -> bool:
        return not _WRITING.get() and self._lock.locked()

    def execute(self, sql: str, parameters: Any = None) -> Any:
        if self._use_reader():
            return _Rows(self._reader.execute_fetchall(sql, parameters))
        return self._writer.execute(sql, parameters)

    def execute_fetchall(self, sql: str, parameters: Any = None) -> Any:
        conn = self._reader if self._use_reader() else self._writer
        return conn.execute_fetchall(sql, parameters)

    def __getattr__(self, name: str) -> Any:   # executemany, in_transaction, row_factory, ...
        return getattr(self._writer, name)


async def _to_completion(op: Awaitable[Any]) -> Any:
    """Await ``op`` to its end even if the task is cancelled meanwhile, then re-raise the cancel.

    aiosqlite runs statements in its own thread: a BEGIN/COMMIT/ROLLBACK abandoned half-way would
    still run later and leave the shared connection inside (or outside) a transaction behind the
    lock's back.
    """
    task = asyncio.ensure_future(op)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise  # the operation itself was cancelled
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


class SQLiteDatabase(Database):
    """One aiosqlite connection in autocommit mode; writes go through :meth:`transaction`."""

    backend = "sqlite"
    dialect = SQLITE

    def __init__(self, conn: aiosqlite.Connection, path: Path,
                 reader: aiosqlite.Connection | None = None) -> None:
        super().__init__()
        self.writer = conn
        self.reader = reader
        self.path = path
        # One connection is shared by every task: the lock keeps transactions from interleaving.
        self._lock = asyncio.Lock()
        self._after_commit: list[Callable[[], None]] | None = None   # of the open transaction
        self.conn: Any = _Routed(conn, reader, self._lock) if reader is not None else conn

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteDatabase:
        path = Path(path)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; transaction() issues BEGIN/COMMIT itself.
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA foreign_keys=ON")
            # NORMAL in WAL mode: a kill -9 loses nothing committed; only a power cut might.
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute("PRAGMA busy_timeout=5000")
            db = cls(conn, path)
            await db._migrate()
            db.reader = await cls._open_reader(path)
            db.conn = _Routed(conn, db.reader, db._lock)
        except BaseException:
            await conn.close()
            raise
        return db

    @staticmethod
    async def _open_reader(path: Path) -> aiosqlite.Connection:
        reader = await aiosqlite.connect(path, isolation_level=None)
        reader.row_factory = aiosqlite.Row
        try:
            await reader.execute("PRAGMA foreign_keys=ON")
            await reader.execute("PRAGMA busy_timeout=5000")
        except BaseException:
            await reader.close()
            raise
        return reader

    async def _migrate(self) -> None:
        # Which files were applied is kept in a table as well as in user_version (the highest one),
        # so a lower number that lands after a higher one (parts are built side by side) still runs.
        await self.writer.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
        async with self.writer.execute("SELECT number FROM schema_migrations") as cur:
            applied = {row[0] for row in await cur.fetchall()}
        highest = max([await self.schema_version(), *applied])
        for number, name, sql in migrations():
            if number in applied:
                continue
            highest = max(highest, number)
            # The whole file and its bookkeeping commit together, or not at all.
            script = (f"BEGIN IMMEDIATE;\n{sql}\n;"
                      f"INSERT INTO schema_migrations VALUES ({number}, '{name}', (julianday('now') - 2440587.5) * 86400.0);"
                      f"PRAGMA user_version = {highest};\nCOMMIT;")
            try:
                await self.writer.executescript(script)
            except Exception as exc:
                if self.writer.in_transaction:
                    await self.writer.execute("ROLLBACK")
                raise MigrationError(f"migration {name} failed: {exc}") from exc

    async def schema_version(self) -> int:
        async with self.writer.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One committed transaction; rolled back if the body raises (or the task is cancelled)."""
        async with self._lock:
            mark = _WRITING.set(True)
            self._after_commit = []
            try:
                async with self._transaction() as conn:
                    yield conn
            finally:
                _WRITING.reset(mark)
                callbacks, self._after_commit = self._after_commit, None
        # committed (an exception above skips this): run what waited for it
        for callback in callbacks or ():
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction this task holds has committed (never on rollback):
        e.g. the job store wakes its dequeuers only when the jobs it wrote are visible."""
        if self._after_commit is None or not _WRITING.get():
            raise RuntimeError("after_commit() outside a transaction")
        self._after_commit.append(callback)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        try:
            await _to_completion(self.writer.execute("BEGIN IMMEDIATE"))
            yield self.writer
        except BaseException:
            if self.writer.in_transaction:
                await _to_completion(self.writer.execute("ROLLBACK"))
            raise
        try:
            await _to_completion(self.writer.execute("COMMIT"))
        except BaseException:
            if self.writer.in_transaction:  # COMMIT itself failed (disk full, ...)
                await _to_completion(self.writer.execute("ROLLBACK"))
            raise

    async def write(self, sql: str, params: Sequence[Any] = (), *,
                    notify: tuple[str, str] | None = None) -> list[aiosqlite.Row]:
        rows = await self._write(sql, params)
        if rows and notify is not None:
            self._fan_out(*notify)
        return rows

    async def _write(self, sql: str, params: Sequence[Any]) -> list[aiosqlite.Row]:
        """One statement as its own transaction (SQLite autocommit), e.g. ``UPDATE ... RETURNING``.

        Holds the lock so it never lands inside another task's open transaction; one round trip
        to the database thread instead of BEGIN/statement/COMMIT.
        """
        async with self._lock:
            try:
                return list(await _to_completion(self.writer.execute_fetchall(sql, params)))
            except sqlite3.OperationalError as exc:
                # Another connection wrote since this statement's read began (SQLITE_BUSY_SNAPSHOT,
                # which skips the busy timeout): retry inside BEGIN IMMEDIATE, which waits properly.
                if "locked" not in str(exc) or self.writer.in_transaction:
                    raise
        async with self.transaction() as conn:
            return list(await conn.execute_fetchall(sql, params))

    def notify(self, channel: str, payload: str = "") -> Any:
        """One process owns an SQLite file: tell this process's subscribers once the transaction
        commits."""
        self.after_commit(lambda: self._fan_out(channel, payload))
        return DONE

    def data_version(self) -> VersionSource:
        return DataVersion(self.path)

    async def integrity_check(self) -> str:
        async with self.writer.execute("PRAGMA integrity_check") as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else ""

    async def close(self) -> None:
        if self.reader is not None:
            await self.reader.close()
        await self.writer.close()


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
