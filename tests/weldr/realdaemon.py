"""The real daemon (``osbuildd.daemon.serve``) in the test's event loop, with its Weldr socket in a temp dir."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from osbuildd.compose import ComposeService
from osbuildd.config import Config
from osbuildd.daemon import serve
from osbuildd.queue import Database, JobStore

from .conftest import WeldrClient


def share_cache(state_dir: Path, shared_state_dir: Path) -> None:
    """Point the state dir's depsolve cache (and engine store) at the run-wide shared ones."""
    state_dir.mkdir(parents=True, exist_ok=True)
    for name in ("cache", "store"):
        link = state_dir / name
        if not link.exists():
            os.symlink(shared_state_dir / name, link)


@asynccontextmanager
async def real_daemon(state_dir: Path, **sections: Any) -> AsyncIterator[WeldrClient]:
    socket_path = state_dir / "weldr.socket"
    weldr = {"socket": str(socket_path), **sections.pop("weldr", {})}
    config = Config.from_dict({"state_dir": str(state_dir), "log_format": "json", "weldr": weldr, **sections})
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(config, on_ready=lambda _: ready.set(), stop=stop))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        raise RuntimeError(f"daemon did not start: {task.exception() or task.result()}")
    try:
        connector = aiohttp.UnixConnector(path=str(socket_path), limit=100)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=3600)) as s:
            yield WeldrClient(s)
    finally:
        stop.set()
        await task


@asynccontextmanager
async def daemon_and_worker(tmp_path: Path, shared_state_dir: Path) -> AsyncIterator[tuple[WeldrClient, Any, Any]]:
    """A daemon that builds nothing, plus a second database connection playing the worker that moves
    its jobs (or a tool changing the database behind the daemon's back): (client, jobs, compose service)."""
    state_dir = tmp_path / "state"
    share_cache(state_dir, shared_state_dir)
    async with real_daemon(state_dir, builder={"local_executor": False}) as client:
        db = await Database.open(state_dir / "osbuildd.db")
        jobs = JobStore(db)
        config = Config.from_dict({"state_dir": str(state_dir)})
        fresh = ComposeService(config, db, jobs)
        try:
            yield client, jobs, fresh
        finally:
            await fresh.close()
            await db.close()
