"""The manifest generator's own error (a blueprint it cannot honour is a ``BlueprintError``)."""

from __future__ import annotations

from osbuildd.errors import ErrorKind, ServiceError


class ManifestGenerationError(ServiceError, ValueError):
    """The generator's inputs are inconsistent (a depsolved package set missing, a package without a
    sha256 checksum): the work failed, not the request. Still a ValueError, as it was before it had a
    type of its own, so callers catching ValueError keep working."""

    kind = ErrorKind.FAILED
    error_id = "ManifestCreationFailed"   # upstream Weldr's id for a manifest that cannot be made
