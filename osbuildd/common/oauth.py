"""OAuth2 access tokens for osbuildd's clients of a composer (the remote worker, image-builder's
remote composer), as upstream's clients get them: ``client_credentials`` with a client id and
secret, or ``refresh_token`` with an offline token, POSTed form-encoded to the token URL.

A secret is given as a value (image-builder's ``COMPOSER_CLIENT_SECRET``) or as a file read at each
fetch (the worker's ``client_secret`` / ``offline_token`` paths, so a rotated file is picked up).
With both a client secret and an offline token, the client secret wins, as upstream's clients do.
A token is refreshed a minute before it expires; the caller forces one more after a 401.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

REFRESH_MARGIN = 60.0   # seconds before expiry
DEFAULT_TTL = 300.0     # when the answer says no expires_in


class AuthError(Exception):
    """The token endpoint refused or gave no token (one line, never a secret)."""


def public_url(url: str) -> str:
    """``url`` without user info or query, fit for a message or a log line."""
    try:
        return str(URL(url).with_user(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        return "<the token URL>"


@dataclass(frozen=True)
class Secret:
    """A secret given as ``value`` or as the ``file`` holding it (stripped of surrounding blanks)."""

    value: str = ""
    file: str = ""

    def __bool__(self) -> bool:
        return bool(self.value or self.file)

    def __repr__(self) -> str:   # never the value
        return f"Secret(file={self.file!r})" if self.file else "Secret(<value>)" if self.value else "Secret()"

    async def read(self) -> str:
        if self.value:
            return self.value
        return await asyncio.to_thread(_read_secret, self.file)


def _read_secret(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise AuthError(f"{path}: cannot read: {exc.strerror or exc}") from None


class TokenSource:
    """Bearer tokens for one client id. ``ssl_context``: the TLS context for the token endpoint
    (None: the session's own)."""

    def __init__(self, token_url: str, client_id: str, *, client_secret: Secret | None = None,
                 offline_token: Secret | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret or Secret()
        self.offline_token = offline_token or Secret()
        if not self.client_secret and not self.offline_token:
            raise ValueError("an OAuth2 token source needs a client secret or an offline token")
        self.ssl_context = ssl_context
        self.fetches = 0
        self._token = ""
        self._expires = 0.0
        self._lock = asyncio.Lock()

    @property
    def grant(self) -> str:
        return "client_credentials" if self.client_secret else "refresh_token"

    async def _form(self) -> dict[str, str]:
        if self.client_secret:
            return {"grant_type": "client_credentials", "client_id": self.client_id,
                    "client_secret": await self.client_secret.read()}
        return {"grant_type": "refresh_token", "client_id": self.client_id,
                "refresh_token": await self.offline_token.read()}

    async def token(self, session: aiohttp.ClientSession, *, force: bool = False) -> str:
        """A token valid for at least REFRESH_MARGIN more seconds; ``force``: a new one (after a 401)."""
        async with self._lock:
            if force or not self._token or time.monotonic() >= self._expires - REFRESH_MARGIN:
                await self._fetch(session)
            return self._token

    def invalidate(self) -> None:
        self._token = ""

    async def _fetch(self, session: aiohttp.ClientSession) -> None:
        form = await self._form()
        where = f"token endpoint {public_url(self.token_url)}"
        extra: dict[str, Any] = {} if self.ssl_context is None else {"ssl": self.ssl_context}
        self.fetches += 1
        try:
            async with session.post(self.token_url, data=form, headers={"Accept": "application/json"},
                                    **extra) as r:
                if r.status != 200:
                    raise AuthError(f"{where} answered {r.status}")
                try:
                    body: Any = await r.json(content_type=None)
                except ValueError:
                    raise AuthError(f"{where}: not JSON") from None
        except aiohttp.ClientError as exc:
            raise AuthError(f"{where} is unreachable: {type(exc).__name__}: {exc}") from None
        except TimeoutError:
            raise AuthError(f"{where} is unreachable: timed out") from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError(f"{where}: no access_token in the answer")
        ttl = body.get("expires_in")
        ttl = float(ttl) if isinstance(ttl, (int, float)) and ttl > 0 else DEFAULT_TTL
        self._token, self._expires = token, time.monotonic() + ttl
