"""The one error type of the blueprint package: every problem names the field it is about."""

from __future__ import annotations

from osbuildd.errors import ErrorKind, ServiceError


class BlueprintError(ServiceError, ValueError):
    """A blueprint problem. ``field`` is a dotted path (``customizations.user[0].uid``), or "" for the
    whole document (a TOML/JSON syntax error); ``message`` is upstream's text where upstream has one."""

    kind = ErrorKind.INVALID
    error_id = "BlueprintsError"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"BlueprintError(field={self.field!r}, message={self.message!r})"
