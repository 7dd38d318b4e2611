"""The Weldr API (what composer-cli and cockpit-composer speak), on the local unix socket."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def create_app(services: Any) -> web.Application:
    """The Weldr sub-application. The full route table lives in this package's modules."""
    from osbuildd.api.weldr.app import build_app

    return build_app(services)
