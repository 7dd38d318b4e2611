"""Sources: content-addressed blobs fetched into ``<store>/sources/org.osbuild.files/<checksum>``.

``org.osbuild.curl`` downloads http(s) and file URLs in parallel with retries and verifies the
checksum before a blob becomes visible (write to a temp name, verify, rename), so a blob in the store
is always complete and is never fetched twice. ``org.osbuild.inline`` decodes data from the manifest.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import lzma
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlparse

from .objectstore import Store

if TYPE_CHECKING:
    import aiohttp

PARALLEL = 8
RETRIES = 4
CHUNK = 1 << 20


class SourceError(Exception):
    def __init__(self, stype: str, message: str) -> None:
        super().__init__(message)
        self.stype = stype
        self.message = message


@dataclass
class SourceResult:
    stype: str
    items: list[dict[str, Any]] = field(default_factory=list)  # {"cached", "checksum"}
    output: list[str] = field(default_factory=list)


class SourceStore(Protocol):
    """What fetching needs of a store: where the blobs go. The engine's ``Store`` is one;
    :class:`SourcesDir` is one without the rest of a store (its locks and scratch dirs)."""

    @property
    def sources_dir(self) -> Path: ...
    def source_path(self, checksum: str) -> Path: ...


class SourcesDir:
    """Only ``<store>/sources/org.osbuild.files``: for fetching ahead of a build (the daemon's
    prefetch) into the directory the build's engine reads."""

    def __init__(self, path: Path) -> None:
        self.sources_dir = path

    def source_path(self, checksum: str) -> Path:
        return self.sources_dir / checksum


class Hasher(Protocol):
    """What a ``hashlib`` object offers that a download needs."""

    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def _hasher(checksum: str) -> tuple[Hasher, str]:
    algo, _, hexdigest = checksum.partition(":")
    if algo not in ("md5", "sha1", "sha256", "sha384", "sha512") or not hexdigest:
        raise ValueError(f"unsupported checksum {checksum!r}")
    return hashlib.new(algo), hexdigest


def _publish(store: SourceStore, checksum: str, tmp: Path, digest: str, expected: str, what: str) -> None:
    if digest != expected:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"checksum mismatch for {what}: expected {checksum}, got {digest}")
    os.chmod(tmp, 0o644)
    tmp.replace(store.source_path(checksum))


def fetch_inline(store: Store, items: dict[str, Any]) -> SourceResult:
    res = SourceResult("org.osbuild.inline")
    for checksum, desc in items.items():
        cached = store.source_path(checksum).exists()
        if not cached:
            data = base64.b64decode(desc["data"])
            if desc["encoding"] == "lzma+base64":
                data = lzma.decompress(data)
            h, expected = _hasher(checksum)
            h.update(data)
            tmp = store.sources_dir / f".tmp-{uuid.uuid4().hex}"
            tmp.write_bytes(data)
            try:
                _publish(store, checksum, tmp, h.hexdigest(), expected, "inline data")
            except ValueError as e:
                raise SourceError(res.stype, str(e)) from None
        res.items.append({"cached": cached, "checksum": checksum})
    return res


async def _download_http(session: aiohttp.ClientSession, url: str, tmp: Path, h: Hasher, insecure: bool) -> None:
    async with session.get(url, ssl=not insecure) as resp:
        if resp.status != 200:
            raise OSError(f"HTTP {resp.status} for {url}")
        with open(tmp, "wb") as f:  # noqa: ASYNC230 - chunks are small, writes are to local disk
            async for chunk in resp.content.iter_chunked(CHUNK):
                h.update(chunk)
                f.write(chunk)


def _copy_file(url: str, tmp: Path, h: Hasher) -> None:
    src = unquote(urlparse(url).path)
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        while chunk := fin.read(CHUNK):
            h.update(chunk)
            fout.write(chunk)


