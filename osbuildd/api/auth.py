"""TLS and authentication shared by the Cloud and worker APIs (upstream's ``[koji]``/``[worker]``).

STUB until the TLS/auth part lands: ``middlewares`` returns no middleware, ``server_ssl_context``
returns None (plain HTTP). The interface below is the contract the APIs use.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from aiohttp.typedefs import Middleware

from osbuildd.errors import ErrorKind, ServiceError


class AuthFailure(StrEnum):
    UNAUTHENTICATED = "unauthenticated"   # no / bad credentials: Cloud 401 (id 401)
    FORBIDDEN = "forbidden"               # credentials fine, not allowed: Cloud 403 (id 2)
    NO_TENANT = "no_tenant"               # JWT without any tenant provider field: Cloud 400 (id 28)


class AuthError(ServiceError):
    """Raised by the authentication middleware; each API's error middleware renders it."""

    kind = ErrorKind.INVALID
    error_id = "AuthError"

    def __init__(self, failure: AuthFailure, reason: str) -> None:
        super().__init__(reason)
        self.failure = failure


def middlewares(settings: Any, *, exempt: Callable[[str], bool] = lambda path: False) -> list[Middleware]:
    """The middlewares that authenticate requests per ``settings`` (a ``[cloud]``/``[worker_api]``
    section) and set ``osbuildd.api.identity.IDENTITY``; ``exempt(path)``: public routes."""
    return []
