"""PostgreSQL for tests: the admin URL of the private cluster (scripts/test-pg.sh) and throwaway databases.

The cluster is started by scripts/test.sh, which exports OSBUILDD_TEST_PG (admin URL, database
``postgres``), OSBUILDD_TEST_PG_CTL (its pg_ctl wrapper) and OSBUILDD_TEST_REQUIRE_PG=1 (so CI fails
rather than skips when the cluster is missing).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

ENV_URL = "OSBUILDD_TEST_PG"
ENV_CTL = "OSBUILDD_TEST_PG_CTL"
ENV_REQUIRE = "OSBUILDD_TEST_REQUIRE_PG"
DB_PREFIX = "osbuildd_t_"

T = TypeVar("T")


def _missing(what: str) -> None:
    reason = f"no PostgreSQL: run via scripts/test.sh ({what})"
    if os.environ.get(ENV_REQUIRE) == "1":
        pytest.fail(f"{reason}; {ENV_REQUIRE}=1 forbids skipping", pytrace=False)
    pytest.skip(reason)


def admin_url() -> str:
    """The admin URL, or skip (fail under OSBUILDD_TEST_REQUIRE_PG=1) when the cluster is not there."""
    url = os.environ.get(ENV_URL, "").strip()
    if not url:
        _missing(f"{ENV_URL} unset")
    return url


def pg_ctl() -> str:
    """The cluster's pg_ctl wrapper (runs as the cluster's user, -D set)."""
    path = os.environ.get(ENV_CTL, "").strip()
    if not path or not os.access(path, os.X_OK):
        _missing(f"{ENV_CTL} unset or not executable")
    return path


def with_database(url: str, name: str) -> str:
    """``url`` with its database replaced by ``name`` (query string, e.g. sslmode, kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def create_database(admin: str, name: str | None = None, template: str = "template0") -> str:
    """Create an empty database (a random ``osbuildd_t_<hex>`` unless named) and return its URL."""
    name = name or DB_PREFIX + secrets.token_hex(6)
    conn = await asyncpg.connect(admin)
    try:
        # CREATE DATABASE takes no parameters: identifiers quoted by hand
        await conn.execute(f"CREATE DATABASE {_quote_ident(name)} TEMPLATE {_quote_ident(template)}")
    finally:
        await conn.close()
    return with_database(admin, name)


async def drop_database(admin: str, url: str) -> None:
    """Drop the database ``url`` names, even with sessions still open (PG 13+ WITH (FORCE))."""
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(database_of(url))} WITH (FORCE)")
    finally:
        await conn.close()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a private loop in its own thread.

    Sync fixtures use it, so they work whatever loop pytest-asyncio has (or is running) in this thread."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="pgtest")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Backend:
    """Which database backend a parametrised test runs against; ``url`` is set for postgresql only."""

    name: str  # "sqlite" or "postgresql"
    url: str | None = None

    @property
    def is_pg(self) -> bool:
        return self.name == "postgresql"


async def open_db(backend: Backend, sqlite_path: Any) -> Any:
    """The osbuildd Database of ``backend``: the SQLite file at ``sqlite_path`` or the test's fresh
    PostgreSQL database (migrations applied either way)."""
    from osbuildd.queue.db import Database
    if backend.is_pg:
        from osbuildd.queue.db_pg import PGDatabase
        return await PGDatabase.open(backend.url or "", pool_size=4, application_name="osbuildd-test")
    return await Database.open(sqlite_path)
