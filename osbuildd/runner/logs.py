"""The build log on disk while the build runs: ``logs/osbuild.log`` and ``logs/stages/<stage-id>.log``.

Text is appended in batches from a worker thread, so the event loop never blocks on the disk and
the daemon never holds the whole log in memory.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import IO

from .monitor import MonitorEvent


class BuildLog:
    def __init__(self, log_dir: Path) -> None:
        self.dir = Path(log_dir)
        self.path = self.dir / "osbuild.log"
        self.stages_dir = self.dir / "stages"
        self._files: dict[str, IO[str]] = {}
        self._main: IO[str] | None = None
        self.bytes_written = 0

    def stage_path(self, stage_id: str) -> Path:
        return self.stages_dir / f"{stage_id}.log"

    @staticmethod
    def render(events: list[MonitorEvent]) -> tuple[str, dict[str, list[str]]]:
        """The text for osbuild.log and per stage id, from a batch of events."""
        main: list[str] = []
        stages: dict[str, list[str]] = {}
        for ev in events:
            msg = ev.message
            if not msg:
                continue
            if ev.is_status:
                line = msg if msg.endswith("\n") else msg + "\n"
                main.append(line)
                if ev.stage_id and msg.startswith(("Starting module", "Finished module")):
                    stages.setdefault(ev.stage_id, []).append(line)
            else:
                main.append(msg)
                if ev.stage_id:
                    stages.setdefault(ev.stage_id, []).append(msg)
        return "".join(main), stages

    def _write(self, main: str, stages: dict[str, list[str]]) -> None:
        if self._main is None:
            self.stages_dir.mkdir(parents=True, exist_ok=True)
            self._main = open(self.path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        if main:
            self._main.write(main)
            self._main.flush()
            self.bytes_written += len(main)
        for sid, parts in stages.items():
            f = self._files.get(sid)
            if f is None:
                f = self._files[sid] = open(self.stage_path(sid), "a", encoding="utf-8",  # noqa: SIM115
                                            errors="replace")
            f.write("".join(parts))
            f.flush()

    async def write(self, events: list[MonitorEvent]) -> None:
        main, stages = self.render(events)
        if main or stages or self._main is None:
            await asyncio.to_thread(self._write, main, stages)

    async def note(self, text: str) -> None:
        """A line of the runner's own (cancel, timeout, crash) in osbuild.log."""
        await asyncio.to_thread(self._write, text if text.endswith("\n") else text + "\n", {})

    def _close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
        if self._main is not None:
            self._main.close()
            self._main = None

    async def close(self) -> None:
        await asyncio.to_thread(self._close)
