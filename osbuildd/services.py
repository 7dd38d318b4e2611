"""What every part of the daemon shares: configuration, database, job store, compose service, logger."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from osbuildd.config import Config
from osbuildd.log import get_logger
from osbuildd.queue import LOCAL_OWNER, Database, JobStore, errors


@dataclass
class Services:
    config: Config
    db: Database
    jobs: JobStore
    compose: Any = None  # osbuildd.compose.ComposeService, set by osbuildd.compose.attach()
    log: Any = field(default_factory=get_logger)

    @classmethod
    async def open(cls, config: Config, *, recover: bool = True) -> Services:
        """Open the database (migrations applied) and job store; ``recover`` runs crash recovery
        (jobs left running by a dead process settled, ``<state_dir>/tmp`` emptied) first."""
        from osbuildd.distro import repocheck
        repocheck.configure(config.builder.local_repo_dirs, config.builder.keyring_dirs)
        for d in (config.state_dir, config.tmp_dir, config.results_dir, config.store_dir, config.cache_dir):
            await asyncio.to_thread(d.mkdir, parents=True, exist_ok=True)
        db = await Database.open(config.db_path)
        try:
            jobs = await JobStore.open(db, state_dir=config.state_dir)
            if recover:
                await jobs.recover()
        except BaseException:
            await db.close()
            raise
        return cls(config=config, db=db, jobs=jobs, log=get_logger("osbuildd"))

    async def close(self) -> None:
        """Stop the compose service (running builds end FAILED "daemon shutting down"), the heartbeat
        watcher, and close the database."""
        try:
            if self.compose is not None:
                await self.compose.close()
            # whatever the in-process executor still holds: requeue compute jobs, fail builds
            await self.jobs.release_running(errors.REASON_SHUTTING_DOWN, owner=LOCAL_OWNER)
        finally:
            await self.jobs.close()
            await self.db.close()
