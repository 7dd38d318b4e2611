"""Request bodies: JSON and TOML parsing with the error texts upstream's Go decoders give."""

from __future__ import annotations

import json
import tomllib
from typing import Any

from aiohttp import web


class BodyError(ValueError):
    """A body that could not be decoded; ``str()`` is the Go-style message."""


def _go_json_message(err: json.JSONDecodeError) -> str:
    # Go's encoding/json wording for the syntax errors clients actually make.
    doc, pos = err.doc, err.pos
    ch = doc[pos] if pos < len(doc) else ""
    if not ch or err.msg.startswith("Unterminated string"):
        return "unexpected EOF"
    if err.msg.startswith("Expecting ':' delimiter"):
        return f"invalid character '{ch}' after object key"
    if err.msg.startswith("Expecting ',' delimiter"):
        return f"invalid character '{ch}' after object key:value pair"
    if err.msg.startswith("Expecting property name"):
        return f"invalid character '{ch}' looking for beginning of object key string"
    if err.msg.startswith("Extra data"):
        return f"invalid character '{ch}' after top-level value"
    if err.msg.startswith("Invalid control character"):
        return f"invalid character {ch!r} in string literal"
    return f"invalid character '{ch}' looking for beginning of value"


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BodyError(f"invalid UTF-8 in body at byte {e.start}") from e
    if "\x00" in text:
        raise BodyError("invalid character '\\x00' in body")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BodyError(_go_json_message(e)) from e
    except RecursionError as e:
        raise BodyError("exceeded max depth") from e


def parse_toml(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BodyError(f"invalid UTF-8 in body at byte {e.start}") from e
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BodyError(f"toml: {e}") from e
    except RecursionError as e:
        raise BodyError("toml: exceeded max depth") from e


def media_type(request: web.Request) -> str:
    """The request's media type without parameters; "" when there is no Content-Type header."""
    if "Content-Type" not in request.headers:
        return ""
    return request.content_type


async def read_body(request: web.Request) -> bytes:
    """The whole body; the app's ``client_max_size`` makes an oversized one a 413 here."""
    return await request.read()
