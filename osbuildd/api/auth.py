"""Authentication shared by the Cloud and worker APIs (upstream's ``[koji]`` / ``[worker]`` sections).

One middleware per app sets ``osbuildd.api.identity.IDENTITY`` on every request:
- a connection on a unix socket is local: ``Identity("local")``, no credentials asked;
- ``enable_jwt``: a verified ``Authorization: Bearer`` JWT (``osbuildd.api.jwtauth``) gives
  ``Identity("jwt", tenant, sub)``; ``exempt(path)`` routes (the Cloud API's /openapi and /errors) pass
  without a token;
- mTLS (``enable_tls`` and ``enable_mtls``): the handshake verified the chain; here the leaf's names
  are checked against ``allowed_domains`` once per connection: ``Identity("mtls", subject=...)``;
- otherwise (plain TCP, no JWT): ``Identity("none")``.
Failures are ``AuthError``s, rendered by each API's error middleware (Cloud: 401 / 403 id 2 / 400 id 28).
"""

from __future__ import annotations

import contextlib
import socket
import weakref
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from osbuildd.api.identity import ANONYMOUS, IDENTITY, Identity
from osbuildd.errors import ErrorKind, ServiceError

LOCAL = Identity("local")


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


def _is_unix(transport: Any) -> bool:
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock is not None and sock.family == socket.AF_UNIX


Refusal = tuple[AuthFailure, str]


class _Connections:
    """What one connection proved, computed on its first request (keep-alive requests reuse it)."""

    def __init__(self, compute: Callable[[Any], Identity | Refusal]) -> None:
        self._compute = compute
        self._seen: weakref.WeakKeyDictionary[Any, Identity | Refusal] = weakref.WeakKeyDictionary()

    def get(self, request: web.Request) -> Identity:
        """The connection's identity, or the AuthError (a new one each time) it earned."""
        transport = request.transport
        # keyed by the TLS object when there is one: uvloop's TLS transports take no weak reference
        key = (transport.get_extra_info("ssl_object") or transport) if transport is not None else None
        try:
            found = self._seen[key]
        except (KeyError, TypeError):
            found = self._compute(transport)
            with contextlib.suppress(TypeError):   # not weak-referenceable: computed every time
                self._seen[key] = found
        if isinstance(found, tuple):
            raise AuthError(*found)
        return found


def _mtls_identity(domains: list[str]) -> Callable[[Any], Identity | Refusal]:
    from osbuildd.api.tls import PeerNames

    def compute(transport: Any) -> Identity | Refusal:
        if _is_unix(transport):
            return LOCAL
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        cert = ssl_object.getpeercert() if ssl_object is not None else None
        if not cert:   # the handshake requires one; only a listener without TLS gets here
            return (AuthFailure.UNAUTHENTICATED, "a client certificate is required")
        names = PeerNames.of(cert)
        if not names.allowed(domains):
            return (AuthFailure.FORBIDDEN,
                    f"domain not in allowlist: the client certificate is for {names.describe()}")
        return Identity("mtls", subject=names.subject)

    return compute


def _local_or(other: Identity) -> Callable[[Any], Identity | Refusal]:
    return lambda transport: LOCAL if _is_unix(transport) else other


def middlewares(settings: Any, *, exempt: Callable[[str], bool] = lambda path: False) -> list[Middleware]:
    """The middleware that authenticates requests per ``settings`` (a ``[cloud]``/``[worker_api]``
    section, ``osbuildd.config.SecureListenerConfig``) and sets ``IDENTITY``; ``exempt(path)``: routes
    public under JWT (mTLS refuses the connection itself, as upstream's handshake does)."""
    if getattr(settings, "enable_jwt", False):
        return [_jwt_middleware(settings, exempt)]
    if getattr(settings, "enable_tls", False) and getattr(settings, "enable_mtls", False):
        connections = _Connections(_mtls_identity(list(settings.allowed_domains)))
    else:
        connections = _Connections(_local_or(ANONYMOUS))

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[IDENTITY] = connections.get(request)
        return await handler(request)

    return [authenticate]


def _jwt_middleware(settings: Any, exempt: Callable[[str], bool]) -> Middleware:
    from osbuildd.api.jwtauth import Forbidden, TokenRejected, Verifier

    verifier = Verifier(settings)
    local = _Connections(_local_or(ANONYMOUS))

    @web.middleware
    async def authenticate_jwt(request: web.Request, handler: Handler) -> web.StreamResponse:
        if local.get(request) is LOCAL:
            request[IDENTITY] = LOCAL
            return await handler(request)
        if exempt(request.path):
            return await handler(request)
        try:
            claims = await verifier.claims(request.headers.get("Authorization"))
        except TokenRejected as exc:
            raise AuthError(AuthFailure.UNAUTHENTICATED, str(exc)) from None
        except Forbidden as exc:
            raise AuthError(AuthFailure.FORBIDDEN, str(exc)) from None
        tenant = verifier.tenant(claims)
        if tenant is None:
            raise AuthError(AuthFailure.NO_TENANT,
                            f"none of the claims {', '.join(verifier.tenant_fields)} is in the token")
        request[IDENTITY] = Identity("jwt", tenant=tenant, subject=str(claims.get("sub", "")))
        return await handler(request)

    return authenticate_jwt

