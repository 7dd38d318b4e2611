"""The ``X-Rh-Identity`` header of the image-builder API, read as upstream image-builder reads it.

Upstream runs three checks in a row, and this module keeps their order, messages and status codes:

1. the identity library's extractor (``RedHatInsights/identity`` at the revision image-builder pins,
   2022-07-19): exactly one header, standard base64, JSON into its ``XRHID`` structure as Go's
   ``encoding/json`` decodes it (keys matched case-insensitively, a value of the wrong type is an
   error), a missing top-level ``org_id`` taken from ``internal.org_id``;
2. the library's base policy: no header at all is 401; an empty or ``-1`` account number, an empty
   ``org_id`` or ``internal.org_id`` and an empty ``type`` are 400 (an ``Associate`` without
   account number skips these checks);
3. image-builder's own refusal of ``Associate`` identities.

Errors of 1 and 2 are plain text (Go's ``http.Error``: ``"Bad Request: <reason>\\n"``); the
``Associate`` refusal and the ``allowed_org_ids`` refusal go through image-builder's JSON error
handler (``{"errors":[{"title","detail"}]}``). :class:`IdentityError` says which.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

HEADER = "X-Rh-Identity"
ANY_ORG = "*"


class IdentityError(Exception):
    """A refused identity: the HTTP ``status``, upstream's ``message`` and whether upstream answers
    it as plain text (the identity library) or in image-builder's JSON error list."""

    def __init__(self, status: int, message: str, *, plain_text: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.plain_text = plain_text

    @property
    def body(self) -> str:
        """The plain-text body Go's ``http.Error`` writes: status text, reason, newline."""
        return f"{HTTPStatus(self.status).phrase}: {self.message}\n"


MISSING = "missing identity header"                                       # 401, no header
NOT_ONE = "missing x-rh-identity header"                                  # 400, several headers
NOT_BASE64 = "unable to b64 decode x-rh-identity header"
NOT_JSON = "x-rh-identity header is does not contain valid JSON"          # sic, as upstream
BAD_ACCOUNT = "x-rh-identity header has an invalid or missing account number"
BAD_ORG = "x-rh-identity header has an invalid or missing org_id"
NO_TYPE = "x-rh-identity header is missing type"
ASSOCIATE = "unsupported account type: 'Associate'"
NOT_ALLOWED = "Organization or account not allowed"   # image-builder's ALLOWED_ORG_IDS check (404)


@dataclass(frozen=True)
class User:
    username: str = ""
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    is_active: bool = False
    is_org_admin: bool = False
    is_internal: bool = False
    locale: str = ""
    user_id: str = ""


@dataclass(frozen=True)
class Entitlement:
    is_entitled: bool = False
    is_trial: bool = False


@dataclass(frozen=True)
class Identity:
    """An accepted identity. ``org_id`` scopes everything the caller reads and writes."""

    org_id: str
    account_number: str
    type: str
    internal_org_id: str
    user: User = field(default_factory=User)
    entitlements: Mapping[str, Entitlement] = field(default_factory=dict)
    header: str = ""          # the header as received, to forward

    @property
    def email(self) -> str:
        return self.user.email

    def is_entitled(self, service: str) -> bool:
        """As image-builder: the header's entitlement, or, when the header has none for
        ``service``, whether the organisation has an account number."""
        entitlement = self.entitlements.get(service)
        if entitlement is None:
            return self.account_number != ""
        return entitlement.is_entitled


# -- Go's encoding/json, for the fields of the library's XRHID --------------------------------------

class _TypeMismatch(Exception):
    pass


class _Obj(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs in order, duplicates kept (Go reads them in order)."""


_STR, _BOOL, _STRS, _ANYMAP = "string", "bool", "[]string", "map[string]any"
_SERVICE = {"is_entitled": _BOOL, "is_trial": _BOOL}
_XRHID: dict[str, Any] = {
    "identity": {
        "account_number": _STR, "org_id": _STR, "internal": {"org_id": _STR},
        "user": {"username": _STR, "email": _STR, "first_name": _STR, "last_name": _STR,
                 "is_active": _BOOL, "is_org_admin": _BOOL, "is_internal": _BOOL, "locale": _STR,
                 "user_id": _STR},
        "system": _ANYMAP,
        "associate": {"Role": _STRS, "email": _STR, "givenName": _STR, "rhatUUID": _STR, "surname": _STR},
        "x509": {"subject_dn": _STR, "issuer_dn": _STR},
        "type": _STR,
    },
    "entitlements": ("map", _SERVICE),
}


def _fold(key: str) -> str:
    return key.lower().replace("\u017f", "s").replace("\u212a", "k")


def _field(fields: Mapping[str, Any], key: str) -> str | None:
    """The struct field a JSON key sets: the exact name, else a case-insensitive match (as Go)."""
    if key in fields:
        return key
    folded = _fold(key)
    return next((name for name in fields if _fold(name) == folded), None)


def _plain(value: Any) -> Any:
    """A decoded ``interface{}`` value; Go refuses numbers beyond float64."""
    if isinstance(value, _Obj):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            if not math.isfinite(float(value)):
                raise _TypeMismatch("number out of range")
        except OverflowError:
            raise _TypeMismatch("number out of range") from None
    return value


def _decode(value: Any, schema: Any, current: Any) -> Any:
    """Decode ``value`` into a field of type ``schema`` holding ``current``; as Go, null leaves a
    string, bool or struct as it was and empties a slice or map."""
    if schema == _STR or schema == _BOOL:
        if value is None:
            return current
        ok = isinstance(value, str) if schema == _STR else isinstance(value, bool)
        if not ok:
            raise _TypeMismatch(schema)
        return value
    if schema == _STRS:
        if value is None:
            return None
        if not isinstance(value, list) or isinstance(value, _Obj) \
                or not all(v is None or isinstance(v, str) for v in value):
            raise _TypeMismatch(schema)
        return [v or "" for v in value]
    if schema == _ANYMAP:
        if value is None:
            return None
        if not isinstance(value, _Obj):
            raise _TypeMismatch(schema)
        merged = dict(current or {})
        merged.update(_plain(value))
        return merged
    if isinstance(schema, tuple):   # ("map", element struct): each element decoded afresh
        if value is None:
            return None
        if not isinstance(value, _Obj):
            raise _TypeMismatch("map")
        merged = dict(current or {})
        for key, element in value:
            merged[key] = _decode(element, schema[1], {})
        return merged
    if value is None:
        return current
    if not isinstance(value, _Obj):
        raise _TypeMismatch("struct")
    struct = dict(current)
    for key, element in value:   # a later duplicate key overwrites (or merges into) an earlier one
        name = _field(schema, key)
        if name is not None:
            empty: dict[str, Any] | None = {} if isinstance(schema[name], dict) else None
            struct[name] = _decode(element, schema[name], struct.get(name, empty))
    return struct


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unmarshal(raw: bytes) -> dict[str, Any]:
    """The XRHID Go would decode from ``raw``; ValueError where Go's Unmarshal fails."""
    try:
        doc = json.loads(raw.decode("utf-8", errors="replace"), object_pairs_hook=_Obj,
                         parse_constant=_no_constant)
        decoded = _decode(doc, _XRHID, {})
    except (ValueError, RecursionError, _TypeMismatch) as exc:
        raise ValueError(str(exc)) from exc
    return decoded if isinstance(decoded, dict) else {}


def _b64decode(value: str) -> bytes:
    """Go's ``base64.StdEncoding.DecodeString``: padded standard alphabet; CR and LF are skipped."""
    cleaned = value.replace("\r", "").replace("\n", "")
    try:
        return base64.b64decode(cleaned.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise ValueError(str(exc)) from exc


def _text(struct: Mapping[str, Any], *path: str) -> str:
    value: Any = struct
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value if isinstance(value, str) else ""


def parse_identity(values: Sequence[str]) -> Identity:
    """The identity of a request from all its ``X-Rh-Identity`` header values (none, one or more),
    or :class:`IdentityError` with upstream's status and message."""
    if not values:
        raise IdentityError(401, MISSING)
    if len(values) != 1:
        raise IdentityError(400, NOT_ONE)
    try:
        raw = _b64decode(values[0])
    except ValueError:
        raise IdentityError(400, NOT_BASE64) from None
    try:
        doc = _unmarshal(raw)
    except ValueError:
        raise IdentityError(400, NOT_JSON) from None
    ident = doc.get("identity") or {}
    account, id_type = _text(ident, "account_number"), _text(ident, "type")
    internal_org = _text(ident, "internal", "org_id")
    org = _text(ident, "org_id") or internal_org          # the library's top-level fallback
    if not (id_type == "Associate" and account == ""):
        if account in ("", "-1"):
            raise IdentityError(400, BAD_ACCOUNT)
        if org == "" or internal_org == "":
            raise IdentityError(400, BAD_ORG)
        if id_type == "":
            raise IdentityError(400, NO_TYPE)
    if id_type == "Associate":
        raise IdentityError(400, ASSOCIATE, plain_text=False)
    user = {k: v for k, v in (ident.get("user") or {}).items() if v is not None}
    entitlements = {name: Entitlement(bool(e.get("is_entitled")), bool(e.get("is_trial")))
                    for name, e in (doc.get("entitlements") or {}).items()}
    return Identity(org_id=org, account_number=account, type=id_type, internal_org_id=internal_org,
                    user=User(**user), entitlements=entitlements, header=values[0])


def check_allowed(identity: Identity, allowed_org_ids: Iterable[str] | None) -> None:
    """Refuse an organisation outside ``allowed_org_ids`` (``"*"`` admits any; None: no check) with
    image-builder's 404 "Organization or account not allowed" (a refusal is a 404 there, as the
    console guidelines ask). The org compared is the one every query is scoped by."""
    if allowed_org_ids is None:
        return
    allowed = set(allowed_org_ids)
    if ANY_ORG in allowed or identity.org_id in allowed:
        return
    raise IdentityError(404, NOT_ALLOWED, plain_text=False)
