"""Tar archives written straight to the response: headers from ``tarfile``, file bytes streamed from disk."""

from __future__ import annotations

import asyncio
import tarfile
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

BLOCK = 512
CHUNK = 1 << 20


@dataclass
class Member:
    name: str
    mode: int
    mtime: float
    data: bytes | None = None  # in-memory content, or
    path: Path | None = None  # a file on disk, streamed in chunks
    suffix: bytes = b""       # written after the file's bytes (e.g. a failure block after a log)


def _header(name: str, size: int, mode: int, mtime: float) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, int(mtime)
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _pad(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


async def stream_tar(request: web.Request, filename: str, members: list[Member]) -> web.StreamResponse:
    resp = web.StreamResponse(headers={
        "Content-Type": "application/x-tar", "Content-Disposition": f"attachment; filename={filename}",
    })
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for m in members:
        if m.data is not None:
            await resp.write(_header(m.name, len(m.data), m.mode, m.mtime) + m.data + _pad(len(m.data)))
            continue
        assert m.path is not None
        fh = await asyncio.to_thread(open, m.path, "rb")
        try:
            file_size = (await asyncio.to_thread(fh.seek, 0, 2))
            size = file_size + len(m.suffix)
            await asyncio.to_thread(fh.seek, 0)
            await resp.write(_header(m.name, size, m.mode, m.mtime))
            left = file_size
            while left > 0:
                chunk = await asyncio.to_thread(fh.read, min(CHUNK, left))
                if not chunk:  # the file shrank under us: keep the archive well-formed
                    chunk = b"\0" * min(CHUNK, left)
                await resp.write(chunk)
                left -= len(chunk)
            await resp.write(m.suffix + _pad(size))
        finally:
            await asyncio.to_thread(fh.close)
    await resp.write(b"\0" * (2 * BLOCK))
    await resp.write_eof()
    return resp
