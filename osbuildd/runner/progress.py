"""Progress from the monitor stream to the caller: forward only, at a bounded rate, the last word kept."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from .monitor import Progress


class ProgressSink(Protocol):
    """Where progress goes (the executor writes it to the job)."""

    async def __call__(self, progress: Progress, /) -> None: ...


@dataclass
class ProgressPublisher:
    """At most one write per ``interval``; a progress that comes too soon waits as ``pending`` (newer
    ones replace it) until ``flush_loop`` sends it. A progress below what was sent is dropped."""

    sink: ProgressSink | None
    interval: float
    best: float = -1.0
    last_sent: float = 0.0
    pending: Progress | None = None

    async def offer(self, p: Progress, force: bool = False) -> None:
        if p.percent < self.best:
            return
        now = time.monotonic()
        if not force and now - self.last_sent < self.interval:
            self.pending = p
            return
        self.best = p.percent
        self.last_sent = now
        self.pending = None
        if self.sink is not None:
            await self.sink(p)

    async def flush_loop(self) -> None:
        """Runs for the whole build (cancelled at its end): sends what waited."""
        while True:
            await asyncio.sleep(self.interval)
            if self.pending is not None:
                await self.offer(self.pending, force=True)


def finished(progress: Progress) -> Progress:
    """What a successful build reports last: every pipeline done."""
    p = progress.copy()
    p.done = max(p.done, p.total)
    p.sub_done = p.sub_total = None
    p.message = "finished"
    return p
