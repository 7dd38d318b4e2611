"""A UUID from a request path in its canonical form, as every API that takes ids needs it."""

from __future__ import annotations

import re
import uuid

_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def canonical_uuid(raw: str) -> str | None:
    """``raw`` as a canonical (lower-case, hyphenated) UUID, None when it is no UUID; the regex is
    the fast path for the ids clients send back as we wrote them."""
    if _CANONICAL.fullmatch(raw):
        return raw
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None
