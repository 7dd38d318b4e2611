"""Helpers every Weldr handler uses: upstream-style JSON, name checks, paging, distro selection."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from osbuildd.api.weldr.context import WeldrContext
from osbuildd.api.weldr.errors import WeldrError, bad_request, invalid_chars
from osbuildd.distro import Distro

V = "/api/v{version}"  # every versioned route starts with this; the middleware checks the number
CONTENT_TYPE = "application/json; charset=utf-8"
_NAME_RE = re.compile(r"^[a-zA-Z0-9._-]+$")
# Go's json.Encoder escapes these inside strings; doing the same keeps bodies byte-identical.
_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


_NEEDS_ESCAPE = re.compile("[<>&\u2028\u2029]")


def dumps(obj: Any) -> str:
    """Compact JSON with a trailing newline, as Go's ``json.Encoder.Encode`` writes it."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if _NEEDS_ESCAPE.search(text):
        text = text.translate(_GO_ESCAPES)
    return text + "\n"


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=dumps(obj), content_type="application/json", charset="utf-8")


def text_response(text: str, status: int = 200) -> web.Response:
    """Plain text (TOML, logs) that upstream still labels as JSON."""
    return web.Response(status=status, text=text, content_type="application/json", charset="utf-8")


def ok() -> web.Response:
    return json_response({"status": True})


WELDR = web.AppKey("weldr", WeldrContext)


def ctx(request: web.Request) -> WeldrContext:
    return request.app[WELDR]


def api_version(request: web.Request) -> int:
    raw = request.match_info.get("version")
    if raw is None:   # a route registered for one version (app._add_versioned): /api/v<n>/...
        path = request.path
        raw = path[6:path.find("/", 6)] if path.startswith("/api/v") else "1"
    return int(raw) if raw.isdigit() else 1


def valid_name(name: str) -> bool:
    return bool(_NAME_RE.match(name))


def check_name(name: str) -> None:
    if not valid_name(name):
        raise invalid_chars()


def split_names(value: str) -> list[str]:
    """A comma-separated path parameter, every item name-checked."""
    names = value.split(",")
    for n in names:
        check_name(n)
    return names


def _uint(request: web.Request, key: str, default: int) -> int:
    raw = request.query.get(key)
    if raw is None:
        return default
    if not raw.isdigit() or not raw.isascii():
        raise bad_request(
            "BadLimitOrOffset", f'BadRequest: invalid value for \'{key}\': strconv.ParseUint: parsing "{raw}": invalid syntax'
        )
    return int(raw)


def offset_limit(request: web.Request) -> tuple[int, int]:
    """``?offset`` (default 0) and ``?limit`` (default 20) as upstream's parseOffsetAndLimit."""
    return _uint(request, "offset", 0), _uint(request, "limit", 20)


def format_param(request: web.Request) -> str:
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "toml"):
        raise bad_request("InvalidChars", f"invalid format parameter: {fmt}")
    return fmt


def distro_arch(request: web.Request) -> tuple[Distro, str]:
    """The distro object and arch selected by ``?distro=``/``?arch=`` (defaults: the host's)."""
    c = ctx(request)
    arch = request.query.get("arch") or c.host_arch
    name = request.query.get("distro")
    if not name:
        return c.distro(c.host_distro), arch
    if name not in c.distro_names(arch):
        raise WeldrError(400, "DistroError", f"Invalid distro: {name}")
    return c.distro(name), arch


def integral(x: float | int | None) -> float | int | None:
    """Go prints float64 1574857140.0 as ``1574857140``; Python would add ``.0``."""
    if isinstance(x, float) and x.is_integer():
        return int(x)
    return x


H = TypeVar("H", bound=Callable[..., Any])


def min_version(n: int) -> Callable[[H], H]:
    """Routes that upstream only serves from ``/api/v<n>`` on (older versions get 404)."""

    def mark(handler: H) -> H:
        # read by app._version_ok and _add_versioned; setattr: mypy knows no attributes on a function
        setattr(handler, "weldr_min_version", n)  # noqa: B010
        return handler

    return mark
