"""The child's streams: manifest to stdin, the JSONSeq monitor pipe, stderr's tail, stdout's result."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .logs import BuildLog
from .monitor import MonitorEvent, MonitorParser, Progress
from .progress import ProgressPublisher

STDERR_TAIL = 16 * 1024
READ_SIZE = 256 * 1024


class LogSink(Protocol):
    """Sees every monitor event as it is parsed (``on_log``; called on the event loop, must not block)."""

    def __call__(self, event: MonitorEvent, /) -> None: ...


@dataclass
class StageClock:
    """When the running stage started (None between stages), for the stage timeout."""

    started: float | None = None

    def observe(self, ev: MonitorEvent) -> None:
        # the bundled engine fetches sources while a stage runs: a source finishing meanwhile does
        # not end the stage's time
        if (ev.pipeline or "").startswith("source "):
            return
        if ev.is_status and ev.message:
            if ev.message.startswith("Starting module"):
                self.started = time.monotonic()
            elif ev.message.startswith(("Finished module", "Finished pipeline")):
                self.started = None

    def overdue(self, timeout: float | None) -> bool:
        started = self.started
        if not timeout or started is None:
            return False
        return time.monotonic() - started > timeout


@dataclass
class BuildEvents:
    """What each batch of monitor events goes to: the log files, the stage clock, ``on_log``, progress."""

    log: BuildLog
    publisher: ProgressPublisher
    clock: StageClock
    on_log: LogSink | None = None

    async def handle(self, events: list[MonitorEvent]) -> None:
        await self.log.write(events)
        latest: Progress | None = None
        for ev in events:
            self.clock.observe(ev)
            if ev.progress is not None:
                latest = ev.progress
            if self.on_log is not None:
                self.on_log(ev)
        if latest is not None:
            await self.publisher.offer(latest)


async def read_monitor(fd: int, parser: MonitorParser,
                       handle: Callable[[list[MonitorEvent]], Awaitable[None]]) -> None:
    """Read the monitor pipe until EOF (every writer gone), handing each parsed batch to ``handle``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READ_SIZE * 4)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0))
    try:
        while True:
            chunk = await reader.read(READ_SIZE)
            events = parser.feed(chunk) if chunk else parser.close()
            if events:
                await handle(events)
            if not chunk:
                break
    finally:
        transport.close()


@dataclass
class StderrTail:
    """The last ``STDERR_TAIL`` bytes of stderr (at least), in the chunks they came in."""

    chunks: collections.deque[bytes] = field(default_factory=collections.deque)
    size: int = 0

    def add(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        while self.size - len(self.chunks[0]) >= STDERR_TAIL:
            self.size -= len(self.chunks.popleft())

    async def read(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self.add(chunk)

    def text(self) -> str:
        return b"".join(self.chunks)[-STDERR_TAIL:].decode("utf-8", "replace")


async def feed_stdin(stdin: asyncio.StreamWriter, manifest: dict[str, Any]) -> None:
    """The manifest, then EOF; a child that is gone before reading it all is not an error here."""
    try:
        stdin.write(json.dumps(manifest).encode())
        await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        try:
            stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass


async def read_all(stream: asyncio.StreamReader) -> bytes:
    return await stream.read()
