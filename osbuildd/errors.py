"""The base of every error a user can act on, raised by the services and mapped by each API.

A service (compose service, depsolver, blueprint store, manifest generator, ...) raises a subclass of
:class:`ServiceError`; it carries a stable ``error_id`` (the domain's own name, often upstream
Weldr's id), a one-line ``reason`` and, for bad input, the ``field`` it is about. Each API's one
error middleware maps these to its upstream shape (Weldr ``{"status":false,"errors":[...]}``, Cloud
``{"kind":"Error",...}``, image-builder ``{"errors":[...]}``); no handler catches them itself to do
the same mapping, and nothing recognises an error by its class name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


@dataclass(frozen=True)
class ErrorDef:
    """One row of an upstream API's error table (Cloud, worker): the error's id, HTTP status and reason."""

    id: int
    status: int
    reason: str


class ErrorKind(StrEnum):
    """What kind of failure it is, which picks the HTTP status family an API answers with."""

    INVALID = "invalid"          # the request is wrong (bad field, bad document): 400
    NOT_FOUND = "not_found"      # it names something that does not exist: 404 (Weldr: 400 + its id)
    CONFLICT = "conflict"        # the thing is in the wrong state for the operation: 409 (Weldr: 400)
    FAILED = "failed"            # the work itself failed (depsolve, manifest): 500 as upstream's Weldr
    UNAVAILABLE = "unavailable"  # a part the request needs is not there (no engine, no worker): 503


    @property
    def http_status(self) -> int:
        """The status an HTTP API answers by default (Weldr answers its 4xx all as 400, as upstream)."""
        return _HTTP_STATUS[self]


_HTTP_STATUS = {ErrorKind.INVALID: 400, ErrorKind.NOT_FOUND: 404, ErrorKind.CONFLICT: 409,
                ErrorKind.FAILED: 500, ErrorKind.UNAVAILABLE: 503}


class ServiceError(Exception):
    """An error with an id, a reason and, for bad input, the field. ``str()`` is the reason."""

    kind: ClassVar[ErrorKind] = ErrorKind.FAILED
    error_id: str = "InternalError"

    def __init__(self, reason: str, *, field: str = "", error_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
        if error_id is not None:
            self.error_id = error_id

    def __str__(self) -> str:
        return self.reason
