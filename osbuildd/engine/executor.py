"""Runs the pipelines of a manifest: trees, inputs, devices, mounts, stage processes, checkpoints.

Each pipeline builds one tree in scratch space. A pipeline whose id is committed in the store is not
run at all; otherwise it starts from the newest of its stages that is committed (stage checkpoint).
Every stage is a separate process (``osbuildd.engine.stagerun``) in its own process group, inside a
bubblewrap sandbox (``bwrap.py``) whose root is the build pipeline's tree or a read-only view of the
host; its output is the stage log.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import hashlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from . import buildroot, bwrap, sources
from .arrivals import Arrivals, feed_input
from .buildroot import bind
from .devices import LoopDevice, open_device
from .manifest import Manifest, Pipeline, Stage
from .monitor import STEP_INTERVAL, Monitor
from .mounts import FatStaging, MountError, mount_one, unmount
from .objectstore import Store, copy_tree, mounts_under, remove_tree
from .stageapi import StageArgs

STAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ErrorType(StrEnum):
    """``error.type`` of a failed build's ``--json`` result (upstream's names)."""

    SOURCE = "org.osbuild.error.source"
    STAGE = "org.osbuild.error.stage"


class BuildFailed(Exception):
    """The build stopped; ``error`` is upstream's error object for the ``--json`` result."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("type", "error"))
        self.error = error


@dataclass
class StageResult:
    id: str
    type: str
    output: str
    success: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # {"started", "finished", "duration"}

    def log_entry(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "type": self.type, "output": self.output}
        if not self.success:
            d["success"] = False
        d["timings"] = self.timings  # osbuildd's addition to upstream's log entry
        return d


class Clock:
    """Wall-clock start and end of one piece of work (unix time, comparable across processes) with
    its duration from the monotonic clock (immune to clock steps)."""

    def __init__(self) -> None:
        self.started = time.time()
        self._t0 = time.monotonic()

    def stop(self) -> dict[str, float]:
        """``{"started", "finished", "duration"}`` as of now."""
        duration = time.monotonic() - self._t0
        return {"started": self.started, "finished": self.started + duration, "duration": duration}


@dataclass
class _Workspace:
    """A stage's scratch directory and what was set up in it for the stage (torn down after it)."""

    work: Path
    loops: list[LoopDevice] = field(default_factory=list)
    fat: list[FatStaging] = field(default_factory=list)
    in_paths: dict[str, Path] = field(default_factory=dict)
    in_data: dict[str, dict[str, Any]] = field(default_factory=dict)
    devs: dict[str, LoopDevice] = field(default_factory=dict)
    mount_paths: dict[str, str] = field(default_factory=dict)
    root: Path | None = None  # the build root, when the pipeline has a build pipeline
    feeders: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # streaming input -> its filler

    @property
    def api(self) -> Path:
        return self.work / "api"

    @property
    def mounts_root(self) -> Path:
        return self.work / "mounts"


def plan(manifest: Manifest, store: Store, targets: list[Pipeline], reused: set[str] | None = None) -> list[Pipeline]:
    """The pipelines that must run, in manifest order: the targets and what they need,
    minus whatever is committed in the store already (their names go into ``reused``)."""
    needed: set[str] = set()
    seen: set[str] = set()

    def visit(p: Pipeline) -> None:
        if p.name in seen:
            return
        seen.add(p.name)
        if p.id is not None and store.has(p.id):
            if reused is not None:
                reused.add(p.name)
            return  # committed: neither it nor its dependencies run
        needed.add(p.name)
        if p.build:
            bp = manifest.pipeline(p.build)
            if bp:
                visit(bp)
        for s in p.stages:
            for inp in s.inputs.values():
                if inp.origin == "org.osbuild.pipeline":
                    for ref in inp.refs:
                        dep = manifest.by_id(ref)
                        if dep:
                            visit(dep)

    for t in targets:
        visit(t)
    return [p for p in manifest.pipelines if p.name in needed]


