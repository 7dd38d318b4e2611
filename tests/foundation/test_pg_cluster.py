"""The private PostgreSQL cluster of scripts/test-pg.sh is what the PostgreSQL tests assume it is.

Loopback only, an unprivileged server process, password auth, pg_stat_statements preloaded, LISTEN/NOTIFY,
and a pg_ctl wrapper that restarts it (the restart test is last: it drops every open session).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pgtest
import pytest


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])  # real uid
    raise AssertionError(f"no Uid line for pid {pid}")


def _ppid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid line for pid {pid}")


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{host}"))


async def test_listens_on_loopback_only(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url, timeout=10)
    try:
        assert await conn.fetchval("SHOW listen_addresses") == "127.0.0.1"
        assert urlsplit(pg_url).hostname == "127.0.0.1"
    finally:
        await conn.close()


async def test_server_runs_unprivileged(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url, timeout=10)
    try:
        backend_pid = await conn.fetchval("SELECT pg_backend_pid()")
        data_dir = await conn.fetchval("SHOW data_directory")
        # read while the session is open: its backend process exits with it
        postmaster_pid = _postmaster_pid(Path(data_dir))
        assert _ppid_of(backend_pid) == postmaster_pid
        assert _uid_of(postmaster_pid) != 0
        assert _uid_of(backend_pid) != 0
    finally:
        await conn.close()


async def test_password_is_required(pg_url: str) -> None:
    # the password given explicitly (empty or wrong), so no PGPASSWORD/.pgpass can stand in for it
    for password in ("", "wrong-" + secrets.token_hex(4)):
        with pytest.raises(asyncpg.InvalidPasswordError):
            conn = await asyncpg.connect(_without_password(pg_url), password=password, timeout=10)
            await conn.close()


async def test_pg_stat_statements_counts_calls(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url, timeout=10)
    try:
        await conn.execute("CREATE EXTENSION pg_stat_statements")
        await conn.execute("SELECT pg_stat_statements_reset()")
        for i in range(5):
            assert await conn.fetchval("SELECT $1::int + 1 AS osbuildd_pss_probe", i) == i + 1
        calls = await conn.fetchval(
            "SELECT sum(calls) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = current_database() AND s.query LIKE '%osbuildd_pss_probe%'"
            " AND s.query NOT LIKE '%pg_stat_statements%'"
        )
        assert calls == 5
    finally:
        await conn.close()


async def test_listen_notify_between_connections(pg_url: str) -> None:
    listener = await asyncpg.connect(pg_url, timeout=10)
    sender = await asyncpg.connect(pg_url, timeout=10)
    got: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_notify(_conn: object, _pid: int, channel: str, payload: str) -> None:
        if channel == "osbuildd_probe" and not got.done():
            got.set_result(payload)

    try:
        await listener.add_listener("osbuildd_probe", on_notify)
        await sender.execute("SELECT pg_notify('osbuildd_probe', 'hello')")
        assert await asyncio.wait_for(got, 10) == "hello"
    finally:
        await listener.close()
        await sender.close()


async def _connect_retrying(url: str, deadline_s: float) -> asyncpg.Connection:
    end = time.monotonic() + deadline_s
    while True:
        try:
            return await asyncpg.connect(url, timeout=5)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.2)


async def test_pg_ctl_wrapper_restarts_server(pg_url: str, tmp_path: Path) -> None:
    """Last in the file: a restart ends every session on the cluster."""
    ctl = pgtest.pg_ctl()
    conn = await asyncpg.connect(pg_url, timeout=10)
    try:
        started = await conn.fetchval("SELECT pg_postmaster_start_time()")
    finally:
        await conn.close()
    out = tmp_path / "pg_ctl.out"
    with out.open("wb") as sink:  # a file, not a pipe: nothing the server inherits can hold it open
        proc = await asyncio.create_subprocess_exec(
            ctl, "restart", "-m", "fast", "-w", "-t", "60", stdout=sink, stderr=sink
        )
        rc = await asyncio.wait_for(proc.wait(), 90)
    assert rc == 0, out.read_text(errors="replace")
    conn = await _connect_retrying(pg_url, 30)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert await conn.fetchval("SELECT pg_postmaster_start_time()") > started
        assert await conn.fetchval("SHOW shared_preload_libraries") == "pg_stat_statements"
    finally:
        await conn.close()
