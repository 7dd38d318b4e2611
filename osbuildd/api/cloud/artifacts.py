"""Cloud API: /composes/{id}/metadata|logs|manifests|sboms|download (B2). Placeholder: routes are added by the part that owns this file."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
