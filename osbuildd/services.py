"""What every API of the daemon shares, opened once by the daemon and handed to each API.

No API creates anything another API needs: the blueprint store, the source store, the compose
service, the depsolver and the distributions are all here, opened by :meth:`Services.open` and closed
by :meth:`Services.close`. An API keeps only what is its own (Weldr's listing coalescer, ...).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry
from structlog.typing import FilteringBoundLogger

from osbuildd.blueprint.store import BlueprintStore
from osbuildd.compose import ComposeService
from osbuildd.config import Config
from osbuildd.depsolve import Depsolver
from osbuildd.distro import Distros
from osbuildd.distro.sourcestore import SourceStore
from osbuildd.log import get_logger
from osbuildd.queue import Database, JobStore, errors
from osbuildd.queue.db import Leadership, open_database


class Closeable(Protocol):
    """What Services closes before the compose service: the local executor (osbuildd.executor)."""

    async def close(self) -> None: ...


def _default_depsolver() -> Depsolver:
    import osbuildd.depsolve as depsolve

    return depsolve


def _default_distros() -> Distros:
    import osbuildd.distro as distros

    return distros


@dataclass
class Services:
    config: Config
    db: Database
    jobs: JobStore
    blueprints: BlueprintStore
    sources: SourceStore
    compose: ComposeService
    depsolver: Depsolver = field(default_factory=_default_depsolver)   # the osbuildd.depsolve module
    distros: Distros = field(default_factory=_default_distros)         # the osbuildd.distro module
    log: FilteringBoundLogger = field(default_factory=get_logger)
    # this daemon's Prometheus metrics (osbuildd.api.metrics): its own, so apps in one process don't clash
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)
    # whether this daemon runs the periodic sweeps now (one daemon at a time on a shared database)
    leader: Leadership = field(default_factory=Leadership)
    # the in-process executor, once its user (daemon, ``osbuildd build``) started one: closed first
    executor: Closeable | None = None

    @classmethod
    async def open(cls, config: Config, *, recover: bool = True) -> Services:
        """Open the database (migrations applied), the job store, the blueprint and source stores and
        the compose service; ``recover`` runs crash recovery (jobs left running by a dead process
        settled, ``<state_dir>/tmp`` emptied) first. Builds run only once the daemon (or the CLI)
        starts an executor on these services."""
        from osbuildd.distro import repocheck
        repocheck.configure(config.builder.local_repo_dirs, config.builder.keyring_dirs)
        for d in (config.state_dir, config.tmp_dir, config.results_dir, config.store_dir, config.cache_dir):
            await asyncio.to_thread(d.mkdir, parents=True, exist_ok=True)
        db = await open_database(config)
        try:
            jobs = await JobStore.open(db, state_dir=config.state_dir, results_dir=config.results_dir,
                                        heartbeat_timeout=config.worker_api.job_timeout)
            if recover:
                await jobs.recover()
        except BaseException:
            await db.close()
            raise
        return cls(config=config, db=db, jobs=jobs, blueprints=BlueprintStore(db), sources=SourceStore(db),
                   compose=ComposeService(config, db, jobs), log=get_logger("osbuildd"),
                   leader=db.leadership("watchdog"))

    async def close(self) -> None:
        """Stop the executor (running builds end FAILED "daemon shutting down"), the compose service,
        the heartbeat watcher, and close the database."""
        try:
            if self.executor is not None:
                executor, self.executor = self.executor, None
                await executor.close()
            await self.compose.close()
            # whatever the in-process executor still holds: requeue compute jobs, fail builds
            await self.jobs.release_running(errors.REASON_SHUTTING_DOWN, owner=self.jobs.local_owner)
        finally:
            await self.leader.close()
            await self.jobs.close()
            await self.db.close()
