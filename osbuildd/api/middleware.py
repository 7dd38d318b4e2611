"""What every API's one error middleware shares: the base of its error type (which renders that
API's upstream shape, ``response()``), the entry of an upstream error table (``ErrorDef``, from
``osbuildd.errors``), and the reason a logged 500 gives (it names no internals). Each API's
middleware lives in its own package."""

from __future__ import annotations

from aiohttp import web

from osbuildd.errors import ErrorDef

__all__ = ["INTERNAL_REASON", "APIError", "ErrorDef"]

INTERNAL_REASON = "internal error, see the daemon log"


class APIError(Exception):
    """An answer in one API's error shape."""

    def response(self) -> web.Response:
        raise NotImplementedError
