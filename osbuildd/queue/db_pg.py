"""The PostgreSQL backend of :class:`osbuildd.queue.db.Database` (asyncpg): a pool for statements, one
listening connection per process for ``LISTEN``/``NOTIFY``, migrations under an advisory lock.

Stores' SQL is written with ``?``; it is rewritten to ``$1..$n`` once per statement text. No
process-wide lock: row locks (``FOR UPDATE``, ``FOR SHARE``, ``SKIP LOCKED``) order the writers of
several daemons, and a transaction's statements run on the connection bound to its task."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from .db import (
    DATA_CHANNEL,
    JOBS_CHANNEL,
    Database,
    DatabaseUnavailable,
    Leadership,
    MigrationError,
    Row,
    migrations,
)
from .dialect import POSTGRESQL

MIGRATION_LOCK = "osbuildd:migrations"
# errors that mean "the server went away", not "the statement is wrong"
UNAVAILABLE = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
               asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError, asyncio.TimeoutError)
_SQL_CACHE: dict[str, str] = {}


def placeholders(sql: str) -> str:
    """``?`` → ``$1``, ``$2``, ... outside quoted literals, quoted names and comments."""
    cached = _SQL_CACHE.get(sql)
    if cached is not None:
        return cached
    out, n, i, end = [], 0, 0, len(sql)
    while i < end:
        c = sql[i]
        if c in "'\"":
            j = sql.find(c, i + 1)
            while j != -1 and j + 1 < end and sql[j + 1] == c:   # doubled quote inside
                j = sql.find(c, j + 2)
            j = end - 1 if j == -1 else j
            out.append(sql[i:j + 1])
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = end if j == -1 else j
            out.append(sql[i:j])
            i = j
        elif c == "?":
            n += 1
            out.append(f"${n}")
            i += 1
        else:
            out.append(c)
            i += 1
    rewritten = "".join(out)
    if len(_SQL_CACHE) < 4096:
        _SQL_CACHE[sql] = rewritten
    return rewritten


def _returns_rows(sql: str) -> bool:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in ("SELECT", "WITH", "VALUES", "SHOW", "EXPLAIN") or "RETURNING" in sql.upper()


def _rowcount(status: str) -> int:
    """asyncpg's command tag ("UPDATE 3", "INSERT 0 1") as a row count."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


@dataclass
class _Tx:
    conn: asyncpg.Connection
    callbacks: list[Callable[[], None]] = field(default_factory=list)


_TX: contextvars.ContextVar[_Tx | None] = contextvars.ContextVar("osbuildd_pg_tx", default=None)


class _Cursor:
    """aiosqlite's cursor shape over rows already fetched (asyncpg fetches whole)."""

    def __init__(self, run: Callable[[], Any]) -> None:
        self._run = run
        self._rows: list[Row] | None = None
        self.rowcount = -1

    async def _load(self) -> _Cursor:
        if self._rows is None:
            self._rows, self.rowcount = await self._run()
        return self

    def __await__(self) -> Any:
        return self._load().__await__()

    async def __aenter__(self) -> _Cursor:
        return await self._load()

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def fetchall(self) -> list[Row]:
        rows, self._rows = self._rows or [], []
        return rows

    async def fetchone(self) -> Row | None:
        return self._rows.pop(0) if self._rows else None


class _Conn:
    """``db.conn`` and a transaction's connection: statements go to the task's transaction when it
    holds one, otherwise to any pool connection (autocommit)."""

    def __init__(self, db: PGDatabase, bound: asyncpg.Connection | None = None) -> None:
        self._db, self._bound = db, bound

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self._bound is not None:
            yield self._bound
            return
        tx = _TX.get()
        if tx is not None:
            yield tx.conn
            return
        async with self._db.acquire() as conn:
            yield conn

    async def _run(self, sql: str, params: Sequence[Any] | None) -> tuple[list[Row], int]:
        text, args = placeholders(sql), tuple(params or ())
        async with self._connection() as conn:
            try:
                if _returns_rows(sql):
                    rows = await conn.fetch(text, *args)
                    return list(rows), len(rows)
                return [], _rowcount(await conn.execute(text, *args))
            except UNAVAILABLE as exc:
                raise DatabaseUnavailable(f"PostgreSQL: {exc}") from exc

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> _Cursor:
        return _Cursor(lambda: self._run(sql, parameters))

    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] | None = None) -> list[Row]:
        return (await self._run(sql, parameters))[0]

    async def executemany(self, sql: str, parameters: Any) -> None:
        text = placeholders(sql)
        async with self._connection() as conn:
            try:
                await conn.executemany(text, [tuple(p) for p in parameters])
            except UNAVAILABLE as exc:
                raise DatabaseUnavailable(f"PostgreSQL: {exc}") from exc

    @property
    def in_transaction(self) -> bool:
        return self._bound is not None or _TX.get() is not None


