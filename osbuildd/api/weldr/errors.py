"""Weldr's error envelope: ``{"status":false,"errors":[{"code"?,"id","msg"}]}``, and the one mapping
of the services' typed errors to upstream's ids, statuses and messages.

Handlers raise :class:`WeldrError`, or let a service's error through; the one middleware in
``app.py`` turns either into the response (``service_error`` for the latter).
"""

from __future__ import annotations

from typing import Any

from osbuildd.blueprint import BlueprintError
from osbuildd.blueprint.store import StoreError, UnknownCommit
from osbuildd.compose import ComposeNotFound, ComposeRequestError, ComposeStateError
from osbuildd.compose.handlers import ManifestError
from osbuildd.depsolve import DepsolveError
from osbuildd.distro import UnknownArch, UnknownDistro, UnknownImageType
from osbuildd.distro.repocheck import RepoCheckError
from osbuildd.errors import ErrorKind, ServiceError


class WeldrError(Exception):
    """One API error with upstream's id and message; ``code`` is only sent for HTTPError 404s."""

    def __init__(self, status: int, id: str, msg: str, code: int | None = None) -> None:
        super().__init__(msg)
        self.status = status
        self.id = id
        self.msg = msg
        self.code = code

    def entry(self) -> dict[str, Any]:
        return error_entry(self.id, self.msg, self.code)

    def body(self) -> dict[str, Any]:
        return {"status": False, "errors": [self.entry()]}


def error_entry(id: str, msg: str, code: int | None = None) -> dict[str, Any]:
    """An entry of an ``errors`` list (also used inside 200 responses)."""
    if code:
        return {"code": code, "id": id, "msg": msg}
    return {"id": id, "msg": msg}


def not_found() -> WeldrError:
    return WeldrError(404, "HTTPError", "Not Found", code=404)


def bad_request(id: str, msg: str) -> WeldrError:
    return WeldrError(400, id, msg)


def invalid_chars() -> WeldrError:
    return WeldrError(400, "InvalidChars", "Invalid characters in API path")


def unknown_compose(compose_id: str) -> WeldrError:
    return bad_request("UnknownUUID", f"Compose {compose_id} doesn't exist")


def not_cancellable(compose_id: str) -> WeldrError:
    return bad_request("BuildInWrongState", f"Build {compose_id} is not in WAITING or RUNNING.")


def not_deletable(compose_id: str) -> WeldrError:
    return bad_request("BuildInWrongState", f"Compose {compose_id} is not in FINISHED or FAILED.")


def manifest_failed(reason: str) -> WeldrError:
    return bad_request("ManifestCreationFailed", f"failed to initialize osbuild manifest: {reason}")


def _compose_error(e: ComposeRequestError | ComposeNotFound | ComposeStateError) -> WeldrError:
    if isinstance(e, ComposeRequestError):
        if e.topic == "blueprint":   # upstream's text: the message, no field prefix
            return manifest_failed(e.message)
        return bad_request("ComposeError", str(e))
    if isinstance(e, ComposeNotFound):
        return unknown_compose(e.compose_id)
    # the one route that lets this through is cancel; delete reports it per compose
    if e.operation == "delete":
        return not_deletable(e.compose_id)
    return not_cancellable(e.compose_id)


_STATUS = {ErrorKind.INVALID: 400, ErrorKind.NOT_FOUND: 400, ErrorKind.CONFLICT: 400,
           ErrorKind.FAILED: 500, ErrorKind.UNAVAILABLE: 503}


def service_error(e: Exception) -> WeldrError | None:
    """A service's typed error as Weldr answers it; None for anything else (an internal error)."""
    if isinstance(e, ComposeRequestError | ComposeNotFound | ComposeStateError):
        return _compose_error(e)
    if isinstance(e, DepsolveError):
        return WeldrError(500, "DepsolveError", str(e))
    if isinstance(e, BlueprintError | ManifestError):
        return manifest_failed(str(e))
    if isinstance(e, UnknownCommit):
        return bad_request("UnknownCommit", str(e))
    if isinstance(e, StoreError):
        return bad_request("BlueprintsError", str(e))
    if isinstance(e, RepoCheckError):   # a user source's field (projects/source/new)
        return bad_request("ProjectsError", f"Problem parsing POST body: {e}")
    if isinstance(e, UnknownDistro | UnknownArch):
        return bad_request("DistroError", str(e))
    if isinstance(e, UnknownImageType):
        return bad_request("ComposeError", str(e))
    if isinstance(e, ServiceError):   # one added later: its own id and reason
        return WeldrError(_STATUS.get(e.kind, 500), e.error_id, e.reason)
    return None
