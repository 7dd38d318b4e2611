"""Weldr application factory (grows into the full route table)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from osbuildd import __version__


async def status(request: web.Request) -> web.Response:
    body = {
        "api": "1",
        "db_supported": True,
        "db_version": "0",
        "schema_version": "0",
        "backend": "osbuild-composer",
        "build": __version__,
        "msgs": [],
    }
    return web.Response(text=json.dumps(body) + "\n", content_type="application/json", charset="utf-8")


def build_app(services: Any) -> web.Application:
    app = web.Application()
    app["services"] = services
    app.router.add_get("/api/status", status)
    return app
