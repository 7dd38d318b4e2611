"""The compose service: a compose request becomes a job graph (depsolve -> manifest -> build)."""

from __future__ import annotations

from typing import Any

from .model import (
    LOCAL_TARGETS,
    Compose,
    ComposeNotFound,
    ComposeRequest,
    ComposeRequestError,
    ComposeStateError,
    UploadTarget,
)
from .service import ComposeService

__all__ = [
    "LOCAL_TARGETS", "Compose", "ComposeNotFound", "ComposeRequest", "ComposeRequestError", "ComposeService",
    "ComposeStateError", "UploadTarget", "attach",
]


async def attach(services: Any, *, start_executor: bool | None = None) -> ComposeService:
    """Create the compose service on ``services`` and, unless ``[builder] local_executor = false``,
    the local executor (after removing what a crashed build left behind)."""
    from osbuildd.executor import LocalExecutor

    service = getattr(services, "compose", None) or ComposeService(services)
    services.compose = service
    run_local = services.config.builder.local_executor if start_executor is None else start_executor
    executor = LocalExecutor(services)
    # leftovers of a crashed daemon go even when builds are left to remote workers
    await executor.recover()
    if run_local:
        executor.start()
        service.executor = executor
    return service
