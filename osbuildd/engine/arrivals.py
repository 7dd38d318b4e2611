"""Source blobs as they arrive in the store, and streaming inputs filled from them.

The executor fetches the sources in the background while the pipelines run. ``Arrivals`` is the
fetch as the rest of the build sees it: which blobs are in the store so far, whether the fetch has
ended and how. ``feed_input`` fills one streaming input directory of a running stage: every blob
it references is linked in as soon as it is in the store, then the directory gets the marker the
stage waits for (``stageapi.STREAM_COMPLETE``), or ``STREAM_FAILED`` with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from . import sources
from .objectstore import Store
from .stageapi import STREAM_COMPLETE, STREAM_FAILED


class Arrivals:
    """The background fetch: blobs published as they land, then the end (with its error, if any)."""

    def __init__(self) -> None:
        self.finished = asyncio.Event()
        self.error: str | None = None  # why the fetch failed; None while running or on success
        self._queues: list[asyncio.Queue[str | None]] = []

    def subscribe(self) -> asyncio.Queue[str | None]:
        """A queue of every checksum published from now on, then None when the fetch has ended."""
        q: asyncio.Queue[str | None] = asyncio.Queue()
        if self.finished.is_set():
            q.put_nowait(None)
        else:
            self._queues.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[str | None]) -> None:
        if q in self._queues:
            self._queues.remove(q)

    def publish(self, checksum: str) -> None:
        """``checksum`` is in the store now (called from the fetch, on the event loop)."""
        for q in self._queues:
            q.put_nowait(checksum)

    def finish(self, error: str | None = None) -> None:
        if self.finished.is_set():
            return
        self.error = error
        self.finished.set()
        for q in self._queues:
            q.put_nowait(None)
        self._queues.clear()


def _link_present(store: Store, checksums: Iterable[str], dest: Path) -> set[str]:
    """Link those of ``checksums`` that are in the store into ``dest``; the ones linked."""
    linked = set()
    for c in checksums:
        if store.source_path(c).exists():
            try:
                sources.link_into(store, c, dest / c)
            except FileExistsError:
                pass
            linked.add(c)
    return linked


def _mark(dest: Path, name: str, text: str = "") -> None:
    # whole or not at all: the stage may read the marker the moment it exists
    tmp = dest / f".{name.lstrip('.')}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, dest / name)


async def feed_input(store: Store, arrivals: Arrivals, refs: Iterable[str], dest: Path) -> None:
    """Fill ``dest`` with the blobs ``refs`` as they arrive; mark it complete or failed at the end."""
    want = set(refs)
    q = arrivals.subscribe()  # before looking at the store: nothing published meanwhile is missed
    try:
        have = await asyncio.to_thread(_link_present, store, want, dest)
        while have != want:
            c = await q.get()
            if c is None:
                break
            if c in want and c not in have:
                have |= await asyncio.to_thread(_link_present, store, [c], dest)
        if arrivals.error is None and have != want:
            # the fetch ended well: whatever was not published (another source type) is in the store
            have |= await asyncio.to_thread(_link_present, store, want - have, dest)
        if arrivals.error is not None:
            await asyncio.to_thread(_mark, dest, STREAM_FAILED, arrivals.error)
        elif have != want:
            missing = ", ".join(sorted(want - have)[:5])
            await asyncio.to_thread(_mark, dest, STREAM_FAILED, f"no source provides {missing}")
        else:
            await asyncio.to_thread(_mark, dest, STREAM_COMPLETE)
    except OSError as e:
        # the stage must not wait for an input that will never be complete
        with contextlib.suppress(OSError):
            _mark(dest, STREAM_FAILED, f"linking the input failed: {e}")
    finally:
        arrivals.unsubscribe(q)
