"""The compose service: a compose request becomes a job graph (depsolve -> manifest -> build).

The local executor that runs those jobs (osbuildd.executor) is started by its users (the daemon,
``osbuildd build``) with ``osbuildd.executor.start_local``: this package never imports it."""

from __future__ import annotations

from .model import (
    LOCAL_TARGETS,
    Compose,
    ComposeNotFound,
    ComposeRequest,
    ComposeRequestError,
    ComposeState,
    ComposeStateError,
    UploadTarget,
)
from .service import ComposeService

__all__ = [
    "LOCAL_TARGETS", "Compose", "ComposeNotFound", "ComposeRequest", "ComposeRequestError", "ComposeService",
    "ComposeState", "ComposeStateError", "UploadTarget",
]
