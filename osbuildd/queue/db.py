"""The database of osbuildd, one interface with two backends: the embedded SQLite file (the default,
:mod:`osbuildd.queue.db_sqlite`) and PostgreSQL shared by several daemons (:mod:`osbuildd.queue.db_pg`).

Stores write their SQL once, with ``?`` placeholders, and run it through ``db.conn`` (reads),
``db.transaction()`` (writes) and ``db.write()`` (one autocommitted statement); what differs between
the two SQL dialects comes from ``db.dialect``. Change notifications (``notify``/``subscribe``) reach
every process on the database: in-process on SQLite, ``LISTEN``/``NOTIFY`` on PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from osbuildd.errors import ErrorKind, ServiceError

from .dialect import Dialect

if TYPE_CHECKING:
    from osbuildd.config import Config

MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
BACKENDS = ("sqlite", "postgresql")
# the channels every daemon listens on: job state changes (wake dequeuers, cancels) and other data
JOBS_CHANNEL = "osbuildd_jobs"
DATA_CHANNEL = "osbuildd_data"

Row = Any   # sqlite3.Row or asyncpg.Record: both by column name and by index, and dict(row)
Subscriber = Callable[[str], None]


class MigrationError(RuntimeError):
    pass


class DatabaseUnavailable(ServiceError):
    """The database server cannot be reached (PostgreSQL restarting, network): retry later. Every
    API's middleware answers it as a 503-kind service error with this reason, not as a crash."""

    kind = ErrorKind.UNAVAILABLE
    error_id = "DatabaseUnavailable"


def migrations(backend: str = "sqlite") -> list[tuple[int, str, str]]:
    """(number, file name, SQL) of every migration shipped in ``osbuildd/queue/migrations/<backend>``,
    in order. Both backends carry the same numbers and names."""
    found = []
    for entry in resources.files("osbuildd.queue").joinpath("migrations", backend).iterdir():
        m = MIGRATION_NAME.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if len(set(numbers)) != len(numbers):
        raise MigrationError(f"two migrations share a number: {[name for _, name, _ in found]}")
    return found


class Cursor(Protocol):
    rowcount: int

    async def fetchall(self) -> list[Row]: ...
    async def fetchone(self) -> Row | None: ...


class Conn(Protocol):
    """What stores call on ``db.conn`` and on a transaction's connection (aiosqlite's shape):
    ``execute`` is awaited (a cursor) or entered (``async with conn.execute(...) as cur``)."""

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Any: ...
    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] | None = None) -> list[Row]: ...
    async def executemany(self, sql: str, parameters: Any) -> Any: ...


class VersionSource(Protocol):
    """Has anything been committed since? ``get()`` changes whenever it may have; None = cannot tell
    (cache nothing)."""

    async def get(self) -> int | None: ...
    def close(self) -> None: ...


class Database:
    """The interface both backends implement. ``Database.open(path)`` opens an SQLite file (tests and
    ``osbuildd build``); :func:`open_database` picks the backend from the configuration."""

    backend: str = ""
    dialect: Dialect
    path: Path | None = None
    conn: Any   # Conn

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}

    @classmethod
    async def open(cls, path: str | Path) -> Database:
        from .db_sqlite import SQLiteDatabase
        return await SQLiteDatabase.open(path)

    # -- to implement --
    def transaction(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    def after_commit(self, callback: Callable[[], None]) -> None:
        raise NotImplementedError

    async def write(self, sql: str, params: Sequence[Any] = (), *,
                    notify: tuple[str, str] | None = None) -> list[Row]:
        """One statement committed on its own (``UPDATE ... RETURNING``); with ``notify`` =
        (channel, payload), every process is told when it changed a row."""
        raise NotImplementedError

    async def schema_version(self) -> int:
        raise NotImplementedError

    async def integrity_check(self) -> str:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def data_version(self) -> VersionSource:
        raise NotImplementedError

    def notify(self, channel: str, payload: str = "") -> Any:
        """Tell every process on this database (this one included) once the transaction this task
        holds commits. Awaitable on PostgreSQL (it is a statement); on SQLite a no-op await."""
        raise NotImplementedError

    @property
    def connected(self) -> bool:
        return True

    def leadership(self, name: str) -> Leadership:
        """Who runs the periodic work called ``name`` (the heartbeat watchdog, dropping silent
        workers): on SQLite this daemon, alone on its file."""
        return Leadership()

    # -- shared --
    def subscribe(self, channel: str, callback: Subscriber) -> Callable[[], None]:
        """``callback(payload)`` on every notification on ``channel`` (also after a reconnect, with
        payload ``""``: notifications sent meanwhile were lost). Returns the unsubscribe."""
        self._subscribers.setdefault(channel, []).append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers.get(channel, []):
                self._subscribers[channel].remove(callback)
        return unsubscribe

    def _fan_out(self, channel: str, payload: str) -> None:
        for callback in list(self._subscribers.get(channel, ())):
            callback(payload)

    def _fan_out_all(self) -> None:
        for channel in list(self._subscribers):
            self._fan_out(channel, "")


class Leadership:
    """``leading``: whether this daemon runs the periodic work now. Always on one SQLite file;
    PostgreSQL hands it to one daemon at a time (an advisory lock held by a connection)."""

    leading: bool = True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class _Done:
    def __await__(self) -> Any:
        return iter(())


DONE = _Done()


def database_url(config: Config) -> str:
    """``[database] url``, else a URL from image-builder's PG* settings (``[image_builder] pg_*``),
    else "" (SQLite)."""
    if config.database.url:
        return config.database.url
    ib = config.image_builder
    if ib.pg_host:
        from urllib.parse import quote
        auth = quote(ib.pg_user, safe="") + (":" + quote(ib.pg_password, safe="") if ib.pg_password else "")
        return (f"postgresql://{auth}@{ib.pg_host}:{ib.pg_port}/{quote(ib.pg_database, safe='')}"
                f"?sslmode={ib.pg_sslmode}")
    return ""


async def open_database(config: Config, *, name: str = "osbuildd") -> Database:
    """The configured database with its migrations applied."""
    url = database_url(config)
    if not url:
        return await Database.open(config.db_path)
    from .db_pg import PGDatabase
    return await PGDatabase.open(url, pool_size=config.database.pool_size, application_name=name)


def is_unique_violation(exc: BaseException, marker: str) -> bool:
    """``exc`` is a unique-constraint violation naming ``marker`` (SQLite: in its message, e.g.
    ``ib_blueprints.name``; PostgreSQL: the constraint's name or its detail)."""
    import sqlite3
    if isinstance(exc, sqlite3.IntegrityError):
        return "UNIQUE" in str(exc) and marker in str(exc)
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    if isinstance(exc, asyncpg.UniqueViolationError):
        return marker in (getattr(exc, "constraint_name", "") or "") or marker in str(exc.detail or "")
    return False


def unique_violation_types() -> tuple[type[BaseException], ...]:
    import sqlite3

    import asyncpg
    return (sqlite3.IntegrityError, asyncpg.UniqueViolationError)
