"""``osbuildd-engine``: upstream osbuild's command line (flags, defaults, exit codes, ``--json``).

Exit codes: 0 success (also ``--inspect``, ``--version``); 1 build failed, export not found, no
checkpoint matched, ``--export`` without ``--output-directory``; 2 invalid manifest;
130 interrupted (SIGINT), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import os
import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from . import sandbox
from .manifest import Manifest, ManifestError, describe, load
from .monitor import MONITORS
from .objectstore import memory_scratch_size, parse_size

if TYPE_CHECKING:
    from .manifest import Pipeline
    from .validation import ValidationFailed

# executor (aiohttp) and validation (jsonschema) are imported only once inside the sandbox: the
# supervisor process outside it should start and exec fast


class ResultType(StrEnum):
    """``type`` of the ``--json`` result of a build."""

    RESULT = "result"
    ERROR = "error"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="osbuildd-engine", description="Build operating system images (osbuild-compatible)")
    ap.add_argument("manifest_path", metavar="MANIFEST", nargs="?", help="json file containing the manifest ('-' = stdin)")
    ap.add_argument("--store", "--cache", dest="store", metavar="DIRECTORY", default=".osbuild",
                    help="directory where sources and intermediary os trees are stored")
    ap.add_argument("-l", "--libdir", metavar="DIRECTORY", default=None,
                    help="accepted for compatibility; the engine's modules are built in")
    ap.add_argument("--cache-max-size", metavar="SIZE", default=None,
                    help="maximum size of the cache (bytes, with unit suffix, or 'unlimited')")
    ap.add_argument("--checkpoint", metavar="ID", action="append", default=[],
                    help="stage to commit to the object store during build (can be passed multiple times), accepts globs")
    ap.add_argument("--export", metavar="ID", action="append", default=[],
                    help="object to export, can be passed multiple times")
    ap.add_argument("--json", action="store_true", help="output results in JSON format")
    ap.add_argument("--output-directory", metavar="DIRECTORY", default=None,
                    help="directory where result objects are stored")
    ap.add_argument("--inspect", action="store_true", help="return the manifest in JSON format including all the ids")
    ap.add_argument("--monitor", metavar="NAME", default=None, help="name of the monitor to be used")
    ap.add_argument("--monitor-fd", metavar="FD", type=int, default=sys.stdout.fileno(),
                    help="file descriptor to be used for the monitor")
    ap.add_argument("--stage-timeout", type=float, default=None, help="set the maximal time (in seconds) each stage is allowed to run")
    ap.add_argument("--in-vm", action="append", default=[], help="not supported by osbuildd-engine")
    ap.add_argument("--break", dest="debug_break", nargs="?", const="*", default=None, help="not supported by osbuildd-engine")
    ap.add_argument("--rundir", metavar="DIRECTORY", default=None, help="accepted for compatibility")
    ap.add_argument("--scratch", choices=("auto", "disk"), default="auto",
                    help="where package trees are built: 'auto' in memory (tmpfs, no fsync cost) when half of "
                         "the available memory is at least 2 GiB, else on disk; 'disk' always on disk "
                         "(osbuildd-engine only)")
    ap.add_argument("-q", "--quiet", action="store_true", help="suppress normal output")
    ap.add_argument("--version", action="store_true", help="return the version and exit")
    return ap


def _fail(msg: str, code: int) -> int:
    print(msg, file=sys.stderr)
    return code


def _validation_exit(args: argparse.Namespace, err: ValidationFailed) -> int:
    if args.json or args.inspect:
        print(json.dumps(err.as_json()))
    else:
        print("validation failed:", file=sys.stderr)
        for e in err.errors:
            path = ".".join(str(x) for x in e["path"]) or "."
            print(f"  {path}: {e['message']}", file=sys.stderr)
    return 2


def read_manifest(args: argparse.Namespace) -> object:
    raw: object
    if args.manifest_path == "-":
        raw = json.loads(sys.stdin.buffer.read())
    else:
        with open(args.manifest_path, "rb") as f:
            raw = json.load(f)
    return raw


def resolve_checkpoints(manifest: Manifest, patterns: list[str]) -> tuple[set[str], list[str]]:
    """Pattern -> pipeline/stage ids to commit; returns (ids, patterns that matched nothing)."""
    ids: set[str] = set()
    missing: list[str] = []
    for pat in patterns:
        found = False
        for p in manifest.pipelines:
            if p.id and (fnmatch.fnmatchcase(p.name, pat) or fnmatch.fnmatchcase(p.id, pat)):
                ids.add(p.id)
                found = True
            for s in p.stages:
                if fnmatch.fnmatchcase(s.id, pat):
                    ids.add(s.id)
                    found = True
        if not found:
            missing.append(pat)
    return ids, missing


async def build(args: argparse.Namespace, manifest: Manifest, exports: list[str], checkpoints: set[str]) -> int:
    from .executor import BuildFailed, Executor, plan
    from .objectstore import Store

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    got: list[int] = []

    def on_signal(signum: int) -> None:
        # only the first signal cancels: a second one (e.g. to the whole process group and forwarded
        # by the sandbox supervisor too) must not interrupt the cleanup the first one started
        got.append(signum)
        if task and len(got) == 1:
            task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, on_signal, sig)

    name = os.path.basename(args.manifest_path) if args.manifest_path != "-" else "-"
    mon_name = args.monitor or ("NullMonitor" if (args.json or args.quiet) else "LogMonitor")
    monitor = MONITORS[mon_name](args.monitor_fd)
    memory = memory_scratch_size() if args.scratch == "auto" else None
    store = await asyncio.to_thread(Store, Path(args.store), args.cache_max_size, memory)
    ex = Executor(manifest, store, monitor, stage_timeout=args.stage_timeout, checkpoints=checkpoints)
    export_ps: list[Pipeline] = []
    for e in exports:  # the same pipeline named twice (or by name and id) is exported once
        ep = manifest.pipeline(e)
        if ep is not None and ep not in export_ps:
            export_ps.append(ep)
    targets = [p for p in export_ps if p] + [p for p in manifest.pipelines if p.id in checkpoints]
    if not targets:
        targets = list(manifest.pipelines)
    to_run = plan(manifest, store, targets, ex.reused)
    monitor.total = len(manifest.sources) + len(to_run)
    result: dict[str, Any]
    success = False
    try:
        monitor.begin(name)
        if store.memory is not None and memory:
            monitor.message(f"package trees are built in memory (tmpfs of up to {memory >> 20} MiB)")
        try:
            await ex.run(to_run)  # sources are fetched while the pipelines run
            for p in manifest.pipelines:
                ex.cached_metadata(p)
            outdir = Path(args.output_directory) if args.output_directory else None
            for p in manifest.pipelines:
                if p.id in checkpoints:
                    await ex.commit_pipeline(p)
            for p in export_ps:
                assert p is not None and outdir is not None
                await ex.export(p, outdir, move=True)
            success = True
            result = {"type": ResultType.RESULT, "success": True, "metadata": ex.metadata, "sources": ex.source_results,
                      "log": ex.log, "timings": ex.timings()}
        except BuildFailed as e:
            result = {"type": ResultType.ERROR, "success": False, "error": e.error, "sources": ex.source_results,
                      "log": ex.log, "timings": ex.timings()}
        monitor.finish(name, success)
    except asyncio.CancelledError:
        signum = got[0] if got else int(signal.SIGINT)
        print(f"osbuildd-engine: interrupted by signal {signal.Signals(signum).name}, cleaning up", file=sys.stderr)
        return 128 + signum
    finally:
        await ex.settle()
        await asyncio.to_thread(store.evict)  # also when --cache-max-size shrank and nothing was committed
        await asyncio.to_thread(store.close)
        monitor.close()
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    return 0 if success else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.version:
        print(f"osbuildd-engine {__version__}")
        return 0
    if not args.manifest_path:
        return _fail("osbuildd-engine: error: the following arguments are required: MANIFEST", 2)
    if args.monitor and args.monitor not in MONITORS:
        return _fail(f"osbuildd-engine: error: unknown monitor '{args.monitor}' (one of {', '.join(MONITORS)})", 2)
    if args.cache_max_size is not None:
        try:
            parse_size(args.cache_max_size)
        except ValueError as e:
            return _fail(f"osbuildd-engine: error: --cache-max-size: {e}", 2)
    try:
        os.fstat(args.monitor_fd)
    except OSError:
        return _fail(f"osbuildd-engine: error: --monitor-fd {args.monitor_fd} is not an open file descriptor", 2)
    if args.in_vm or args.debug_break:
        return _fail("osbuildd-engine: --in-vm and --break are not supported", 1)
    # builds run in their own mount + pid namespace (cleanup even on SIGKILL); needs root
    if not args.inspect and os.geteuid() == 0 and not sandbox.inside():
        sandbox.enter(argv)
    from .validation import ValidationFailed, validate

    try:
        raw = read_manifest(args)
    except (OSError, ValueError) as e:
        err = ValidationFailed([{"message": f"cannot read manifest: {e}", "path": []}])
        return _validation_exit(args, err)
    try:
        manifest = load(validate(raw))
    except ValidationFailed as e:
        return _validation_exit(args, e)
    except ManifestError as e:
        return _validation_exit(args, ValidationFailed([{"message": e.message, "path": e.path}]))
    if args.inspect:
        print(json.dumps(describe(manifest), indent=2))
        return 0
    if args.export and not args.output_directory:
        return _fail("Need --output-directory for --export", 1)
    for ref in args.export:
        if manifest.pipeline(ref) is None:
            return _fail(f"Export {ref} not found", 1)
    checkpoints, missing = resolve_checkpoints(manifest, args.checkpoint)
    if missing:
        return _fail(f"Checkpoint {missing[0]} not found!", 1)
    if os.geteuid() != 0:
        return _fail("osbuildd-engine: building needs root (mounts, loop devices, chroot)", 1)
    from .bwrap import SandboxMissing, require

    try:  # every stage runs sandboxed: without bwrap, nothing runs
        require()
    except SandboxMissing as e:
        return _fail(f"osbuildd-engine: error: {e}", 1)
    return asyncio.run(build(args, manifest, args.export, checkpoints))


if __name__ == "__main__":
    sys.exit(main())