class Executor:
    def __init__(self, manifest: Manifest, store: Store, monitor: Monitor, *, stage_timeout: float | None,
                 checkpoints: set[str]) -> None:
        self.manifest = manifest
        self.store = store
        self.monitor = monitor
        self.stage_timeout = stage_timeout
        self.checkpoints = checkpoints  # pipeline/stage ids to commit
        self.bwrap = bwrap.require()  # no sandbox, no build: fails before anything runs
        self.trees: dict[str, Path] = {}  # pipeline id -> finished tree
        self.tmp_trees: set[str] = set()  # pipeline ids whose tree is scratch (movable)
        self.log: dict[str, list[dict[str, Any]]] = {}
        self.metadata: dict[str, dict[str, Any]] = {}
        self.source_results: dict[str, Any] = {"success": True}
        self.pipeline_meta: dict[str, dict[str, Any]] = {}  # pipeline id -> stage id -> metadata
        # per-stage timings (issue 13): the build's clock, each source fetch and each pipeline run
        self.clock = Clock()
        self.source_timings: list[dict[str, Any]] = []
        self.pipeline_timings: dict[str, dict[str, Any]] = {}  # pipeline name -> its run
        self.reused: set[str] = set()  # pipelines taken whole from the store (filled by plan())
        # checkpointed trees of the in-memory scratch, copied to disk while later pipelines run
        self.early_commits: dict[str, asyncio.Future[bool]] = {}
        # sources are fetched while the pipelines run (``run``): what has arrived, and where the
        # monitor is, so that source records never land in a pipeline's or stage's place
        self.arrivals = Arrivals()
        self._pipelines_begun = False
        self._stage_running = False
        self._source_place: tuple[str, str] | None = None
        self._source_step_sent = 0.0

    async def run(self, pipelines: list[Pipeline]) -> None:
        """Fetch the sources and run ``pipelines`` (in order) at the same time.

        A stage whose source inputs are not all in the store waits for the fetch, unless its
        meta.json says it streams them (``x-osbuildd-streaming-inputs``). A failed fetch ends the
        build with the source error, whatever runs meanwhile (a streaming stage is killed)."""
        fetch = asyncio.ensure_future(self.fetch_sources())
        await asyncio.sleep(0)  # the fetch begins first: its first record comes before any pipeline's
        work = asyncio.ensure_future(self._run_pipelines(pipelines))
        try:
            await asyncio.wait({fetch, work}, return_when=asyncio.FIRST_EXCEPTION)
            if fetch.done() and not fetch.cancelled() and fetch.exception() is not None:
                await fetch  # raises the source's BuildFailed; the finally kills what still runs
            await work
            await fetch
        finally:
            for t in (work, fetch):
                t.cancel()
            await asyncio.gather(work, fetch, return_exceptions=True)

    async def _run_pipelines(self, pipelines: list[Pipeline]) -> None:
        for p in pipelines:
            await self.run_pipeline(p)

    async def _await_sources(self, st: Stage) -> None:
        """Wait for the fetch to end if ``st`` needs a source blob not in the store and cannot stream it."""
        if self.arrivals.finished.is_set():
            return
        waiting = await asyncio.to_thread(self._incomplete_inputs, st)
        if waiting and not waiting <= bwrap.stage_meta(st.type).streaming_inputs:
            await self.arrivals.finished.wait()

    def _incomplete_inputs(self, st: Stage) -> set[str]:
        return {name for name, inp in st.inputs.items() if inp.origin == "org.osbuild.source"
                and any(not self.store.source_path(c).exists() for c in inp.refs)}

    def _source_records(self, place: tuple[str, str] | None = None) -> contextlib.AbstractContextManager[None]:
        # once a pipeline has begun, a source's records go aside (at ``place``): the pipeline's place is kept
        return self.monitor.aside(place) if self._pipelines_begun else contextlib.nullcontext()

    # --- sources ----------------------------------------------------------
    async def fetch_sources(self) -> None:
        """Every source, in manifest order; ``arrivals`` tells the pipelines what is in the store."""
        try:
            await self._fetch_sources()
        except BuildFailed as e:
            self.arrivals.finish(str(e.error["details"]["source"]["output"]))
            raise
        except BaseException:
            self.arrivals.finish("the source fetch was interrupted")
            raise
        self.arrivals.finish()

    async def _fetch_sources(self) -> None:
        for stype, desc in self.manifest.sources.items():
            sid = _source_id(stype, desc)
            self._source_place = (f"source {stype}", sid)
            with self._source_records():
                self.monitor.begin_source(stype, sid)
            clock = Clock()
            try:
                res = await sources.fetch(self.store, stype, desc, on_item=self._source_step,
                                          on_fetched=self.arrivals.publish)
            except sources.SourceError as e:
                self.source_results["success"] = False
                t = self.source_done(stype, clock, None)
                with self._source_records(self._source_place):
                    self.monitor.finish_source(stype, False, e.message, [{"success": False, "metadata": {},
                                                                          "error": e.message}],
                                               t["duration"], timings=t)
                raise BuildFailed({"type": ErrorType.SOURCE,
                                   "details": {"source": {"type": stype, "output": e.message}}}) from None
            self.source_results[stype] = res.items
            results = [{"success": True, "metadata": item, "error": ""} for item in res.items]
            t = self.source_done(stype, clock, res.items)
            with self._source_records(self._source_place):
                self.monitor.finish_source(stype, True,
                                           "".join(res.output) + f"source {stype} finished successfully",
                                           results, t["duration"], timings=t)

    def source_done(self, stype: str, clock: Clock, items: list[dict[str, Any]] | None) -> dict[str, float]:
        """Record a source fetch's timings (``items`` None: it failed); returns them for the monitor."""
        t = clock.stop()
        cached = sum(1 for i in items or [] if i.get("cached"))
        self.source_timings.append({"type": stype, **t, "fetched": len(items or []) - cached, "cached": cached,
                                    "success": items is not None})
        return t

    def _source_step(self, done: int, total: int) -> None:
        if not self._pipelines_begun:
            self.monitor.step_progress(f"downloading {done}/{total}", done, total)
            return
        if self._stage_running:
            return  # the running stage's own steps are the innermost progress level now
        now = time.monotonic()
        if done < total and now - self._source_step_sent < STEP_INTERVAL:
            return
        self._source_step_sent = now
        with self.monitor.aside(self._source_place):
            self.monitor.step_progress(f"downloading {done}/{total}", done, total)

    # --- pipelines -----------------------------------------------------
    def tree_of(self, pid: str) -> Path:
        if pid in self.trees:
            return self.trees[pid]
        if self.store.has(pid):
            self.trees[pid] = self.store.tree(pid)
            return self.trees[pid]
        raise RuntimeError(f"pipeline {pid} has not been built")

    async def run_pipeline(self, p: Pipeline) -> None:
        clock = Clock()
        entry: dict[str, Any] = {"name": p.name, "id": p.id, "cached": False, "resumed": 0}
        self.pipeline_timings[p.name] = entry
        try:
            entry["resumed"] = await self._run_pipeline(p)
        finally:
            entry.update(clock.stop())

    async def _run_pipeline(self, p: Pipeline) -> int:
        """Runs the pipeline; returns how many of its stages came from a stage checkpoint."""
        start_index = 0
        stage_meta: dict[str, Any] = {}
        tree = self.store.tmpdir(f"tree-{p.name}", memory=package_tree(p)) / "tree"
        tree.mkdir()
        # resume from the newest committed stage of this pipeline
        for i in range(len(p.stages) - 1, -1, -1):
            sid = p.stages[i].id
            if self.store.has(sid):
                await asyncio.to_thread(copy_tree, self.store.tree(sid), tree)
                stage_meta = dict(self.store.meta(sid))
                for st in p.stages[: i + 1]:
                    if stage_meta.get(st.id):
                        self.metadata.setdefault(p.name, {})[st.type] = stage_meta[st.id]
                start_index = i + 1
                break
        if start_index < len(p.stages):
            await self._await_sources(p.stages[start_index])  # before the pipeline takes the monitor
        self._pipelines_begun = True
        self.monitor.begin_pipeline(p.name, p.id, len(p.stages))
        self.monitor.sub_done = start_index
        if start_index:
            self.monitor.message(f"starting from checkpoint {p.stages[start_index - 1].id}")
        build_tree = self.tree_of(p.build_id) if p.build_id else None
        for st in p.stages[start_index:]:
            await self._await_sources(st)
            res = await self.run_stage(p, st, tree, build_tree)
            self.log.setdefault(p.name, []).append(res.log_entry())
            if not res.success:
                self.monitor.finish_pipeline(p.name)
                raise BuildFailed({"type": ErrorType.STAGE,
                                   "details": {"stage": {"id": res.id, "type": res.type, "output": res.output,
                                                         "error": res.error}}})
            if res.metadata:
                self.metadata.setdefault(p.name, {})[st.type] = res.metadata
                stage_meta[st.id] = res.metadata
            if st.id in self.checkpoints and st is not p.stages[-1]:
                committed = await asyncio.to_thread(self.store.commit, st.id, tree, stage_meta, False)
                if not committed:
                    self.monitor.message(f"checkpoint {st.id} not stored: cache size limit")
        assert p.id is not None or not p.stages
        if p.id is not None:
            self.trees[p.id] = tree
            self.tmp_trees.add(p.id)
            self.pipeline_meta[p.id] = stage_meta
            if p.id in self.checkpoints and self.store.in_memory(tree):
                # a copy to disk either way: made now, while the next pipelines only read this tree
                self.early_commits[p.id] = asyncio.ensure_future(
                    asyncio.to_thread(self.store.commit, p.id, tree, stage_meta, False))
        self.monitor.finish_pipeline(p.name)
        return start_index

    async def settle(self) -> None:
        """Wait for the copies to disk still running (before the scratch goes)."""
        await asyncio.gather(*self.early_commits.values(), return_exceptions=True)

    def timings(self) -> dict[str, Any]:
        """The ``--json`` result's ``timings`` (osbuildd's addition): sources, the stages that ran (the
        failed one included), every pipeline in manifest order that ran or came whole from the store
        (``cached``), and the build's total."""
        stages = [{"pipeline": name, "id": e["id"], "type": e["type"], **e["timings"]}
                  for name, entries in self.log.items() for e in entries]
        pipelines: list[dict[str, Any]] = []
        for p in self.manifest.pipelines:
            if p.name in self.pipeline_timings:
                pipelines.append(self.pipeline_timings[p.name])
            elif p.name in self.reused:
                pipelines.append({"name": p.name, "id": p.id, "started": None, "finished": None, "duration": 0.0,
                                  "cached": True, "resumed": len(p.stages)})
        return {"sources": self.source_timings, "stages": stages, "pipelines": pipelines,
                "total": self.clock.stop()["duration"]}

    def cached_metadata(self, p: Pipeline) -> None:
        """Metadata of a pipeline taken whole from the store (it did not run in this build)."""
        if p.id is None or p.id in self.tmp_trees or not self.store.has(p.id):
            return
        meta = self.store.meta(p.id)
        for st in p.stages:
            if meta.get(st.id):
                self.metadata.setdefault(p.name, {})[st.type] = meta[st.id]

    async def export(self, p: Pipeline, outdir: Path, move: bool) -> None:
        dest = outdir / p.name
        dest.mkdir(parents=True, exist_ok=True)
        if p.id is None:  # a pipeline without stages exports an empty tree
            return
        src = self.tree_of(p.id)
        if move and p.id in self.tmp_trees:
            def mv() -> None:
                for entry in os.listdir(src):
                    try:
                        os.rename(src / entry, dest / entry)
                    except OSError:  # another file system: fall back to a copy of everything left
                        copy_tree(src, dest)
                        return
            await asyncio.to_thread(mv)
        else:
            # upstream's switch for exporting as a user that cannot chown
            keep = os.environ.get("OSBUILD_EXPORT_FORCE_NO_PRESERVE_OWNER") != "1"
            await asyncio.to_thread(copy_tree, src, dest, keep)

    async def commit_pipeline(self, p: Pipeline) -> None:
        assert p.id is not None
        if p.id not in self.tmp_trees:
            return
        meta = self.pipeline_meta.get(p.id, {})
        early = self.early_commits.pop(p.id, None)
        if early is not None:
            ok = await early
        else:
            # the build is over: the tree moves into the store (no copy); an export then copies from there
            ok = await asyncio.to_thread(self.store.commit, p.id, self.trees[p.id], meta, True)
        if not ok:
            self.monitor.message(f"checkpoint {p.name} ({p.id}) not stored: cache size limit")
        elif self.store.has(p.id):
            self.trees[p.id] = self.store.tree(p.id)
            self.tmp_trees.discard(p.id)

    # --- stages ----------------------------------------------------------
    async def _prepare_inputs(self, st: Stage, work: Path, feeders: dict[str, asyncio.Task[None]],
                              ) -> tuple[dict[str, Path], dict[str, dict[str, Any]]]:
        paths: dict[str, Path] = {}
        data: dict[str, dict[str, Any]] = {}
        streaming = bwrap.stage_meta(st.type).streaming_inputs
        waiting = await asyncio.to_thread(self._incomplete_inputs, st) if streaming else set()
        for name, inp in st.inputs.items():
            d = work / "inputs" / name
            d.mkdir(parents=True)
            if name in streaming and name in waiting and not self.arrivals.finished.is_set():
                # filled while the stage runs: the engine links into src, the stage sees d read-only
                src = work / "inputs-streaming" / name
                src.mkdir(parents=True)
                await bind(src, d, readonly=True)
                feeders[name] = asyncio.ensure_future(feed_input(self.store, self.arrivals, inp.refs, src))
                data[name] = {"files": inp.refs}
            elif inp.type == "org.osbuild.files" and inp.origin == "org.osbuild.source":
                for checksum in inp.refs:
                    await asyncio.to_thread(sources.link_into, self.store, checksum, d / checksum)
                # the links share inodes with the store: a stage must not be able to write them
                await bind(d, d, readonly=True)
                data[name] = {"files": inp.refs}
            elif inp.type in ("org.osbuild.files", "org.osbuild.tree") and inp.origin == "org.osbuild.pipeline":
                if len(inp.refs) != 1:
                    raise RuntimeError(f"input '{name}': exactly one pipeline reference is supported")
                (pid, opts), = inp.refs.items()
                await bind(self.tree_of(pid), d, readonly=True)
                if inp.type == "org.osbuild.files":
                    files: dict[str, dict[str, Any]] = {opts["file"].lstrip("/"): {}} if opts.get("file") else {}
                    data[name] = {"files": files}
                else:
                    data[name] = {"refs": inp.refs}
            elif inp.type == "org.osbuild.noop":
                data[name] = {}
            else:
                raise RuntimeError(f"input type {inp.type} with origin {inp.origin} is not supported")
            paths[name] = d
        return paths, data

    async def run_stage(self, p: Pipeline, st: Stage, tree: Path, build_tree: Path | None) -> StageResult:
        self.monitor.begin_stage(st.type, st.id)
        self._stage_running = True
        clock = Clock()
        ws = _Workspace(self.store.tmpdir("stage"))
        ws.api.mkdir()
        ws.mounts_root.mkdir()
        result = StageResult(st.id, st.type, "", False)
        try:
            failure = await self._set_up(st, tree, build_tree, ws)
            if failure is not None:
                result.output, result.error = failure
                self.monitor.stage_output(result.output)
                return result
            rc, timed_out, result.output = await self._run_process(p, st, tree, ws)
            if timed_out:
                msg = f"stage {st.type} timed out after {self.stage_timeout:g}s and was killed\n"
                result.output += msg
                result.error = msg.strip()
                self.monitor.stage_output(msg)
            elif rc != 0:
                result.error = None
            result.success = rc == 0 and not timed_out
            if result.success:
                await self._write_back(ws, result)
            meta_file = ws.api / "meta.json"
            if result.success and meta_file.exists():
                try:
                    result.metadata = json.loads(meta_file.read_text())
                except ValueError:
                    pass
            return result
        finally:
            self._stage_running = False
            for feeder in ws.feeders.values():
                feeder.cancel()
            await asyncio.gather(*ws.feeders.values(), return_exceptions=True)
            await unmount_all(ws.work)
            for lo in reversed(ws.loops):
                lo.detach()
            await asyncio.to_thread(remove_tree, ws.work)
            result.timings = clock.stop()  # set-up and teardown included: they are the stage's cost
            self.monitor.finish_stage(st.type, st.id, result.success, result.output, st.options,
                                      result.metadata, result.timings["duration"], timings=result.timings)

    async def _set_up(self, st: Stage, tree: Path, build_tree: Path | None, ws: _Workspace) -> tuple[str, str] | None:
        """Inputs, devices, mounts and the build root of a stage; (output, error) if one fails."""
        try:
            ws.in_paths, ws.in_data = await self._prepare_inputs(st, ws.work, ws.feeders)
            for name, dev in st.devices.items():
                parent = ws.devs.get(dev.parent.name) if dev.parent else None
                ws.devs[name] = await asyncio.to_thread(open_device, dev.type, dev.options, tree, parent)
                ws.loops.append(ws.devs[name])
            for mnt in sorted(st.mounts, key=lambda m: m.target.rstrip("/").count("/")):
                target = await mount_one(mnt, ws.devs.get(mnt.device.name) if mnt.device else None,
                                         ws.mounts_root, ws.loops, ws.fat, ws.work)
                ws.mount_paths[mnt.name] = str(target or (ws.mounts_root / mnt.target.lstrip("/")))
        except (OSError, RuntimeError, MountError, KeyError) as e:
            return f"stage setup failed: {e}\n", str(e)
        if build_tree is not None:
            try:
                ws.root = await buildroot.setup(ws.work, build_tree)
            except MountError as e:
                return f"build root setup failed: {e}\n", str(e)
        return None

    @staticmethod
    def _stage_args(p: Pipeline, st: Stage, ws: _Workspace) -> StageArgs:
        # the stage sees everything at fixed paths inside its sandbox, with or without a build root
        base = bwrap.BASE
        return StageArgs(
            tree=f"{base}/tree", options=st.options,
            inputs={n: {"path": f"{base}/inputs/{n}", "data": ws.in_data.get(n, {}),
                        **({"streaming": True} if n in ws.feeders else {})} for n in ws.in_paths},
            devices={n: {"path": d.path, "type": st.devices[n].type} for n, d in ws.devs.items()},
            mounts={n: {"path": (f"{base}/mounts/" + str(Path(v).relative_to(ws.mounts_root))
                                 .removeprefix(".").lstrip("/")).rstrip("/")} for n, v in ws.mount_paths.items()},
            paths_mounts=f"{base}/mounts", meta_path=f"{base}/api/meta.json",
            build_root="/" if ws.root is not None else None,
            source_epoch=p.source_epoch, stage_type=st.type, stage_id=st.id)

    async def _run_process(self, p: Pipeline, st: Stage, tree: Path, ws: _Workspace) -> tuple[int, bool, str]:
        """The stage's sandboxed process, to its end: (exit code, timed out, output)."""
        args = self._stage_args(p, st, ws)
        box = bwrap.Sandbox(root=ws.root, tree=tree, api=ws.api, mounts=ws.mounts_root, inputs=ws.in_paths,
                            devices=[lo.path for lo in ws.loops], meta=bwrap.stage_meta(st.type))
        base = bwrap.BASE
        cmd = [*box.argv(self.bwrap), "/usr/bin/python3", "-m", "osbuildd.engine.stagerun", st.type,
               f"{base}/api/args.json"]
        # the stage's step reports: a pipe whose write end it inherits (same fd number
        # inside bwrap); non-blocking, so a stage never waits on the engine to report
        prog_r, prog_w = os.pipe()
        os.set_blocking(prog_w, False)
        args.progress_fd = prog_w
        try:
            args.dump(str(ws.api / "args.json"))
        except OSError:
            os.close(prog_r)
            os.close(prog_w)
            raise
        env = {"PATH": STAGE_PATH, "PYTHONPATH": f"{base}/lib", "LANG": "C.UTF-8", "HOME": "/root",
               "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        if p.source_epoch is not None:
            env["SOURCE_DATE_EPOCH"] = str(p.source_epoch)
        output: list[str] = []
        try:
            rc, timed_out = await self._spawn(cmd, env, str(ws.work), output, prog_r, prog_w)
        finally:
            os.close(prog_r)
        return rc, timed_out, "".join(output)

    async def _write_back(self, ws: _Workspace, result: StageResult) -> None:
        """What the stage wrote to a FAT "mount" goes onto the file system; a failure fails the stage."""
        try:
            for staging in ws.fat:
                await staging.write_back()
        except MountError as e:
            msg = f"writing the FAT file system failed: {e}\n"
            result.output += msg
            result.error = str(e)
            result.success = False
            self.monitor.stage_output(msg)

    async def _read_steps(self, fd: int) -> None:
        """Stage step reports (JSON lines on the progress pipe) into the monitor, until EOF."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(fd), "rb", buffering=0))
        try:
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), timeout=1.0)
                except TimeoutError:
                    self.monitor.flush_step()  # a report the rate limit held back goes out now
                    continue
                if not line:
                    break
                try:
                    rep = json.loads(line)
                    self.monitor.step_progress(str(rep["name"]), int(rep["done"]), int(rep["total"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a malformed report is no reason to fail a build
        finally:
            transport.close()

    async def _spawn(self, cmd: list[str], env: dict[str, str], cwd: str, output: list[str],
                     prog_r: int, prog_w: int) -> tuple[int, bool]:
        try:
            proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.DEVNULL,
                                                        stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.STDOUT, env=env, cwd=cwd,
                                                        start_new_session=True, pass_fds=(prog_w,))
        finally:
            os.close(prog_w)  # the stage holds the only write end: EOF when it (and its children) exit
        steps = asyncio.ensure_future(self._read_steps(prog_r))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        assert proc.stdout is not None

        async def pump() -> None:
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(65536):
                text = decoder.decode(chunk)
                if text:
                    output.append(text)
                    self.monitor.stage_output(text)
            tail = decoder.decode(b"", final=True)
            if tail:
                output.append(tail)
                self.monitor.stage_output(tail)
            await proc.wait()

        try:
            await asyncio.wait_for(pump(), timeout=self.stage_timeout or None)
            await asyncio.wait({steps}, timeout=1.0)  # the last reports still in the pipe
            return proc.returncode or 0, False
        except TimeoutError:
            return -9, True
        finally:
            steps.cancel()
            await asyncio.gather(steps, return_exceptions=True)
            if proc.returncode is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                await proc.wait()
            else:
                try:  # leftovers of the stage (daemons it started) die with it
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def package_tree(p: Pipeline) -> bool:
    """A tree made from sources alone (no devices, no other pipeline's output): built in memory.

    That is where packages are installed, and dpkg and maintainer scripts fsync a lot. Disk images
    and archives (devices, pipeline inputs) stay on disk: memory does not make them faster.
    """
    return all(not st.devices and all(i.origin != "org.osbuild.pipeline" for i in st.inputs.values())
               for st in p.stages)


async def unmount_all(work: Path) -> None:
    for mp in mounts_under(work):
        await unmount(Path(mp))


def _source_id(stype: str, desc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps({"type": stype, "items": desc.get("items", {})}, sort_keys=True)
                          .encode()).hexdigest()
