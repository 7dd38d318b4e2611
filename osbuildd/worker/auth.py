"""OAuth2 access tokens for the worker, as upstream's worker client gets them: ``client_credentials``
with the client id and secret, or ``refresh_token`` with an offline token, POSTed form-encoded to
the token URL. A token is refreshed a minute before it expires, and once more after a 401."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

REFRESH_MARGIN = 60.0   # seconds before expiry
DEFAULT_TTL = 300.0     # when the answer says no expires_in


class AuthError(Exception):
    """The token endpoint refused or gave no token (one line, never a secret)."""


def _read_secret(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise AuthError(f"{path}: cannot read: {exc.strerror or exc}") from None


class TokenSource:
    def __init__(self, token_url: str, client_id: str, *, client_secret_file: str = "",
                 offline_token_file: str = "") -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret_file = client_secret_file
        self.offline_token_file = offline_token_file
        self._token = ""
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def _form(self) -> dict[str, str]:
        if self.offline_token_file:
            token = await asyncio.to_thread(_read_secret, self.offline_token_file)
            return {"grant_type": "refresh_token", "client_id": self.client_id, "refresh_token": token}
        secret = await asyncio.to_thread(_read_secret, self.client_secret_file)
        return {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": secret}

    async def token(self, session: aiohttp.ClientSession, *, force: bool = False) -> str:
        async with self._lock:
            if force or not self._token or time.monotonic() >= self._expires - REFRESH_MARGIN:
                await self._fetch(session)
            return self._token

    def invalidate(self) -> None:
        self._token = ""

    async def _fetch(self, session: aiohttp.ClientSession) -> None:
        form = await self._form()
        async with session.post(self.token_url, data=form, headers={"Accept": "application/json"}) as r:
            if r.status != 200:
                raise AuthError(f"token endpoint {self.token_url} answered {r.status}")
            try:
                body: Any = await r.json(content_type=None)
            except ValueError:
                raise AuthError(f"token endpoint {self.token_url}: not JSON") from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError(f"token endpoint {self.token_url}: no access_token in the answer")
        ttl = body.get("expires_in")
        ttl = float(ttl) if isinstance(ttl, (int, float)) and ttl > 0 else DEFAULT_TTL
        self._token, self._expires = token, time.monotonic() + ttl
