"""Name rules the image's own tools enforce, shared by the engine's stages and the compose-time checks
(so a blueprint is refused at compose start for what the stage would refuse later)."""

from __future__ import annotations

import re

HOST_NAME_MAX = 64   # Linux's limit, which systemd applies (DNS would allow 253)
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")


def hostname_error(name: str) -> str | None:
    """None when systemd's hostname_is_valid(name, VALID_HOSTNAME_TRAILING_DOT) accepts ``name``
    (the check upstream's org.osbuild.hostname gets from systemd-firstboot), else why not."""
    if not name:
        return "must not be empty"
    if len(name) > HOST_NAME_MAX:
        return f"is {len(name)} characters long, longer than the maximum of {HOST_NAME_MAX}"
    labels = name.split(".")
    if labels[-1] == "" and len(labels) > 2:   # a trailing dot, allowed after two labels or more
        labels = labels[:-1]
    for label in labels:
        if not _LABEL.fullmatch(label):
            return ("must be labels of ASCII letters, digits and inner hyphens, separated by single dots "
                    "(no spaces, underscores, leading or trailing hyphens)")
    return None


_ZONE_PART = re.compile(r"[A-Za-z0-9_+-]+")


def timezone_error(zone: str) -> str | None:
    """None when ``zone`` has the shape systemd's timezone_is_valid wants (slash-separated names of
    letters, digits, ``_+-``: no dots, so no way out of /usr/share/zoneinfo), else why not."""
    if not zone or not all(_ZONE_PART.fullmatch(part) for part in zone.split("/")):
        return "must be a zone name such as Europe/Berlin"
    return None
