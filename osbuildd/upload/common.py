"""Helpers the targets share: retries with backoff, streaming file reads, progress, .xz handling."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import random
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import structlog

T = TypeVar("T")
Progress = Callable[[int], None]
log = structlog.get_logger("osbuildd.upload")

_TRANSIENT_HTTP = {408, 429, 500, 502, 503, 504}
_TRANSIENT_AWS_CODES = {
    "RequestTimeout", "RequestTimeoutException", "SlowDown", "InternalError", "ServiceUnavailable",
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "PriorRequestNotComplete",
}


def is_transient(exc: BaseException) -> bool:
    """Errors worth another try: connection trouble, timeouts, throttling, 5xx."""
    import aiohttp

    if isinstance(exc, asyncio.TimeoutError | aiohttp.ClientConnectionError | ConnectionError):
        return True
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.status in _TRANSIENT_HTTP
    status = getattr(exc, "status_code", None)  # azure-core HttpResponseError
    if isinstance(status, int):
        return status in _TRANSIENT_HTTP
    response = getattr(exc, "response", None)   # botocore ClientError
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code", "")
        http = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _TRANSIENT_AWS_CODES or http in _TRANSIENT_HTTP
    name = type(exc).__name__   # botocore/azure transport errors without a response
    return name in {"EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError",
                    "ConnectTimeoutError", "ServiceRequestError", "ServiceResponseError"}


async def retry(fn: Callable[[], Awaitable[T]], *, what: str, attempts: int = 5, base: float = 0.5) -> T:
    """Run ``fn`` again after transient errors, with exponential backoff and jitter."""
    for attempt in range(1, attempts + 1):
        try:
            return await fn()
        except Exception as e:
            if attempt == attempts or not is_transient(e):
                raise
            delay = base * 2 ** (attempt - 1) * (0.5 + random.random())
            log.warning("upload.retry", what=what, attempt=attempt, error=type(e).__name__, delay=round(delay, 2))
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


async def read_at(fd: int, offset: int, size: int) -> bytes:
    """One chunk of the artifact, read in a worker thread (never the whole file)."""
    return await asyncio.to_thread(os.pread, fd, size, offset)


def _digest_file(path: Path, algo: str) -> bytes:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return h.digest()


_digests: dict[tuple[str, int, int, str], asyncio.Future[bytes]] = {}


async def file_digest(path: Path, algo: str = "md5") -> bytes:
    """Digest of the file, computed once for all targets uploading it at the same time (gcp and
    azure both need the MD5: one read of the file instead of two)."""
    st = await asyncio.to_thread(os.stat, path)
    key = (str(path), st.st_size, st.st_mtime_ns, algo)
    fut = _digests.get(key)
    if fut is None:
        fut = asyncio.ensure_future(asyncio.to_thread(_digest_file, path, algo))
        _digests[key] = fut
        fut.add_done_callback(lambda _: _digests.pop(key, None))
    return await asyncio.shield(fut)


class ProgressCounter:
    """Bytes sent by one target; parts may finish out of order, so it sums rather than sets."""

    def __init__(self, callback: Progress | None) -> None:
        self.sent = 0
        self._callback = callback

    def add(self, n: int) -> None:
        self.sent += n
        if self._callback is not None:
            self._callback(self.sent)

    def reset(self) -> None:
        self.sent = 0


class CountingFile(io.FileIO):
    """A file whose reads (done by aiohttp in its executor) are reported as bytes sent.

    The count is handed to the event loop with ``call_soon_threadsafe``; a seek back to the start
    (a retried PUT) restarts it.
    """

    def __init__(self, path: Path, counter: ProgressCounter, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(path, "rb")
        self._counter = counter
        self._loop = loop

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        data = super().read(size)
        if data:
            self._loop.call_soon_threadsafe(self._counter.add, len(data))
        return data

    def seek(self, pos: int, whence: int = 0) -> int:
        result = super().seek(pos, whence)
        if whence == 0 and pos == 0:
            self._loop.call_soon_threadsafe(self._counter.reset)
        return result


_xz_locks: dict[Path, asyncio.Lock] = {}


async def decompressed(artifact: Path) -> Path:
    """Upstream's ``.xz`` workaround for aws and azure.image: upload the decompressed image.

    Upstream decompresses in place; osbuildd uploads to several targets at once, so it writes the
    decompressed copy beside the artifact (once, shared by the targets) and leaves the .xz alone.
    """
    if artifact.suffix != ".xz":
        return artifact
    out = artifact.with_suffix("")
    lock = _xz_locks.setdefault(artifact, asyncio.Lock())
    async with lock:
        await asyncio.to_thread(_xz_decompress, artifact, out)
    return out


def _xz_decompress(artifact: Path, out: Path) -> None:
    if out.exists() and out.stat().st_mtime >= artifact.stat().st_mtime:
        return
    tmp = out.with_name(f".{out.name}.partial")
    with open(tmp, "wb") as sink:
        proc = subprocess.run(["xz", "-dc", str(artifact)], stdout=sink, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"xz -d {artifact.name} failed: {proc.stderr.decode(errors='replace').strip()}")
    tmp.rename(out)


def option(options: dict[str, Any], *names: str, default: Any = None) -> Any:
    """First present option among upstream's spellings (camelCase JSON / snake_case settings)."""
    for name in names:
        value = options.get(name)
        if value not in (None, ""):
            return value
    return default
