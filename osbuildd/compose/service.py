"""The compose service: validates a request, depsolves it and generates its manifest inside the
request (as upstream's Weldr compose handler: a compose that cannot be built is refused before anything
is stored), then stores upstream's job graph ``depsolve`` -> ``manifest-id-only`` -> ``osbuild:<arch>``
(whose id is the compose id) with the first two already finished.

Caching and several daemons. The service's reads (snapshot()/view(), get()'s settled composes, the
groups) are cached against the database's data version (``db.data_version()``): SQLite's
``PRAGMA data_version`` moves at any connection's commit; on PostgreSQL the version moves at every
commit of this process and at every notification received from any daemon on the database, and is
None (nothing cached) while the listener is down. Hence the rule: every write that a read here can
see notifies in its own transaction: composes/compose_groups rows (compose/store.py, DATA_CHANNEL),
job state and progress (the job store, JOBS_CHANNEL). Nothing assumes the writes went through this
process: rows another daemon added or deleted are found by row counts (store.counts(), GroupIndex's
row mark) once the version moved, and a cache entry is kept only if the version did not move while it
was read. A compose created or deleted through another daemon is therefore seen on the first read
after its notification arrived."""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import json
import random
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from osbuildd import distro as distros
from osbuildd import sealing
from osbuildd.blueprint import Blueprint, BlueprintError
from osbuildd.config import Config
from osbuildd.depsolve import PackageSpec
from osbuildd.distro import Arch, Distro, ImageType
from osbuildd.queue import Database, GraphJob, Job, JobNotFound, JobStatus, JobStore, JobStoreError, errors

from . import handlers, readcache, store
from .enqueue import (
    DEPSOLVE,
    MANIFEST,
    Prepared,
    build_job,
    build_type,
    check_repositories,
    check_size,
    check_targets,
    compose_row,
    host_arch,
    package_sets_json,
    pending,
    placeholder,
    target_json,
)
from .groups import GroupIndex, Groups
from .model import (
    Compose,
    ComposeNotFound,
    ComposeRequest,
    ComposeRequestError,
    ComposeStateError,
)
from .reads import Snapshot, canceled_error, is_settled, order_key, slim, state_of, upload_statuses

__all__ = ["DEPSOLVE", "MANIFEST", "ComposeService", "Snapshot", "build_type", "check_repositories", "host_arch",
           "target_json", "upload_statuses"]
_check_repositories = check_repositories   # the name tests/distro use
CANCEL_GRACE = 300.0   # seconds a canceled build may still get its error written (see _cacheable())


