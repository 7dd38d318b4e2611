"""Weldr's error envelope: ``{"status":false,"errors":[{"code"?,"id","msg"}]}``.

Handlers raise :class:`WeldrError`; the one middleware in ``app.py`` turns it into the response.
"""

from __future__ import annotations

from typing import Any


class WeldrError(Exception):
    """One API error with upstream's id and message; ``code`` is only sent for HTTPError 404s."""

    def __init__(self, status: int, id: str, msg: str, code: int | None = None) -> None:
        super().__init__(msg)
        self.status = status
        self.id = id
        self.msg = msg
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"status": False, "errors": [error_entry(self.id, self.msg, self.code)]}


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