class PGDatabase(Database):
    backend = "postgresql"
    dialect = POSTGRESQL

    def __init__(self, pool: asyncpg.Pool, url: str, application_name: str) -> None:
        super().__init__()
        self.url, self.pool, self._app = url, pool, application_name
        self.conn = _Conn(self)
        self._version = 0           # bumped on every commit here and every notification received
        self._listener: _Listener | None = None
        self._closed = False

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10,  # type: ignore[override]
                   application_name: str = "osbuildd") -> PGDatabase:
        settings = {"application_name": application_name[:63]}
        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=pool_size, server_settings=settings,
                                             command_timeout=60)
        except UNAVAILABLE as exc:
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        db = cls(pool, url, application_name)
        try:
            await db._migrate()
            db._listener = _Listener(db)
            await db._listener.start()
        except BaseException:
            await db.close()
            raise
        return db

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            conn_cm = self.pool.acquire()
            conn = await conn_cm.__aenter__()
        except UNAVAILABLE as exc:
            raise DatabaseUnavailable(f"PostgreSQL: {exc}") from exc
        try:
            yield conn
        finally:
            await conn_cm.__aexit__(None, None, None)

    async def _migrate(self) -> None:
        async with self.acquire() as conn:
            # a second daemon starting at the same moment waits here, then finds the files applied
            await conn.execute("SELECT pg_advisory_lock(hashtext($1))", MIGRATION_LOCK)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations"
                    " (number integer PRIMARY KEY, name text NOT NULL, applied_at double precision NOT NULL)")
                applied = {r[0] for r in await conn.fetch("SELECT number FROM schema_migrations")}
                for number, name, sql in migrations("postgresql"):
                    if number in applied:
                        continue
                    try:
                        async with conn.transaction():
                            await conn.execute(sql)
                            await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2, $3)",
                                               number, name, time.time())
                    except asyncpg.PostgresError as exc:
                        raise MigrationError(f"migration {name} failed: {exc}") from exc
            finally:
                with contextlib.suppress(*UNAVAILABLE, asyncpg.PostgresError):
                    await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", MIGRATION_LOCK)

    async def schema_version(self) -> int:
        rows = await self.conn.execute_fetchall("SELECT coalesce(max(number), 0) FROM schema_migrations")
        return int(rows[0][0])

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Conn]:
        """One committed transaction (READ COMMITTED) on a connection of its own; rolled back if the
        body raises. After-commit callbacks run once it committed."""
        if _TX.get() is not None:
            raise RuntimeError("nested transaction()")
        async with self.acquire() as conn:
            tx = _Tx(conn)
            mark = _TX.set(tx)
            try:
                transaction = conn.transaction()
                try:
                    await transaction.start()
                except UNAVAILABLE as exc:
                    raise DatabaseUnavailable(f"PostgreSQL: {exc}") from exc
                try:
                    yield _Conn(self, conn)
                except BaseException:
                    with contextlib.suppress(*UNAVAILABLE, asyncpg.PostgresError):
                        await asyncio.shield(transaction.rollback())
                    raise
                try:
                    await asyncio.shield(transaction.commit())
                except UNAVAILABLE as exc:
                    raise DatabaseUnavailable(f"PostgreSQL: commit: {exc}") from exc
            finally:
                _TX.reset(mark)
        self._version += 1
        for callback in tx.callbacks:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        tx = _TX.get()
        if tx is None:
            raise RuntimeError("after_commit() outside a transaction")
        tx.callbacks.append(callback)

    async def write(self, sql: str, params: Sequence[Any] = (), *,
                    notify: tuple[str, str] | None = None) -> list[Row]:
        if notify is not None:
            # the notification rides in the same statement: one round trip, sent only if a row changed
            sql = f"WITH w AS ({sql}) SELECT w.*, pg_notify(?, ?) FROM w"
            params = (*params, *notify)
        rows: list[Row] = await self.conn.execute_fetchall(sql, params)
        if _TX.get() is None:
            self._version += 1
        return rows

    async def notify(self, channel: str, payload: str = "") -> None:
        """``pg_notify`` in the task's transaction: delivered to every listener (this process too)
        at commit, never on rollback."""
        tx = _TX.get()
        if tx is None:
            raise RuntimeError("notify() outside a transaction")
        await tx.conn.execute("SELECT pg_notify($1, $2)", channel, payload)

    def leadership(self, name: str) -> Leadership:
        return _PGLeadership(self, name)

    def data_version(self) -> _Version:
        return _Version(self)

    @property
    def connected(self) -> bool:
        return self._listener is not None and self._listener.connected

    async def integrity_check(self) -> str:
        await self.conn.execute_fetchall("SELECT 1")
        return "ok"

    async def close(self) -> None:
        self._closed = True
        if self._listener is not None:
            await self._listener.close()
        with contextlib.suppress(*UNAVAILABLE):
            await asyncio.wait_for(self.pool.close(), 10)

    def received(self, channel: str, payload: str) -> None:
        self._version += 1
        self._fan_out(channel, payload)

    def reconnected(self) -> None:
        self._version += 1
        self._fan_out_all()


