"""The web UI: the built single-page app (``static_files``) put in front of an image-builder API
application that daemon.py makes and hands over (this package imports no API package).

:func:`install` adds to that application, before it starts:

- the UI's routes after the API's own: ``/assets/*`` and the single-page app's fallback;
- the security headers of every answer (a strict Content-Security-Policy, nosniff, no referrer);
- in local mode, outermost, :func:`guard`: a request must be same-origin (``Host`` one of the
  listener's names unless ``trust_proxy``: DNS rebinding; ``Origin`` the request's own on any
  method that changes something: cross-site requests), and every API request gets the built-in
  organisation's ``X-Rh-Identity`` (one the browser sent is replaced). In hosted mode the header the
  gateway set passes through untouched and the API authenticates it as on its own listener.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDict

from osbuildd.config import WebConfig
from osbuildd.log import get_logger

from .static_files import PACKAGED, StaticUI

__all__ = ["SECURITY_HEADERS", "install", "local_identity"]

log = get_logger("osbuildd.web")

IDENTITY_HEADER = "X-Rh-Identity"
# PatternFly sets element styles at run time: 'unsafe-inline' for styles only, never for scripts
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def local_identity(cfg: WebConfig) -> str:
    """The built-in organisation's ``X-Rh-Identity`` value (a User entitled to RHEL, as the console's
    gateway would send for a member of that organisation)."""
    doc = {"identity": {"type": "User", "account_number": cfg.account_number, "org_id": cfg.org_id,
                        "internal": {"org_id": cfg.org_id},
                        "user": {"username": cfg.user, "email": f"{cfg.user}@localhost", "is_org_admin": True}},
           "entitlements": {"rhel": {"is_entitled": True}}}
    return base64.b64encode(json.dumps(doc).encode()).decode()


def host_name(host: str) -> str:
    """The name part of a ``Host`` header (``[::1]:8700`` -> ``::1``, ``a:80`` -> ``a``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, sep, port = host.rpartition(":")
    return name if sep and port.isdigit() and ":" not in name else host


def _refusal(request: web.Request, why: str) -> web.Response:
    log.warning("web request refused", path=request.path, method=request.method, reason=why)
    if request.path.startswith("/api/"):
        body = {"errors": [{"title": "403", "detail": why}]}
        return web.Response(status=403, text=json.dumps(body), content_type="application/json")
    return web.Response(status=403, text=why + "\n", content_type="text/plain")


def _own_origin(request: web.Request, trust_proxy: bool) -> str:
    scheme, host = request.scheme, request.host
    if trust_proxy:   # the proxy's view of the request, as the browser sees it
        scheme = request.headers.get("X-Forwarded-Proto", scheme).split(",")[0].strip() or scheme
        host = request.headers.get("X-Forwarded-Host", host).split(",")[0].strip() or host
    return f"{scheme}://{host}".lower()


def cross_origin(request: web.Request, cfg: WebConfig, hosts: frozenset[str]) -> str | None:
    """Why a local-mode request is not the UI's own (None: it is)."""
    if not cfg.trust_proxy and host_name(request.host) not in hosts:
        return f"Host {request.host!r} is not this listener's (local mode answers {', '.join(sorted(hosts))})"
    if request.method in SAFE_METHODS:
        return None
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() != _own_origin(request, cfg.trust_proxy):
        return f"cross-origin request refused: Origin {origin!r} is not this listener's"
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        return "cross-site request refused (Sec-Fetch-Site)"
    return None


def _guard(cfg: WebConfig, hosts: frozenset[str]) -> Middleware:
    identity = local_identity(cfg)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        why = cross_origin(request, cfg, hosts)
        if why is not None:
            return _refusal(request, why)
        if request.path.startswith("/api/"):
            headers = CIMultiDict(request.headers)
            headers.popall(IDENTITY_HEADER, None)
            headers[IDENTITY_HEADER] = identity
            request = request.clone(headers=headers)
        return await handler(request)

    return guard


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def install(app: web.Application, cfg: WebConfig, *, local: bool, listen_host: str | None = None) -> None:
    """Serve the UI from ``app`` (an image-builder API application not yet started). ``local``: the
    built-in organisation for everyone (the [web] listener in local mode); else hosted."""
    root = Path(cfg.static_dir) if cfg.static_dir else PACKAGED
    ui = StaticUI(root)
    if local:
        hosts = LOOPBACK_NAMES | ({listen_host.lower()} if listen_host else set())
        app.middlewares.insert(0, _guard(cfg, frozenset(hosts)))
    # not under /api/: the API's own router answers there (its 404s and 405s as without the UI)
    app.router.add_get("/{tail:(?!api/).*}", ui.handle)
    app.on_response_prepare.append(_security_headers)

    async def check(_app: web.Application) -> None:
        await ui.check()

    app.on_startup.append(check)
