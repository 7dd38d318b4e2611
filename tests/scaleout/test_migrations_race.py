"""Two ``osbuildd serve`` started at the same moment on one empty PostgreSQL database: both become
ready, every migration is applied once (the advisory lock serialises them: the second waits, then
finds them applied), and every table of the migrations exists."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import asyncpg
import tomli_w
from cloud.tlsutil import serve, stop

REPO = Path(__file__).resolve().parents[2]
MIGRATIONS = REPO / "osbuildd" / "queue" / "migrations" / "postgresql"


def expected() -> tuple[list[int], set[str]]:
    """The migration numbers and the tables their files create."""
    files = sorted(MIGRATIONS.glob("*.sql"))
    numbers = [int(f.name.split("_", 1)[0]) for f in files]
    tables = {m.lower() for f in files
              for m in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", f.read_text(), re.IGNORECASE)}
    return numbers, tables


def write_config(root: Path, url: str) -> Path:
    state, run = root / "state", root / "run"
    run.mkdir(parents=True)
    data = {"state_dir": str(state), "log_format": "json", "weldr": {"socket": str(run / "weldr.socket")},
            "cloud": {"listen": f"unix:{run}/cloud.sock"}, "builder": {"local_executor": False},
            "database": {"url": url}}
    config = root / "osbuildd.toml"
    config.write_text(tomli_w.dumps(data))
    return config


async def test_two_daemons_at_once_apply_migrations_once(tmp_path: Path, pg_url: str) -> None:
    numbers, tables = expected()
    assert numbers and len(tables) >= 10, (numbers, tables)
    roots = [tmp_path / "a", tmp_path / "b"]
    configs = [write_config(r, pg_url) for r in roots]
    started = await asyncio.gather(*(serve(c, r) for c, r in zip(configs, roots, strict=True)))
    try:
        await asyncio.gather(*(notify.wait_for("READY=1", proc) for proc, notify, _ in started))
        conn = await asyncpg.connect(pg_url)
        try:
            rows = await conn.fetch("SELECT number, count(*) AS n FROM schema_migrations GROUP BY number"
                                    " ORDER BY number")
            present = {r["table_name"] for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        finally:
            await conn.close()
        assert [(r["number"], r["n"]) for r in rows] == [(n, 1) for n in numbers]
        assert tables <= present, tables - present
    finally:
        rcs = [await stop(proc) for proc, _, _ in started]
        for _, notify, _ in started:
            notify.close()
    logs = [log.read_text(errors="replace") for _, _, log in started]
    assert rcs == [0, 0], [log[-3000:] for log in logs]
    assert not any('"level": "error"' in log or "Traceback" in log for log in logs), [log[-3000:] for log in logs]
