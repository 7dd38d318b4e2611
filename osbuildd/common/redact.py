"""The one secret redactor: used by the log, by what the job store keeps of a request, and by the
engine's monitor stream.

A key is secret when one of its words (split on ``_ - .`` and camelCase) is in :data:`SECRET_WORDS`:
``password``, ``aws_secret_key``, ``accessKeyID``, ``clientSecret``, ``token``, ``sas`` ... The
value of such a key is replaced by :data:`REDACTED` at any depth of dicts, lists and tuples (an
empty or missing value stays as it is: there is nothing to hide, and its absence is information).
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "***"
# whole words of a key name that mark a secret
SECRET_WORDS = frozenset({"password", "passwd", "secret", "token", "key", "credentials", "credential",
                          "authorization", "sas", "passphrase", "apikey", "private"})
_SPLIT = re.compile(r"[_\-.\s]+")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
MAX_DEPTH = 16


def is_secret_key(name: str) -> bool:
    words = _SPLIT.split(_CAMEL.sub(r"\1_\2", name).lower())
    return any(w in SECRET_WORDS for w in words)


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` with every secret key's value replaced by :data:`REDACTED`."""
    if _depth > MAX_DEPTH:
        return REDACTED if isinstance(value, dict | list | tuple) else value
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and is_secret_key(k) and v not in (None, "")
                    else redact(v, _depth + 1)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, _depth + 1) for v in value]
    return value
