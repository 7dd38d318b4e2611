"""The compose service: a compose request becomes a job graph (depsolve -> manifest -> build)."""

from __future__ import annotations

from typing import Any


async def attach(services: Any) -> None:
    """Create the compose service and start the local executor on ``services``.

    Called by the daemon after the database and job store are open; sets ``services.compose``.
    Until the compose part lands, the daemon serves without composes.
    """
    services.compose = None
