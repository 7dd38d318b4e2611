"""The Cloud API's request translation moved to ``osbuildd.compose.cloud.request`` (the in-process
composer uses it too); its names stay importable from here for old importers."""

from osbuildd.compose.cloud.request import (
    API_TARGET,
    API_TO_INTERNAL,
    INTERNAL_TO_API,
    compose_requests,
    has_password,
)

__all__ = ["API_TARGET", "API_TO_INTERNAL", "INTERNAL_TO_API", "compose_requests", "has_password"]
