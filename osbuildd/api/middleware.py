"""What every API's one error middleware shares: the base of its error type (which renders that
API's upstream shape, ``response()``), the entry of an upstream error table, and the reason a
logged 500 gives (it names no internals). Each API's middleware lives in its own package."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

INTERNAL_REASON = "internal error, see the daemon log"


@dataclass(frozen=True)
class ErrorDef:
    """One entry of an API's upstream error table (Cloud, worker): its id, HTTP status and reason."""

    id: int
    status: int
    reason: str


class APIError(Exception):
    """An answer in one API's error shape."""

    def response(self) -> web.Response:
        raise NotImplementedError