class ComposeService:
    # get() hands out the same object for a settled compose only while it stays as it is: callers
    # may cache what they render from it by identity (Weldr's compose/info, compose/status/<id>)
    stable_settled = True

    def __init__(self, config: Config, db: Database, jobs: JobStore) -> None:
        self.config = config
        self.db = db
        self.jobs = jobs
        # snapshot() cache. A compose whose jobs are all finished/canceled ("settled") never changes
        # again except by delete (and a canceled build's error, see _cacheable()), so snapshot() reads
        # from the database only the others. Other daemons may write too (a shared PostgreSQL): their
        # inserts and deletes show in store.counts() (see _list()). The cache holds one slim Compose
        # per settled compose (no packages/manifest/result: ~1-3 KB each).
        self._settled: dict[str, Compose] | None = None   # None: not loaded yet
        self._order: list[Compose] = []      # self._settled's values sorted by (created, id)
        self._order_keys: list[tuple[float, str]] = []
        self._order_stale = True
        self._version = 0                    # bumped whenever the settled set changes
        self._live: set[str] = set()         # not settled when last seen, or just started here
        self._orphans = 0                    # composes rows whose build job is gone (not listed)
        self._jobs_gone = 0                  # job rows deleted so far (store.counts), as last seen
        self._deletes = 0                    # bumped by this service's delete(): a list() that read
        self._list_lock = asyncio.Lock()     # before it must not put the deleted compose back
        # another daemon's executor may still write a canceled build's error (its refresh() is not ours)
        self._shared = db.backend != "sqlite"
        self._sealer_obj: sealing.Sealer | None = None   # opened on the first compose with credentials
        # snapshot() answered without SQL while nobody committed to the database since
        self._data_version = self.db.data_version()
        self._snap: Snapshot | None = None
        self._snap_mark: tuple[int, int, int] | None = None   # (db version, deletes, version) of _snap
        self._whole = readcache.SettledComposes(self.db, self._data_version)   # get()'s cache
        self._groups = GroupIndex(self.db, self._data_version)

    async def _sealer(self) -> sealing.Sealer:
        if self._sealer_obj is None:
            self._sealer_obj = await asyncio.to_thread(sealing.Sealer.open, self.config.state_dir)
        return self._sealer_obj

    # -- requests -------------------------------------------------------------------------------

    def resolve(self, req: ComposeRequest) -> tuple[Distro, Arch, ImageType]:
        """(distro, arch, image type) of a request, or ComposeRequestError naming the bad field."""
        bp = req.blueprint
        name = req.distro or bp.distro or distros.host(self.config.distros.host)
        try:
            d = distros.get(name)
        except distros.UnknownDistro:
            raise ComposeRequestError("distro", f"unknown distribution {name!r}; known: "
                                      + ", ".join(distros.names())) from None
        arch_name = req.arch or bp.arch or host_arch()
        try:
            arch = d.arch(arch_name)
        except distros.UnknownArch:
            raise ComposeRequestError("arch", f"unknown architecture {arch_name!r} for {d.name}; known: "
                                      + ", ".join(sorted(d.arches))) from None
        try:
            it = arch.image_type(req.image_type)
        except distros.UnknownImageType:
            raise ComposeRequestError("image_type", f"unknown image type {req.image_type!r} for "
                                      f"{d.name}/{arch.name}; known: "
                                      + ", ".join(arch.image_type_names())) from None
        return d, arch, it

    async def _plan(self, req: ComposeRequest, check_engine: bool = True) -> tuple[Distro, Arch, ImageType, dict[str, Any], bool]:
        """Validate; (distro, arch, image type, depsolve package sets, engine checked already)."""
        d, arch, it = self.resolve(req)
        bp = req.blueprint
        if not isinstance(bp, Blueprint):
            raise ComposeRequestError("blueprint", "missing blueprint")
        check_size(req.size)
        if req.repositories is not None:
            check_repositories(req.repositories)
        if req.payload_repositories:
            check_repositories(req.payload_repositories, "payload_repositories")
        check_targets(req.targets)
        from osbuildd import manifest
        try:
            manifest.validate_for(d, it, bp)
        except BlueprintError as exc:
            raise ComposeRequestError(f"blueprint.{exc.field}" if exc.field else "blueprint",
                                      exc.message, topic="blueprint") from None
        sets = manifest.package_sets(d, arch.name, it, bp)
        checked = await self._check_engine(d, arch, it, bp, sets, req.size) if check_engine else True
        return d, arch, it, package_sets_json(sets, req), checked

    def _engine_checks(self) -> bool:
        # an explicit engine, or remote workers: theirs to say
        return self.config.builder.osbuild == "auto" and bool(self.config.builder.local_executor)

    def _refuse_without_engine(self, d: Distro, it: ImageType, manifest: dict[str, Any]) -> None:
        from osbuildd.runner import engines
        try:
            engines.choose(manifest, shutil.which("osbuild") is not None)
        except engines.NoEngine as exc:
            raise ComposeRequestError("image_type", f"{it.name} for {d.name}: {exc}", topic="image_type") from None

    async def _check_engine(self, d: Distro, arch: Arch, it: ImageType, bp: Blueprint, sets: dict[str, Any], size: int | None) -> bool:
        """Refuse before depsolve (no mirror needed) a compose no engine here can build: the real
        generator, fed empty package sets, says which stages the manifest will use. False: this
        generator needs real packages; the real manifest is checked after depsolve."""
        from osbuildd import manifest

        if not self._engine_checks():
            return True
        try:
            res = await asyncio.to_thread(manifest.generate, d, arch.name, it, bp, {k: [] for k in sets}, 0, size)
        except Exception:   # noqa: BLE001 - a generator that needs real packages
            return False
        self._refuse_without_engine(d, it, res.manifest)
        return True

    async def _prepare(self, req: ComposeRequest, check_engine: bool = True) -> Prepared:
        """Validate, depsolve and generate the manifest, storing nothing: the depsolve and manifest
        jobs, finished with the results their job handlers would record. Raises ComposeRequestError
        (a bad field, a manifest the generator refuses, no engine for it) or DepsolveError."""
        d, arch, it, package_sets, checked = await self._plan(req, check_engine)
        p = pending(req, d, arch, it, package_sets)
        dep, mani = p.depsolve, p.manifest
        dep.queued_at = dep.started_at = time.time()
        dep.result = await handlers.solve(self.config, dep.args)
        mani.queued_at = mani.started_at = dep.finished_at = time.time()
        try:
            mani.result = await handlers.make_manifest(mani.args, dep.result)
        except handlers.ManifestError as exc:
            raise ComposeRequestError(f"blueprint.{exc.field}" if exc.field else "blueprint", exc.message,
                                      topic="blueprint") from None
        mani.finished_at = time.time()
        if not checked:
            self._refuse_without_engine(d, it, mani.result["manifest"])
        dep.status = mani.status = "finished"
        return p

    async def start(self, req: ComposeRequest) -> str:
        """Validate, depsolve, generate the manifest, then store the graph (depsolve and manifest
        finished, the build job pending); returns the compose id (= the osbuild job's id). Nothing is
        stored when any step fails (ComposeRequestError or DepsolveError)."""
        return (await self._store([(req, await self._prepare(req))]))[0]

    async def check(self, req: ComposeRequest) -> None:
        """What enqueue() refuses (ComposeRequestError), without storing anything."""
        await self._plan(req, check_engine=False)

    async def enqueue(self, req: ComposeRequest) -> str:
        """Validate, then store the whole graph pending (as upstream's Cloud API does): the
        executor's depsolve and manifest loops run those jobs, and a failure there (an unresolvable
        package, a manifest the generator refuses) is the compose's error. No depsolve, no manifest
        here: a few milliseconds. Nothing is stored when the request is refused (ComposeRequestError)."""
        return await self.enqueue_group([req])

    async def enqueue_group(self, reqs: Sequence[ComposeRequest]) -> str:
        """enqueue() for the images of one Cloud compose: each request is checked before anything
        is stored, then every graph and the ``compose_groups`` rows go in ONE transaction (all or
        nothing, even across a crash). They share the first request's manifest seed unless they name
        their own (upstream: one seed per compose request). Returns the first image's compose id,
        which stands for the group (see groups())."""
        if not reqs:
            raise ComposeRequestError("image_requests", "no image to build")
        if len({r.channel for r in reqs}) != 1:
            raise ComposeRequestError("channel", "the images of one compose go to one channel")
        seed = reqs[0].seed if reqs[0].seed is not None else random.getrandbits(63)
        planned = []
        for req in reqs:
            d, arch, it, package_sets, _checked = await self._plan(req, check_engine=False)
            if req.seed is None:
                req = dataclasses.replace(req, seed=seed)
            planned.append((req, pending(req, d, arch, it, package_sets)))
        return (await self._store(planned, group=len(reqs) > 1))[0]

    async def _store(self, planned: Sequence[tuple[ComposeRequest, Prepared]], group: bool = False) -> builtins.list[str]:
        created = time.time()
        composes: list[tuple[list[GraphJob], dict[str, Any]]] = []
        for req, p in planned:
            build = build_job(req, p, created)
            if any(sealing.has_secret(t.options) for t in req.targets):
                # credentials never reach the database in clear (see osbuildd/sealing.py)
                sealing.seal_targets(build.args, await self._sealer())
            composes.append(([p.depsolve, p.manifest, build], compose_row(build.id, req, p, created)))
        await store.insert_graphs(self.db, self.jobs, composes, planned[0][0].channel, group=group)
        ids = [row["id"] for _graph, row in composes]
        self._live.update(ids)
        return ids

    async def create_fake(self, req: ComposeRequest, finished: bool) -> str:
        """Weldr ``?test=1`` (a failed compose) / ``?test=2`` (a finished one), no build at all. As
        upstream, the request is depsolved and its manifest generated first (the same refusals as
        start(), bar the engine check: nothing is built), and the compose lists its packages."""
        p = await self._prepare(req, check_engine=False)
        created = time.time()
        args: dict[str, Any] = {"targets": [], "pipeline_names": None}
        if finished:
            build = GraphJob(build_type(p.arch.name), args, [p.manifest.id], status="finished", result={
                "success": True, "osbuild_output": {"success": True}, "target_results": [],
                "upload_status": "success"})
        else:
            err = {"id": errors.BUILD_JOB, "reason": "osbuild build failed"}
            build = GraphJob(build_type(p.arch.name), args, [p.manifest.id], status="finished",
                             result={"success": False, "job_error": err}, error=err)
        build.id = str(uuid.uuid4())
        await store.insert_graph(self.db, self.jobs, [p.depsolve, p.manifest, build],
                                 compose_row(build.id, req, p, created, fake=True), req.channel)
        self._live.add(build.id)
        if finished:
            # a tiny placeholder image, so image download works as upstream's test mode
            out = self.config.results_dir / build.id
            await asyncio.to_thread(placeholder, out / p.it.filename)
        return build.id

    # -- reads ----------------------------------------------------------------------------------

    async def _job(self, job_id: str | None) -> Job | None:
        if not job_id:
            return None
        try:
            return await self.jobs.get(job_id)
        except JobNotFound:
            return None

    def _compose(self, found: store.ComposeRows) -> Compose:
        row, build, dep, man = found.row, found.build, found.depsolve, found.manifest
        state = state_of(build)
        packages: list[PackageSpec] = []
        if dep is not None and dep.result:
            for name, specs in (dep.result.get("package_specs") or {}).items():
                if name != "build":
                    packages += [PackageSpec.from_dict(p) for p in specs]
        results = self.config.results_dir / row["id"]
        result = build.result or {}
        progress = build.progress
        if state == "finished":
            progress = {**(progress or {}), "percent": 100.0}
        error = build.error.to_dict() if build.error else None
        if state == "canceled" and error is None:
            # until the executor writes the canceled build's own error (stage, last lines), or for
            # a compose canceled before it ran
            error = canceled_error(progress)
        return Compose(
            id=row["id"], request=json.loads(row["request"]), blueprint_name=row["blueprint_name"],
            blueprint_version=row["blueprint_version"], image_type=row["image_type"], distro=row["distro"],
            arch=row["arch"], state=state, created=row["created"], started=build.started_at,
            finished=build.finished_at, progress=progress, error=error,
            image_path=results / row["image_filename"] if state == "finished" else None,
            image_filename=row["image_filename"],
            manifest=(man.result or {}).get("manifest") if man is not None else None,
            packages=packages, upload_statuses=upload_statuses(build, result),
            log_path=results / "logs" / "osbuild.log", size=row["size"], origin=row["origin"],
            channel=row["channel"], job_status=str(build.status), result=build.result)

    async def get(self, compose_id: str) -> Compose:
        """The compose, whole. A settled finished/failed one comes from a small cache (the same
        object until it is deleted or rows change behind this service); never mutate it."""
        hit = await self._whole.get(compose_id)
        if hit is not None:
            return hit
        deletes, gen = self._deletes, await self._data_version.get()
        found = await store.fetch_with_jobs(self.db, "c.id = ?", (compose_id,))
        if not found:   # no such compose, or its build job was deleted meanwhile
            raise ComposeNotFound(compose_id)
        c = self._compose(found[0])
        # canceled ones are left out: the executor may still write their error (refresh()); and
        # nothing read while the version moved (another daemon may have deleted it meanwhile)
        if gen is not None and deletes == self._deletes and c.state in ("finished", "failed") \
                and is_settled(found[0]) and gen == await self._data_version.get():
            self._whole.put(compose_id, c)
        return c

    async def find(self, compose_id: str) -> Compose | None:
        """The compose as the newest snapshot() has it (slim: no packages, manifest, result), or None:
        what a polled status needs, without SQL while nobody committed (see view())."""
        return (await self.snapshot()).find(compose_id)

    async def groups(self) -> Groups:
        """The composes of several images (enqueue_group): group id -> its compose ids, in order."""
        return await self._groups.get()

    async def list(self, channel: str | None = None) -> list[Compose]:
        """Every compose, whole (packages, manifest, result), read afresh: see snapshot() for polling."""
        found = await (store.fetch_with_jobs(self.db) if channel is None
                       else store.fetch_with_jobs(self.db, "c.channel = ?", (channel,)))
        return [self._compose(f) for f in found]

    async def snapshot(self) -> Snapshot:
        """Every compose, for listings that are polled (Weldr's compose/status/*, queue, ...): only
        the composes that are not settled are read from SQLite. Slim: ``packages`` is empty and
        ``manifest``/``result`` None (they are most of a compose's memory; get() has them)."""
        return await self._snapshot(await self._data_version.get())

    async def view(self) -> tuple[Snapshot, Groups]:
        """snapshot() and groups() as of one reading of the database's data version (what a polled
        Cloud status needs: one ``PRAGMA data_version`` and no SQL while nobody committed)."""
        gen = await self._data_version.get()
        return await self._snapshot(gen), await self._groups.at(gen)

    async def _snapshot(self, gen: int | None) -> Snapshot:
        if gen is not None and self._snap is not None and self._snap_mark == (gen, self._deletes, self._version):
            return self._snap   # nothing committed since: the same answer, without SQL
        async with self._list_lock:
            # read before the SQL: a commit meanwhile changes it, and the next call reads again
            gen, deletes = await self._data_version.get(), self._deletes
            snap = await self._list()
            if gen is not None and snap.version >= 0 and deletes == self._deletes:
                self._snap, self._snap_mark = snap, (gen, deletes, self._version)
            return snap

    def _cacheable(self, found: store.ComposeRows) -> bool:
        """Settled, and kept in the snapshot cache: on a shared database a canceled build without
        its error stays live for CANCEL_GRACE seconds, since another daemon's executor may still
        write the error (this service's refresh() only hears of its own executor's)."""
        if not is_settled(found):
            return False
        b = found.build
        return not (self._shared and b.status == JobStatus.CANCELED and b.error is None
                    and time.time() - (b.finished_at or 0) < CANCEL_GRACE)

    async def _list(self) -> Snapshot:
        deletes = self._deletes
        # read before the composes: a change after this read is seen by the next list()
        total, jobs_gone = await store.counts(self.db)
        if self._settled is None:
            found = await store.fetch_with_jobs(self.db)
            composes = [slim(self._compose(f)) for f in found]
            if deletes != self._deletes:
                return Snapshot(-1, [], composes)
            self._settled = {c.id: c for f, c in zip(found, composes, strict=True) if self._cacheable(f)}
            self._live = {c.id for c in composes if c.id not in self._settled}
            self._orphans = total - len(found)
            self._jobs_gone = jobs_gone
            self._changed()
            return Snapshot(self._version, self._settled_order(),
                            [c for c in composes if c.id not in self._settled], self._order_keys, self._settled)
        if jobs_gone != self._jobs_gone:
            # job rows deleted behind this service's back (another daemon's delete, a damaged
            # store): a cached compose may have lost its jobs
            self._settled = None
            return await self._list()
        asked = list(self._live)
        found = await store.fetch_unsettled(self.db, asked)
        fresh = [slim(self._compose(f)) for f in found]
        if deletes != self._deletes:
            # a delete ran while we read: answer from what we read, but leave the cache alone
            fresh_ids = {c.id for c in fresh}
            return Snapshot(-1, [], sorted([c for c in self._settled.values() if c.id not in fresh_ids]
                                           + fresh, key=order_key))
        now_settled = [c for f, c in zip(found, fresh, strict=True) if self._cacheable(f)]
        for c in now_settled:
            self._settled[c.id] = c
        if now_settled:
            self._changed()
        self._live.difference_update(asked)   # ids start() added meanwhile stay
        self._live.update(c.id for f, c in zip(found, fresh, strict=True) if not self._cacheable(f))
        if total != len(self._settled) + len(self._live) + self._orphans:
            # composes rows this service did not write or delete (another daemon's, settled before we
            # saw them, or deleted), or a start() between our two reads: read everything again
            # rather than answer from a cache that may be wrong
            self._settled = None
            return await self._list()
        return Snapshot(self._version, self._settled_order(), [c for c in fresh if c.id not in self._settled],
                        self._order_keys, self._settled)

    def _changed(self) -> None:
        self._order_stale = True
        self._version += 1

    def _settled_order(self) -> builtins.list[Compose]:
        if self._order_stale:
            self._order = sorted((self._settled or {}).values(), key=order_key)
            self._order_keys = [order_key(c) for c in self._order]
            self._order_stale = False
        return self._order

    def refresh(self, compose_id: str) -> None:
        """A settled compose changed anyway (the executor wrote a canceled build's error): the next
        snapshot() reads it again."""
        self._whole.drop(compose_id)
        if self._settled is not None and self._settled.pop(compose_id, None) is not None:
            self._changed()
            self._live.add(compose_id)

    def _forget(self, compose_id: str) -> None:
        self._deletes += 1
        self._whole.drop(compose_id)
        if self._settled is not None and self._settled.pop(compose_id, None) is not None:
            self._changed()
        self._live.discard(compose_id)

    # -- changes --------------------------------------------------------------------------------

    async def cancel(self, compose_id: str) -> None:
        """Cancel a waiting or running compose: the first unfinished job of its chain (the queue
        cancels the jobs after it)."""
        c = await self.get(compose_id)
        if c.state not in ("waiting", "running"):
            raise ComposeStateError(compose_id, c.state, "cancel", f"compose {compose_id} is not waiting or running")
        rows = await store.fetch_rows(self.db, "id = ?", (compose_id,))
        if not rows:
            raise ComposeNotFound(compose_id)   # deleted meanwhile
        try:
            await self._cancel_chain(compose_id, [rows[0]["depsolve_job"], rows[0]["manifest_job"], compose_id])
        except JobNotFound:
            raise ComposeNotFound(compose_id) from None   # its jobs were deleted meanwhile

    async def _cancel_chain(self, compose_id: str, chain: builtins.list[str | None]) -> None:
        for jid in chain:
            job = await self._job(jid)
            if job is not None and job.status in (JobStatus.PENDING, JobStatus.RUNNING):
                try:
                    await self.jobs.cancel(job.id)
                except JobStoreError:
                    continue   # finished meanwhile: try the next one
                if job.id == compose_id or (await self.jobs.get(compose_id)).status == JobStatus.CANCELED:
                    return
        b = await self.jobs.get(compose_id)
        if b.status in (JobStatus.PENDING, JobStatus.RUNNING):
            await self.jobs.cancel(compose_id)

    async def delete(self, compose_id: str) -> None:
        """Delete a compose that is not waiting or running, with its results and jobs."""
        c = await self.get(compose_id)
        if c.state in ("waiting", "running"):
            raise ComposeStateError(compose_id, c.state, "delete", f"compose {compose_id} is still {c.state}")
        before = (await store.counts(self.db))[1]
        try:
            await store.delete_row(self.db, compose_id)
        finally:
            self._forget(compose_id)
        try:
            await self.jobs.delete(compose_id)
        except JobNotFound:
            pass
        finally:
            # our own job deletions are no reason for list() to read everything again; but if job
            # rows went before ours (another daemon's), list() must still notice them
            if self._jobs_gone == before:
                self._jobs_gone = (await store.counts(self.db))[1]
        results = self.config.results_dir / compose_id
        await asyncio.to_thread(shutil.rmtree, results, True)

    async def delete_group(self, compose_id: str) -> builtins.list[str]:
        """delete() of every image the compose id stands for (itself alone if it heads no group):
        refused (ComposeStateError, nothing deleted) while any of them is waiting or running; the
        first image, whose id names the group, goes last. Returns the deleted compose ids."""
        ids = list((await self.groups()).images(compose_id))
        found = []
        for cid in ids:
            try:
                found.append(await self.get(cid))
            except ComposeNotFound:
                if cid == compose_id:
                    raise
        busy = [c for c in found if c.state in ("waiting", "running")]
        if busy:
            c = busy[0]
            raise ComposeStateError(compose_id, c.state, "delete", f"compose {compose_id}: image {c.id} is still {c.state}")
        for c in reversed(found):
            await self.delete(c.id)
        return [c.id for c in found]

    def results_dir(self, compose_id: str) -> Path:
        return self.config.results_dir / compose_id

    async def close(self) -> None:
        self._data_version.close()
