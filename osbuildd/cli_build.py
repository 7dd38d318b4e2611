"""``osbuildd build``: one image, built locally through the compose service and job graph, in-process,
on an embedded SQLite state (like osbuild/image-builder's CLI)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

if TYPE_CHECKING:   # imported lazily at run time: the CLI starts fast
    from osbuildd.blueprint import Blueprint
    from osbuildd.config import Config

USAGE_EXIT = 2
FAILED_EXIT = 1
INTERRUPTED_EXIT = 130
USER_UMASK = [0o022]   # the caller's umask, for the image written to --output
STEP_LINE_EVERY = 5.0   # seconds between progress lines of one stage when not on a terminal


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:   # one line, exit 2 (argparse prints the whole usage)
        raise UsageError(message)


def default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/cache/osbuildd")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "osbuildd"


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="osbuildd build", description="Build one image locally and print its path.")
    p.add_argument("--distro", help="distribution, e.g. debian-12 (default: the host's)")
    p.add_argument("--type", required=True, dest="image_type", help="image type, e.g. qcow2")
    p.add_argument("--arch", help="architecture (default: the host's)")
    p.add_argument("--blueprint", metavar="FILE", help="blueprint, TOML or JSON")
    p.add_argument("--size", help="image size, e.g. 4GiB (default: the image type's)")
    p.add_argument("--output", metavar="DIR", default="output", help="where the image goes (default: ./output)")
    p.add_argument("--state-dir", metavar="DIR", help=f"state folder (default: {default_state_dir()})")
    p.add_argument("--verbose", action="store_true", help="stream the build log; at the end, the time each stage took")
    p.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    # [builder] osbuild for this build (tests, debugging): "auto" or a path
    p.add_argument("--osbuild", help=argparse.SUPPRESS)
    return p


def load_blueprint(path: str | None) -> Blueprint:
    from osbuildd.blueprint import Blueprint, BlueprintError
    try:
        if path is None:
            bp = Blueprint.from_json({"name": "osbuildd-build", "version": "0.0.1"})
        else:
            text = Path(path).read_text(encoding="utf-8")
            bp = Blueprint.from_json(text) if path.endswith(".json") else Blueprint.from_toml(text)
        bp.initialize()
    except OSError as exc:
        raise UsageError(f"--blueprint {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--blueprint {path}: not UTF-8 text") from None
    except BlueprintError as exc:
        where = f" ({exc.field})" if exc.field else ""
        raise UsageError(f"--blueprint {path}{where}: {exc.message}") from None
    return bp


def parse_size(text: str | None) -> int | None:
    if text is None:
        return None
    from osbuildd.config import parse_size as ps
    try:
        size = ps(text)
    except ValueError as exc:
        raise UsageError(f"--size {text!r}: {exc}") from None
    if size <= 0:
        raise UsageError(f"--size {text!r}: must be positive")
    return size


class Display:
    """A progress bar on a terminal; plain lines (one per change of stage) otherwise."""

    def __init__(self, out: TextIO, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self.start = time.monotonic()
        self.last_line = ""
        self.last_step, self.last_step_text = 0.0, ""
        self.width = shutil.get_terminal_size((100, 20)).columns if tty else 100

    def elapsed(self) -> str:
        s = int(time.monotonic() - self.start)
        return f"{s // 60:02d}:{s % 60:02d}"

    def show(self, state: str, progress: dict[str, Any] | None) -> None:
        pct = float((progress or {}).get("percent") or 0.0)
        where = state
        step = ""
        if progress and progress.get("pipeline"):
            where = f"{progress['pipeline']}" + (f" / {progress['stage']}" if progress.get("stage") else "")
            if progress.get("step"):
                step = f": {progress['step']}"  # the stage's own steps, e.g. "unpacking 120/237"
        elif progress and progress.get("message"):
            where = progress["message"]
        if self.tty:
            bar_w = 24
            filled = int(bar_w * pct / 100)
            line = f"[{'#' * filled}{'.' * (bar_w - filled)}] {pct:5.1f}%  {self.elapsed()}  {where}{step}"
            line = line[: self.width - 1]
            self.out.write("\r" + line.ljust(len(self.last_line)))
            self.out.flush()
            self.last_line = line
        else:
            line = f"[{pct:5.1f}%] {where}"
            # a new stage gets a line at once; steps inside one stage a line every few seconds
            new_stage = line.split("] ", 1)[1] != self.last_line.split("] ", 1)[-1]
            if new_stage or (step and time.monotonic() - self.last_step >= STEP_LINE_EVERY
                             and step != self.last_step_text):
                self.out.write(f"{line}{step} ({self.elapsed()})\n")
                self.out.flush()
                self.last_line = line
                self.last_step, self.last_step_text = time.monotonic(), step

    def end(self) -> None:
        if self.tty and self.last_line:
            self.out.write("\n")
            self.out.flush()
        self.last_line = ""

    def text(self, text: str) -> None:
        """Build log text (--verbose) between progress updates."""
        if self.tty and self.last_line:
            self.out.write("\r" + " " * len(self.last_line) + "\r")
            self.last_line = ""
        self.out.write(text)
        self.out.flush()


def _read_from(path: Path, offset: int) -> tuple[bytes, int]:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(1 << 20)
    except FileNotFoundError:
        return b"", offset
    return data, offset + len(data)


STATE_TEXT = {"waiting": "waiting", "running": "building"}


async def build(args: argparse.Namespace, bp: Blueprint, size: int | None, state_dir: Path, outdir: Path,
                out: TextIO) -> int:
    from osbuildd import log, statedir
    from osbuildd.config import Config

    config = Config.embedded(state_dir)
    if args.osbuild:
        config.builder.osbuild = args.osbuild
    # the outcome is reported below in plain words; structured logs only with --verbose
    log.setup("info" if args.verbose else "error", "console", stream=sys.stderr)
    # one process per state dir, taken before Services.open's crash recovery
    try:
        lock = await asyncio.to_thread(statedir.acquire, state_dir)
    except statedir.StateDirBusy as exc:
        raise UsageError(str(exc)) from None
    try:
        return await _build_locked(args, bp, size, config, outdir, out)
    finally:
        lock.release()


async def _build_locked(args: argparse.Namespace, bp: Blueprint, size: int | None, config: Config, outdir: Path,
                        out: TextIO) -> int:
    from osbuildd.compose import ComposeRequest, ComposeRequestError
    from osbuildd.depsolve import DepsolveError
    from osbuildd.executor import start_local
    from osbuildd.services import Services

    services = await Services.open(config)
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, interrupted.set)
    loop.add_signal_handler(signal.SIGTERM, interrupted.set)
    display = Display(sys.stderr, sys.stderr.isatty())
    try:
        await start_local(services, start=True)
        compose = services.compose
        req = ComposeRequest(distro=args.distro or "", arch=args.arch or "", image_type=args.image_type,
                             blueprint=bp, size=size, origin="cli", seed=args.seed)
        if display.tty:   # start() depsolves first: apt may refresh its lists for a while
            display.show("depsolving", None)
        try:
            cid = await compose.start(req)
        except ComposeRequestError as exc:
            display.text("")   # the error replaces the progress line
            raise UsageError(f"--{_flag(exc.field)}: {exc.message}") from None
        except DepsolveError as exc:
            display.text("")
            if exc.problem == "repository":   # the mirror, not the input: a failure, not a usage error
                print(f"osbuildd build: error: depsolve failed: {exc}", file=sys.stderr)
                return FAILED_EXIT
            raise UsageError(f"--blueprint: depsolve failed: {exc}") from None
        log_path = config.results_dir / cid / "logs" / "osbuild.log"
        offset = 0
        canceling = False
        while True:
            c = await compose.get(cid)
            if args.verbose:
                data, offset = await asyncio.to_thread(_read_from, log_path, offset)
                if data:
                    display.text(data.decode("utf-8", "replace"))
            if c.state in ("finished", "failed", "canceled"):
                break
            if interrupted.is_set() and not canceling:
                canceling = True
                display.end()
                print("osbuildd build: interrupted, canceling the build...", file=sys.stderr)
                try:
                    await compose.cancel(cid)
                except Exception:  # noqa: BLE001 - finished meanwhile: the loop sees it
                    pass
            display.show(STATE_TEXT.get(c.state, c.state) if c.state != "running" or not c.progress
                         else "building", c.progress if c.state == "running" else None)
            try:
                await asyncio.wait_for(interrupted.wait() if not canceling else asyncio.sleep(0.25), 0.25)
            except TimeoutError:
                pass
        if c.state == "finished":
            display.show("finished", {**(c.progress or {}), "percent": 100.0, "message": "finished",
                                      "pipeline": None})
        display.end()
        if args.verbose:
            print_timings(c.timings, sys.stderr)
        if c.state == "canceled" or canceling:
            print(f"osbuildd build: canceled (compose {cid})", file=sys.stderr)
            return INTERRUPTED_EXIT
        if c.state == "failed":
            report_failure(c.error, log_path, sys.stderr)
            return FAILED_EXIT
        assert c.image_path is not None
        dest = outdir / c.image_filename
        await asyncio.to_thread(_deliver, c.image_path, outdir, dest)
        print(str(dest), file=out)
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await services.close()


def print_timings(timings: dict[str, Any] | None, out: TextIO) -> None:
    """The per-stage table (``--verbose``): pipeline, stage, seconds, share of the build's total."""
    from osbuildd.runner.timings import table
    if not timings:
        return
    print("osbuildd build: time per stage" + (" (from the build's progress stream)"
                                              if timings.get("origin") == "monitor" else ""), file=out)
    print("\n".join("  " + line for line in table(timings)), file=out)


