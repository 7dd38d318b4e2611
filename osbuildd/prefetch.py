"""Prefetch: a compose's package downloads start as soon as its manifest is known.

A build can wait in the queue behind others (``[builder] max_parallel``). Meanwhile the daemon
downloads the manifest's ``org.osbuild.curl`` items into ``<store>/sources/org.osbuild.files`` with
the engine's own fetch code (``osbuildd.engine.sources.fetch_curl``: checksum verified on a temp
name, then renamed), so the build's engine finds them there and fetches only what is missing.

A prefetch is an optimisation only: its failures are logged, never the compose's; the build fetches
again and reports real errors. Items that need anything beyond a plain URL (``secrets`` for client
certificates or subscriptions, ``insecure``, any other option), URLs with credentials in them and
non-http(s) URLs or URLs with a query are left to the build.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import structlog

from osbuildd.engine.objectstore import SOURCES_DIR
from osbuildd.engine.sources import SourceError, SourcesDir, fetch_curl

CURL = "org.osbuild.curl"
PARALLEL = 4   # HTTP requests of all prefetches together: the build that runs needs bandwidth too
# only checksums the engine verifies, and nothing that could name another path than a blob's
_CHECKSUM = re.compile(r"^(?:md5|sha1|sha256|sha384|sha512):[0-9a-f]+$")


def sources_dir(store: Path) -> Path:
    return store / SOURCES_DIR


def curl_items(manifest: dict[str, Any]) -> tuple[dict[str, str], int]:
    """(checksum -> URL of the items a prefetch may fetch, how many it leaves to the build)."""
    sources = manifest.get("sources") if isinstance(manifest, dict) else None
    desc = sources.get(CURL) if isinstance(sources, dict) else None
    if not isinstance(desc, dict):
        return {}, 0
    items = desc.get("items") or desc.get("urls") or {}   # manifest v2, v1
    if not isinstance(items, dict):
        return {}, 0
    out: dict[str, str] = {}
    skipped = 0
    for checksum, item in items.items():
        url = item if isinstance(item, str) else item.get("url") if isinstance(item, dict) else None
        plain = isinstance(item, str) or (isinstance(item, dict) and set(item) == {"url"})
        if plain and isinstance(url, str) and isinstance(checksum, str) and _CHECKSUM.match(checksum) \
                and _public(url):
            out[checksum] = url
        else:
            skipped += 1
    return out, skipped


def _public(url: str) -> bool:
    """An http(s) URL that carries no credentials: no user info and no query at all (a presigned
    URL's or a CDN's token can hide under any parameter name; package URLs rarely have a query)."""
    try:
        u = urlparse(url)
        return u.scheme in ("http", "https") and bool(u.hostname) and not (u.username or u.password) \
            and not u.query
    except ValueError:
        return False


@dataclass
class PrefetchResult:
    fetched: int = 0
    cached: int = 0
    failed: int = 0
    skipped: int = 0
    bytes: int = 0
    seconds: float = 0.0
    error: str = ""   # the first failed item's (the URLs here carry no credentials)


async def prefetch(store: Path, manifest: dict[str, Any], sem: asyncio.Semaphore) -> PrefetchResult:
    """Download the manifest's plain curl items that are not in ``store`` yet; never raises for an
    item (a failed one is counted and its blob stays absent)."""
    started = time.monotonic()
    items, skipped = curl_items(manifest)
    out = PrefetchResult(skipped=skipped)
    if items:
        target = sources_dir(store)
        await asyncio.to_thread(target.mkdir, parents=True, exist_ok=True)
        failed: list[SourceError] = []
        res = await fetch_curl(SourcesDir(target), dict(items), sem=sem, failed=failed)
        new = [i["checksum"] for i in res.items if not i["cached"]]
        out.fetched, out.cached, out.failed = len(new), len(res.items) - len(new), len(failed)
        out.bytes = await asyncio.to_thread(_sizes, [target / c for c in new])
        out.error = failed[0].message if failed else ""
    out.seconds = time.monotonic() - started
    return out


def _sizes(paths: list[Path]) -> int:
    total = 0
    for p in paths:
        with contextlib.suppress(OSError):   # removed meanwhile (a store cleanup): not ours to count
            total += os.stat(p).st_size
    return total


class Prefetcher:
    """At most one prefetch per compose, all of them sharing one bound on HTTP requests."""

    def __init__(self, store: Path, log: structlog.typing.FilteringBoundLogger, parallel: int = PARALLEL) -> None:
        self.store = store
        self.log = log
        self._sem = asyncio.Semaphore(parallel)
        self._tasks: dict[str, asyncio.Task[PrefetchResult | None]] = {}

    def start(self, compose_id: str, manifest: dict[str, Any]) -> bool:
        """Start the compose's prefetch unless one runs already; False when none was started."""
        if compose_id in self._tasks:
            return False
        task = asyncio.create_task(self._run(compose_id, manifest), name=f"prefetch-{compose_id}")
        self._tasks[compose_id] = task
        task.add_done_callback(lambda t: self._tasks.pop(compose_id, None) if self._tasks.get(compose_id) is t else None)
        return True

    def running(self) -> set[str]:
        return set(self._tasks)

    def task(self, compose_id: str) -> asyncio.Task[PrefetchResult | None] | None:
        return self._tasks.get(compose_id)

    def cancel(self, compose_id: str) -> None:
        task = self._tasks.pop(compose_id, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for t in tasks:
            t.cancel()
        # the fetch removes its temp files as it is canceled: nothing half-written stays
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, compose_id: str, manifest: dict[str, Any]) -> PrefetchResult | None:
        started = time.monotonic()
        try:
            r = await prefetch(self.store, manifest, self._sem)
        except asyncio.CancelledError:
            self.log.info("prefetch canceled", compose_id=compose_id, seconds=round(time.monotonic() - started, 2))
            raise
        except Exception as exc:   # never the compose's error: the build fetches what is missing
            self.log.warning("prefetch failed", compose_id=compose_id, error=f"{type(exc).__name__}: {exc}")
            return None
        if r.fetched or r.cached or r.failed:
            self.log.info("prefetch finished", compose_id=compose_id, fetched=r.fetched, cached=r.cached,
                          failed=r.failed, skipped=r.skipped, bytes=r.bytes, seconds=round(r.seconds, 2),
                          **({"first_error": r.error} if r.error else {}))
        return r
