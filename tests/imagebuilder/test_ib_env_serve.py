"""``osbuildd serve`` takes image-builder's environment as image-builder does: LISTEN_ADDRESS opens the
listener no config file names, a bad value is a one-line error (exit 2) naming the variable, and
the log names the variables applied, never their values (some are secrets)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg
from foundation.daemon_helpers import NotifySocket, daemon_env, free_port, get_json

REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    config = tmp_path / "osbuildd.toml"
    config.write_text(f'state_dir = "{state}"\n[weldr]\nsocket = "{state}/api.socket"\n'
                      "[builder]\nlocal_executor = false\n")
    return config


async def _serve(tmp_path: Path, notify: NotifySocket, **env: str) -> asyncio.subprocess.Process:
    full = daemon_env(REPO, notify, **env)
    for var in ("LISTEN_ADDRESS", "LOG_LEVEL", "OSBUILD_URL", "QUOTA_FILE", "PGHOST"):
        if var not in env:
            full.pop(var, None)   # the test's own environment decides, not the caller's shell
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(_config(tmp_path)),
        "--composer-config", "", cwd=REPO, env=full,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def test_listen_address_opens_the_image_builder_listener(tmp_path: Path) -> None:
    port = free_port()
    notify = NotifySocket(tmp_path / "notify.sock")
    proc = await _serve(tmp_path, notify, LISTEN_ADDRESS=f"127.0.0.1:{port}",
                        COMPOSER_OFFLINE_TOKEN="s3cr3t-offline", COMPOSER_TOKEN_URL="https://sso.invalid/token",
                        OSBUILD_URL="https://composer.invalid")
    try:
        await notify.wait_for("READY=1", proc)
        status, body = await get_json(f"http://127.0.0.1:{port}/status")
        assert status == 200 and body["version"] == "1.0", body
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            _, err = await proc.communicate()
        notify.close()
    text = err.decode()
    assert proc.returncode == 0, text
    assert "LISTEN_ADDRESS" in text and "COMPOSER_OFFLINE_TOKEN" in text, text   # named ...
    assert "s3cr3t-offline" not in text                                          # ... never shown


async def test_a_bad_variable_is_a_one_line_error(tmp_path: Path) -> None:
    notify = NotifySocket(tmp_path / "notify.sock")
    proc = await _serve(tmp_path, notify, LISTEN_ADDRESS="127.0.0.1:not-a-port")
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    notify.close()
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2, lines
    assert len(lines) == 1 and "LISTEN_ADDRESS" in lines[0] and "Traceback" not in lines[0], lines
    assert not (tmp_path / "state" / "osbuildd.db").exists()   # nothing was started


async def test_pg_environment_selects_postgresql(tmp_path: Path, pg_url: str) -> None:
    """image-builder's PG* variables put every store on that PostgreSQL (no [database] url needed);
    the password is never logged nor left in the environment."""
    parts = urlsplit(pg_url)
    port = free_port()
    notify = NotifySocket(tmp_path / "notify.sock")
    proc = await _serve(tmp_path, notify, LISTEN_ADDRESS=f"127.0.0.1:{port}", PGHOST=parts.hostname,
                        PGPORT=str(parts.port), PGDATABASE=parts.path.lstrip("/"), PGUSER=parts.username,
                        PGPASSWORD=unquote(parts.password or ""), PGSSLMODE="disable")
    try:
        await notify.wait_for("READY=1", proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            _, err = await proc.communicate()
        notify.close()
    text = err.decode()
    assert '"backend": "postgresql"' in text and unquote(parts.password or "x") not in text, text
    assert not (tmp_path / "state" / "osbuildd.db").exists()
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") >= 8
    finally:
        await conn.close()
    assert os.environ.get("PGPASSWORD") is None or os.environ["PGPASSWORD"] != parts.password


async def test_unreachable_postgresql_is_one_line(tmp_path: Path) -> None:
    notify = NotifySocket(tmp_path / "notify.sock")
    proc = await _serve(tmp_path, notify, LISTEN_ADDRESS=f"127.0.0.1:{free_port()}", PGHOST="127.0.0.1",
                        PGPORT=str(free_port()), PGPASSWORD="pg-s3cr3t")
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    notify.close()
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 1, lines
    assert "PostgreSQL" in lines[-1] and "Traceback" not in err.decode() and "pg-s3cr3t" not in err.decode(), lines
