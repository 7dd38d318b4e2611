"""The Weldr API (what composer-cli and cockpit-composer speak), on the local unix socket."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from osbuildd.services import Services


def create_app(services: Services) -> web.Application:
    """The Weldr sub-application over the daemon's shared services. The full route table lives in
    this package's modules."""
    from osbuildd.api.weldr.app import build_app

    return build_app(services)
