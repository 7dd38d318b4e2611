"""The image-builder service (image-builder-crc's API v1) as a service layer: distributions, allow
list, quotas and, next, identity, storage and the mapping to the Cloud API.

No HTTP here: ``osbuildd.api.imagebuilder`` serves these modules. Errors are
:class:`ImageBuilderError` subclasses; each carries the HTTP ``status`` and the ``detail`` text that
image-builder answers (``{"errors":[{"title": "<status>", "detail": "<detail>"}]}``), mapped by the
API's one error middleware.
"""

from __future__ import annotations

from typing import ClassVar

from osbuildd.errors import ErrorKind, ServiceError

__all__ = ["ImageBuilderError"]


class ImageBuilderError(ServiceError):
    """An error image-builder answers with ``status`` and this reason as the ``detail``."""

    kind: ClassVar[ErrorKind] = ErrorKind.FAILED
    status: ClassVar[int] = 500
    error_id = "ImageBuilderError"