def report_failure(error: dict[str, Any] | None, log_path: Path, out: TextIO) -> None:
    """One block: the error id, reason, failing stage and its last lines (as compose/log shows it)."""
    from osbuildd.compose import failure
    s = failure.summary(error) or {}
    print(f"osbuildd build: build failed: {s.get('reason') or 'unknown error'}", file=out)
    body = failure.render(error).splitlines()[1:]   # without the marker line
    print("\n".join("  " + line for line in body), file=out)
    print(f"  log: {log_path}", file=out)


def _deliver(image: Path, outdir: Path, dest: Path) -> None:
    """Move the image out of the (owner-only) state dir with the modes the user's umask gives."""
    if not outdir.is_dir():
        outdir.mkdir(parents=True)
        os.chmod(outdir, 0o777 & ~USER_UMASK[0])   # mkdir's mode is cut by this process's umask
    shutil.move(str(image), dest)
    os.chmod(dest, 0o666 & ~USER_UMASK[0])


def _flag(field: str) -> str:
    head = field.split(".")[0].split("[")[0]
    return {"image_type": "type"}.get(head, head)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        bp = load_blueprint(args.blueprint)
        size = parse_size(args.size)
        from osbuildd import statedir
        state_dir = statedir.absolute(args.state_dir or default_state_dir())
        outdir = Path(args.output).absolute()
        USER_UMASK[0] = statedir.private_umask()   # the state dir's files are the owner's only
        return asyncio.run(build(args, bp, size, state_dir, outdir, sys.stdout))
    except UsageError as exc:
        print(f"osbuildd build: error: {exc}", file=sys.stderr)
        return USAGE_EXIT
    except KeyboardInterrupt:
        return INTERRUPTED_EXIT
    except OSError as exc:
        print(f"osbuildd build: error: {exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}",
              file=sys.stderr)
        return FAILED_EXIT


if __name__ == "__main__":
    sys.exit(main())
