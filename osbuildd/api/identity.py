"""Who is calling: what an API's authentication sets on the request and its handlers read.

Shared by the Cloud and worker APIs (no API imports another; both import this). ``channel`` is the
job channel the caller may see: ``org-<tenant>`` with JWT (upstream's EnsureJobChannel), ``None``
when the listener does no per-tenant isolation (local unix socket, mTLS, no auth): then every job
is visible and new ones go to the default channel "".
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class Identity:
    method: str                  # "local" (unix socket) | "none" (plain TCP) | "mtls" | "jwt"
    tenant: str | None = None    # JWT: the first non-empty jwt_tenant_provider_fields claim
    subject: str = ""            # mTLS: the client certificate's subject; JWT: the "sub" claim

    @property
    def channel(self) -> str | None:
        return f"org-{self.tenant}" if self.tenant else None

    @property
    def new_channel(self) -> str:
        """The channel a job this caller creates goes to."""
        return self.channel or ""

    def sees(self, channel: str) -> bool:
        """May this caller see a job on ``channel``?"""
        return self.channel is None or channel == self.channel


ANONYMOUS = Identity("none")
IDENTITY = web.RequestKey("osbuildd_identity", Identity)


def of(request: web.Request) -> Identity:
    """The caller's identity (ANONYMOUS when no authentication middleware set one)."""
    found = request.get(IDENTITY)
    return found if isinstance(found, Identity) else ANONYMOUS
