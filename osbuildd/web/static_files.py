"""The built UI's files: ``/assets/*`` (Vite's hashed output, cached for good), ``index.html`` (never
cached: it names the current assets) and the single-page app's fallback (any other GET that is no
file gets index.html, the client-side router takes it from there).

A pre-compressed ``<file>.gz`` beside a file is served when the client takes gzip (aiohttp's
FileResponse picks it); else text types are compressed on the fly. Files are read by FileResponse off
the event loop; the existence checks run in a thread too.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path

from aiohttp import web

from osbuildd.log import get_logger

log = get_logger("osbuildd.web")

PACKAGED = Path(__file__).resolve().parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
NOT_BUILT = "the web UI is not built: run scripts/setup.sh (npm ci && npm run build in web/)\n"
_COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml", "application/wasm")


def _file_in(root: Path, rel: str) -> Path | None:
    """``root/rel`` when it is a regular file inside ``root`` (no ``..`` or symlink escape). Blocking."""
    if not rel or "\0" in rel:
        return None
    try:
        path = (root / rel).resolve()
        base = root.resolve()
    except (OSError, RuntimeError):
        return None
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


class StaticUI:
    """The handlers over one static directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.index = root / "index.html"

    async def check(self) -> bool:
        """Whether the UI is built; says so loudly (once, at start) when it is not."""
        built = await asyncio.to_thread(self.index.is_file)
        if not built:
            log.warning("THE WEB UI IS NOT BUILT: / answers 503 until it is: run scripts/setup.sh "
                        "(npm ci && npm run build in web/)", static_dir=str(self.root))
        return built

    def _file(self, path: Path, cache: str) -> web.FileResponse:
        resp = web.FileResponse(path, headers={"Cache-Control": cache})
        ctype = mimetypes.guess_type(path.name)[0] or ""
        if ctype.startswith(_COMPRESSIBLE):
            resp.enable_compression()   # FileResponse turns it off again when it sends a .gz sibling
        return resp

    async def _index(self) -> web.StreamResponse:
        if not await asyncio.to_thread(self.index.is_file):
            return web.Response(status=503, text=NOT_BUILT, content_type="text/plain",
                                headers={"Cache-Control": "no-store"})
        return self._file(self.index, "no-cache")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """GET/HEAD of any path the API does not own."""
        path = request.path
        if path.startswith("/api/"):
            raise web.HTTPNotFound()
        rel = path.lstrip("/")
        if rel.startswith("assets/"):
            found = await asyncio.to_thread(_file_in, self.root, rel)
            if found is None:   # a stale hashed name: a 404, never index.html as JavaScript
                return web.Response(status=404, text="not found\n", content_type="text/plain")
            return self._file(found, IMMUTABLE)
        if rel in ("", "index.html"):
            return await self._index()
        found = await asyncio.to_thread(_file_in, self.root, rel)
        if found is not None and found.suffix != ".gz":
            return self._file(found, "no-cache")
        return await self._index()   # a client-side route
