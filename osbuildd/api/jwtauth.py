"""JWT bearer tokens (upstream's ``BuildJWTAuthHandler`` over ocm-sdk-go's authentication handler).

Signing keys come from ``jwt_keys_urls``: JWKS documents over https (verified with ``jwt_ca_file`` when
set, else the system trust store) or local files (a path or ``file://`` URL). They are fetched on the
first token, cached by ``kid``, and fetched again when a token names a ``kid`` not in the cache, at most
once per ``REFRESH_INTERVAL`` (concurrent misses share one fetch) so a flood of made-up kids cannot
hammer the JWKS server. Only asymmetric algorithms are accepted (never HS*: a public JWKS key must not
double as an HMAC secret). ``jwt_acl_file`` is ocm-sdk-go's YAML list of ``{claim, pattern}``: empty =
everyone, else at least one string claim must match its regular expression (unanchored, as Go's
MatchString). Tokens and keys are never logged.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import aiohttp
import jwt
import yaml

from osbuildd.config import SecureListenerConfig
from osbuildd.log import get_logger

log = get_logger("osbuildd.api.jwt")

REFRESH_INTERVAL = 10.0   # seconds between two fetches caused by unknown kids
FETCH_TIMEOUT = 10.0
_ALGORITHMS = {"RSA": ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
               "EC": ["ES256", "ES384", "ES512"], "OKP": ["EdDSA"]}


class TokenRejected(Exception):
    """The token is not acceptable; ``str()`` says why (never the token itself)."""


class Forbidden(Exception):
    """A valid token the ACL does not admit."""


# -- the ACL ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ACL:
    items: tuple[tuple[str, re.Pattern[str]], ...] = ()

    @classmethod
    def load(cls, path: str) -> ACL:
        """Blocking (reads the file); ValueError with a one-line reason on a bad file."""
        if not path:
            return cls()
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not YAML: {str(exc).splitlines()[0]}") from None
        if data is None:
            return cls()
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            raise ValueError(f"{path}: must be a YAML list of {{claim, pattern}} items")
        items = []
        for i, item in enumerate(data):
            claim, pattern = item.get("claim"), item.get("pattern")
            if not isinstance(claim, str) or not isinstance(pattern, str):
                raise ValueError(f"{path}: item {i + 1}: needs string 'claim' and 'pattern'")
            try:
                items.append((claim, re.compile(pattern)))
            except re.error as exc:
                raise ValueError(f"{path}: item {i + 1}: pattern: {exc}") from None
        return cls(tuple(items))

    def admits(self, claims: dict[str, Any]) -> bool:
        if not self.items:
            return True
        return any(isinstance(claims.get(c), str) and p.search(claims[c]) for c, p in self.items)


# -- keys ------------------------------------------------------------------------------------------

def _ca_context(cafile: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile or None)


@dataclass(frozen=True)
class SigningKey:
    key: Any                  # the public key object PyJWT verifies with
    algorithms: list[str]     # the JWK's "alg", else every asymmetric algorithm of its type


class KeySet:
    """The signing keys of ``urls``, by kid."""

    def __init__(self, urls: list[str], cafile: str = "") -> None:
        self.urls, self.cafile = urls, cafile
        self.keys: dict[str, SigningKey] = {}
        self.fetches = 0
        self._loaded = False
        self._next_fetch = 0.0   # monotonic time before which no fetch is made
        self._inflight: asyncio.Task[None] | None = None
        self._ssl: ssl.SSLContext | None = None

    async def get(self, kid: str) -> SigningKey | None:
        if kid in self.keys:
            return self.keys[kid]
        if self._inflight is None:
            if time.monotonic() < self._next_fetch:
                return None   # fetched moments ago: an unknown kid now is not worth a fetch
            self._inflight = asyncio.ensure_future(self._refresh())
            self._inflight.add_done_callback(self._fetched)
        await asyncio.shield(self._inflight)
        return self.keys.get(kid)

    def _fetched(self, task: asyncio.Task[None]) -> None:
        self._inflight = None
        if not task.cancelled():
            task.exception()   # retrieved here too: every waiter may have gone

    async def _refresh(self) -> None:
        first = not self._loaded
        keys: dict[str, SigningKey] = {}
        errors = []
        for url in self.urls:
            try:
                keys.update(_parse_jwks(await self._fetch(url)))
            except (OSError, ValueError, aiohttp.ClientError, jwt.PyJWTError) as exc:
                errors.append(f"{_safe_url(url)}: {type(exc).__name__}: {str(exc)[:200]}")
        self.fetches += 1
        # the first load does not count: a key rotated in right after it is fetched at once
        self._next_fetch = 0.0 if first and not errors else time.monotonic() + REFRESH_INTERVAL
        if errors:
            log.warning("JWKS fetch failed", errors=errors)
        if not keys and errors:
            raise TokenRejected("the signing keys could not be fetched")
        self.keys = keys
        self._loaded = True

    async def _fetch(self, url: str) -> bytes:
        parsed = urlparse(url)
        if parsed.scheme in ("", "file"):
            path = unquote(parsed.path) if parsed.scheme else url
            return await asyncio.to_thread(Path(path).read_bytes)
        if self._ssl is None:
            self._ssl = await asyncio.to_thread(_ca_context, self.cafile)
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url, ssl=self._ssl) as resp:
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status}")
            return await resp.read()


def _safe_url(url: str) -> str:
    p = urlparse(url)
    return p._replace(query="", fragment="", netloc=p.hostname or "").geturl() if p.scheme else url


def _parse_jwks(body: bytes) -> dict[str, SigningKey]:
    data = json.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("not a JWKS document (no 'keys' list)")
    out = {}
    for item in data["keys"]:
        if not isinstance(item, dict) or not item.get("kid") or item.get("kty") not in _ALGORITHMS:
            continue   # symmetric or unnamed keys are never used
        if item.get("use", "sig") != "sig":
            continue
        algorithms = _ALGORITHMS[item["kty"]]
        if item.get("alg") is not None and item["alg"] not in algorithms:
            continue
        try:
            key = jwt.PyJWK(item)
        except jwt.PyJWTError:
            continue
        out[str(item["kid"])] = SigningKey(key.key, [item["alg"]] if item.get("alg") else algorithms)
    return out


# -- tokens ----------------------------------------------------------------------------------------

class Verifier:
    def __init__(self, settings: SecureListenerConfig) -> None:
        self.keys = KeySet(list(settings.jwt_keys_urls), settings.jwt_ca_file)
        self.acl_file = settings.jwt_acl_file
        self.tenant_fields = [f for f in settings.jwt_tenant_provider_fields if f]
        self._acl: ACL | None = None

    async def acl(self) -> ACL:
        if self._acl is None:
            self._acl = await asyncio.to_thread(ACL.load, self.acl_file)
        return self._acl

    async def claims(self, authorization: str | None) -> dict[str, Any]:
        """The verified claims of the ``Authorization: Bearer`` token; TokenRejected / Forbidden."""
        if not authorization:
            raise TokenRejected("no bearer token in the Authorization header")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise TokenRejected("the Authorization header is not 'Bearer <token>'")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("the bearer token is not a JWT") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("the token has no key id (kid)")
        key = await self.keys.get(kid)
        if key is None:
            raise TokenRejected("the token is signed by an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=key.algorithms,
                                                options={"require": ["exp"], "verify_aud": False})
        except jwt.ExpiredSignatureError:
            raise TokenRejected("the token has expired") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("the token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"the token is not valid: {exc}") from None
        if not (await self.acl()).admits(claims):
            raise Forbidden("the token's claims are not in the access control list")
        return claims

    def tenant(self, claims: dict[str, Any]) -> str | None:
        """The first non-empty ``jwt_tenant_provider_fields`` claim (upstream's GetFromClaims)."""
        for name in self.tenant_fields:
            value = claims.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
        return None