class _Version:
    """The process's count of commits and notifications: any change, here or in another daemon,
    moves it; None while the listener is down (a change could go unseen)."""

    def __init__(self, db: PGDatabase) -> None:
        self._db = db

    async def get(self) -> int | None:
        return self._db._version if self._db.connected else None

    def close(self) -> None:
        return None


class _Listener:
    """A connection of its own (not the pool's) that LISTENs on the channels and hands each
    notification to the database's subscribers; reconnects with backoff after a loss and then wakes
    every subscriber once, since notifications sent meanwhile are gone."""

    CHANNELS = (JOBS_CHANNEL, DATA_CHANNEL)

    def __init__(self, db: PGDatabase) -> None:
        self._db = db
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connected = False

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._watch(), name="osbuildd-pg-listener")

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._db.url, server_settings={
            "application_name": f"{self._db._app}:listen"[:63]})
        for channel in self.CHANNELS:
            await conn.add_listener(channel, self._on_notify)
        conn.add_termination_listener(lambda _c: self._lost.set())
        self._conn, self.connected = conn, True
        self._lost.clear()

    def _on_notify(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        self._db.received(channel, payload)

    async def _watch(self) -> None:
        delay = 0.2
        while True:
            if self.connected:
                await self._lost.wait()
                self.connected = False
                self._db._version += 1
            try:
                if self._conn is not None:
                    self._conn.terminate()
                await self._connect()
            except (*UNAVAILABLE, asyncpg.PostgresError):
                await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.2
            self._db.reconnected()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            with contextlib.suppress(*UNAVAILABLE, asyncpg.PostgresError):
                await asyncio.wait_for(self._conn.close(), 5)
        self.connected = False


class _PGLeadership(Leadership):
    """Leader while a connection of its own holds the session advisory lock ``osbuildd:leader:<name>``.
    The holder runs no statement while it leads; when it dies its connection goes and PostgreSQL
    frees the lock, which another daemon's next try (every ~5 s) takes."""

    RETRY = 5.0

    def __init__(self, db: PGDatabase, name: str) -> None:
        self._db, self._key = db, f"osbuildd:leader:{name}"
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.leading = False

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"osbuildd-{self._key}")

    async def _try(self) -> bool:
        if self._conn is None or self._conn.is_closed():
            self._lost.clear()
            self._conn = await asyncpg.connect(self._db.url, server_settings={
                "application_name": f"{self._db._app}:leader"[:63]})
            self._conn.add_termination_listener(lambda _c: self._lost.set())
        return bool(await self._conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self._key))

    async def _run(self) -> None:
        while True:
            try:
                got = await self._try()
            except (*UNAVAILABLE, asyncpg.PostgresError):
                got = False
                if self._conn is not None:
                    self._conn.terminate()
                    self._conn = None
            if got:
                self.leading = True
                await self._lost.wait()   # the lock goes with the connection
                self.leading = False
                self._conn = None
                continue
            await asyncio.sleep(self.RETRY * (0.8 + 0.4 * random.random()))

    async def close(self) -> None:
        self.leading = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._conn is not None:
            with contextlib.suppress(*UNAVAILABLE, asyncpg.PostgresError):
                await asyncio.wait_for(self._conn.close(), 5)
            self._conn = None
