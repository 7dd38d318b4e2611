"""Where the image-builder service sends its builds: a composer's Cloud API, spoken in its own JSON.

image-builder-crc is a client of osbuild-composer's Cloud API v2: it translates its own compose
request into a Cloud ``ComposeRequest``, posts it, and reads the Cloud ``ComposeStatus`` back.
osbuildd keeps that contract behind :class:`Composer` with two implementations:

- ``osbuildd.imagebuilder.local.LocalComposer``: the daemon's own compose service, in process (no
  HTTP hop), the default;
- ``osbuildd.imagebuilder.remote.RemoteComposer``: a composer's Cloud API over HTTPS (``OSBUILD_URL``),
  with a client certificate or OAuth2 bearer tokens, as image-builder does.

Both take and give the Cloud API's JSON values (``dict``) exactly as the Cloud API's spec shapes
them, so the image-builder layer cannot tell them apart. A refusal or failure of the composer is a
:class:`ComposerError` carrying the HTTP status and the Cloud API's error object (``id``,
``reason``, ``details``, ...), which the image-builder API maps to its own answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

JSON = dict[str, Any]


@dataclass
class Download:
    """A compose's image to send: a file of this host (``path``, sent by sendfile) or the bytes a
    remote composer streams (``chunks``, never whole in memory; closing it releases the connection)."""

    filename: str
    size: int | None = None
    path: Path | None = None
    chunks: AsyncIterator[bytes] | None = None

    async def close(self) -> None:
        aclose = getattr(self.chunks, "aclose", None)
        if aclose is not None:
            await aclose()


class ComposerError(Exception):
    """The composer answered ``status`` (>= 400) with the Cloud API error object ``body``
    (``{"kind": "Error", "id": "<n>", "code": ..., "reason": ..., "details": ...}``), or could not be
    reached (``status`` 502/503, ``body["reason"]`` saying why; never a secret)."""

    def __init__(self, status: int, body: JSON) -> None:
        self.status, self.body = status, body
        super().__init__(f"{status}: {body.get('reason', '')}: {body.get('details', '')}".rstrip(": "))

    @property
    def error_id(self) -> int | None:
        """The Cloud API's error id (``body["id"]``) as a number, None when there is none."""
        try:
            return int(self.body.get("id", ""))
        except (TypeError, ValueError):
            return None

    @property
    def reason(self) -> str:
        return str(self.body.get("reason", ""))

    @property
    def details(self) -> Any:
        return self.body.get("details")


class Composer(Protocol):
    """A composer's Cloud API v2, one method per operation image-builder uses."""

    async def ready(self) -> None:
        """Return when the composer answers (its ``GET /openapi``); ComposerError when it does not."""

    async def compose(self, request: JSON, *, org_id: str, test: int | None = None) -> str:
        """``POST /compose`` with a Cloud ``ComposeRequest``; the new compose's id. ``org_id`` is the
        tenant the compose belongs to (the in-process composer files it under channel
        ``org-<org_id>``; a remote composer knows the tenant from its own credentials). ``test``: 2 a
        finished fake compose, 1 a failed one, nothing built (as Weldr's ``?test=``; in process only)."""

    async def status(self, compose_id: str) -> JSON:
        """``GET /composes/{id}``: the Cloud ``ComposeStatus``. ComposerError 404 when unknown."""

    async def metadata(self, compose_id: str) -> JSON:
        """``GET /composes/{id}/metadata``: the Cloud ``ComposeMetadata`` (packages, ostree_commit)."""

    async def logs(self, compose_id: str) -> bytes | None:
        """The build log so far (osbuild's output), None while there is none. osbuildd extension:
        the in-process composer only (a remote one: ComposerError 404)."""

    async def download(self, compose_id: str) -> Download | None:
        """The compose's image kept by the composer (its ``local`` target): ``GET
        /composes/{id}/download``; None when there is none (not finished, or uploaded elsewhere)."""

    async def distribution(self, name: str) -> JSON:
        """``GET /distributions/{name}``: the Cloud API's details of one distribution (its
        architectures and image types). ComposerError 404 when it has no such distribution."""

    async def search_packages(self, request: JSON) -> JSON:
        """``POST /search/packages`` with a Cloud ``SearchPackagesRequest`` (distribution,
        architecture, packages, repositories): the Cloud ``SearchPackagesResponse``."""

    async def close(self) -> None:
        """Release what the composer client holds (HTTP sessions); the in-process one holds nothing."""
