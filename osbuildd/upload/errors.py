"""Upload failures carried as upstream worker client errors (id, reason, details)."""

from __future__ import annotations

from typing import Any

from osbuildd.queue.errors import (
    IMPORTING_IMAGE,
    INVALID_CONFIG,
    INVALID_TARGET,
    INVALID_TARGET_CONFIG,
    SHARING_TARGET,
    TARGET_ERROR,
    UPLOADING_IMAGE,
)
from osbuildd.queue.model import JobError

__all__ = [
    "IMPORTING_IMAGE", "INVALID_CONFIG", "INVALID_TARGET", "INVALID_TARGET_CONFIG", "SHARING_TARGET",
    "TARGET_ERROR", "UPLOADING_IMAGE", "JobError", "UploadError",
]

class UploadError(Exception):
    """A target failed; ``id`` is upstream's client error id (11 uploading, 12 importing, ...).

    The reason never contains credentials: targets build it from their own words plus the remote
    service's error code/message, never from the request options.
    """

    def __init__(self, error_id: int, reason: str, details: Any = None) -> None:
        super().__init__(reason)
        self.id = error_id
        self.reason = reason
        self.details = details

    def to_job_error(self) -> JobError:
        return JobError(id=self.id, reason=self.reason, details=self.details)
