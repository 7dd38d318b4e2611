"""The skeleton of an API's one error middleware; each API supplies only its error shape.

An API's error type renders that API's upstream shape (``response()``); the API also says how to
make one from a status, a reason and the service error's id. The middleware then answers, in that
shape: the API's own errors as raised, aiohttp's HTTP errors with their status, the services'
typed errors (``osbuildd.errors.ServiceError``) with their kind's status, and anything else as a
logged 500 that names no internals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from osbuildd.errors import ServiceError

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


def error_middleware(api: str, make: Callable[[int, str, str], APIError]) -> Middleware:
    """The error middleware of API ``api``: ``make(status, reason, error_id)`` builds its error."""
    log = structlog.get_logger(f"osbuildd.{api}")

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except APIError as e:
            return e.response()
        except web.HTTPException as e:
            return make(e.status, e.reason, "").response()
        except ServiceError as e:
            return make(e.kind.http_status, e.reason, e.error_id).response()
        except Exception:
            log.exception(f"{api} handler failed", path=request.path, method=request.method)
            return make(500, INTERNAL_REASON, "").response()

    return errors