async def fetch_curl(store: SourceStore, items: dict[str, str | dict[str, Any]],
                     on_item: Callable[[int, int], None] | None = None,
                     on_fetched: Callable[[str], None] | None = None, *,
                     sem: asyncio.Semaphore | None = None,
                     failed: list[SourceError] | None = None) -> SourceResult:
    """Fetch every item not in the store yet; ``on_item(done, total)`` after each one and
    ``on_fetched(checksum)`` as soon as that blob is in the store (fetched or found there).

    ``sem`` bounds the downloads (default: PARALLEL for this call alone; a shared one bounds several
    calls together). With ``failed``, an item that cannot be fetched is appended there and the others
    go on (its blob stays absent), instead of the first failure ending the fetch."""
    import aiohttp  # only builds with curl sources pay for importing it

    res = SourceResult("org.osbuild.curl")
    finished = [0]

    def item_done(result: dict[str, Any]) -> dict[str, Any]:
        finished[0] += 1
        if on_fetched is not None:
            on_fetched(result["checksum"])
        if on_item is not None:
            on_item(finished[0], len(items))
        return result

    if sem is None:
        sem = asyncio.Semaphore(PARALLEL)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)

    async with aiohttp.ClientSession(timeout=timeout, trust_env=True) as session:  # proxies, as curl
        async def one(checksum: str, desc: str | dict[str, Any]) -> dict[str, Any]:
            url = desc if isinstance(desc, str) else desc["url"]
            insecure = False if isinstance(desc, str) else bool(desc.get("insecure", False))
            if store.source_path(checksum).exists():
                return {"cached": True, "checksum": checksum}
            async with sem:
                if store.source_path(checksum).exists():  # fetched meanwhile by a sibling item
                    return {"cached": True, "checksum": checksum}
                last: Exception | None = None
                for attempt in range(RETRIES):
                    h, expected = _hasher(checksum)
                    tmp = store.sources_dir / f".tmp-{uuid.uuid4().hex}"
                    try:
                        scheme = urlparse(url).scheme
                        if scheme in ("http", "https"):
                            await _download_http(session, url, tmp, h, insecure)
                        elif scheme == "file":
                            await asyncio.to_thread(_copy_file, url, tmp, h)
                        else:
                            raise ValueError(f"unsupported URL scheme in {url}")
                        _publish(store, checksum, tmp, h.hexdigest(), expected, url)
                        res.output.append(f"downloaded {url}\n")
                        return {"cached": False, "checksum": checksum}
                    except (TimeoutError, OSError, aiohttp.ClientError, ValueError) as e:
                        tmp.unlink(missing_ok=True)
                        last = e
                        if isinstance(e, ValueError) and ("scheme" in str(e) or attempt >= 1):
                            break  # a wrong checksum is retried once only: the server keeps serving it
                        await asyncio.sleep(min(8.0, 0.5 * 2**attempt))
                    except BaseException:
                        tmp.unlink(missing_ok=True)   # canceled mid-download: no partial file stays
                        raise
                raise SourceError(res.stype, f"failed to fetch {url} ({checksum}): {last}")

        async def counted(checksum: str, desc: str | dict[str, Any]) -> dict[str, Any] | None:
            try:
                got = await one(checksum, desc)
            except SourceError as e:
                if failed is None:
                    raise
                failed.append(e)
                return None
            return item_done(got)

        tasks = [asyncio.ensure_future(counted(c, d)) for c, d in items.items()]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    res.items.extend(r for r in results if r is not None)
    return res


SUPPORTED = ("org.osbuild.curl", "org.osbuild.inline")


async def fetch(store: Store, stype: str, desc: dict[str, Any],
                on_item: Callable[[int, int], None] | None = None,
                on_fetched: Callable[[str], None] | None = None) -> SourceResult:
    items = desc.get("items") or desc.get("urls") or {}
    if stype == "org.osbuild.inline":
        res = await asyncio.to_thread(fetch_inline, store, items)
        if on_fetched is not None:
            for item in res.items:
                on_fetched(item["checksum"])
        return res
    if stype == "org.osbuild.curl":
        return await fetch_curl(store, items, on_item=on_item, on_fetched=on_fetched)
    raise SourceError(stype, f"source type {stype} is not supported by osbuildd-engine")


def link_into(store: Store, checksum: str, dest: Path) -> None:
    """Make a source blob visible in an input directory without copying it."""
    src = store.source_path(checksum)
    if not src.exists():
        raise FileNotFoundError(f"source {checksum} is not in the store")
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)
