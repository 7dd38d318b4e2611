"""Upload failures carried as upstream worker client errors (id, reason, details)."""

from __future__ import annotations

from osbuildd.errors import ErrorKind, ServiceError
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

# upstream's names of the worker client error ids the targets raise (clienterrors.Error*)
ERROR_NAMES = {
    INVALID_TARGET_CONFIG: "ErrorInvalidTargetConfig", SHARING_TARGET: "ErrorSharingTarget",
    INVALID_TARGET: "ErrorInvalidTarget", UPLOADING_IMAGE: "ErrorUploadingImage",
    IMPORTING_IMAGE: "ErrorImportingImage", INVALID_CONFIG: "ErrorInvalidConfig", TARGET_ERROR: "ErrorTargetError",
}


class UploadError(ServiceError):
    """A target failed; ``id`` is upstream's client error id (11 uploading, 12 importing, ...), and
    ``error_id`` upstream's name of it (``ErrorUploadingImage``). Whether it is the request's fault
    is the id's to say (``osbuildd.queue.errors.status_code``), as upstream.

    The reason never contains credentials: targets build it from their own words plus the remote
    service's error code/message, never from the request options.
    """

    kind = ErrorKind.FAILED
    error_id = "ErrorUploadingImage"

    def __init__(self, error_id: int, reason: str, details: object = None) -> None:
        super().__init__(reason, error_id=ERROR_NAMES.get(error_id, f"Error{error_id}"))
        self.id = error_id
        self.details = details   # upstream's free-form details (JSON), as JobError carries them

    def to_job_error(self) -> JobError:
        return JobError(id=self.id, reason=self.reason, details=self.details)
