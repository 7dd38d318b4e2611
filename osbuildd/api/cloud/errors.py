"""The Cloud API's error answers and its one error middleware (upstream ``cloudapi/v2/errors.go``).

The table of ids, statuses and reasons is ``osbuildd.compose.cloud.errors`` (the pure logic there
raises its CloudRequestError); here it becomes an HTTP answer. Every error answer is
``{"kind":"Error","id","href","code","reason","operation_id","details"}`` with the HTTP status of the
id's row; the operation id is fresh per answer and is logged with it.
"""

from __future__ import annotations

import json
import uuid

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from osbuildd.api.auth import AuthError, AuthFailure
from osbuildd.api.middleware import INTERNAL_REASON, APIError
from osbuildd.compose.cloud.errors import (
    BASE,
    BODY_DECODING,
    BY_ID,
    COMPOSE_NOT_FOUND,
    ERROR_HREF,
    ERROR_NOT_FOUND,
    INVALID_COMPOSE_ID,
    INVALID_ERROR_ID,
    METHOD_NOT_ALLOWED,
    NOT_ACCEPTABLE,
    RESOURCE_NOT_FOUND,
    SERVICE_ERROR_NOT_FOUND,
    TABLE,
    TENANT_NOT_FOUND,
    UNAUTHENTICATED,
    UNAUTHORIZED,
    UNSPECIFIED,
    UNSUPPORTED_ARCHITECTURE,
    UNSUPPORTED_DISTRIBUTION,
    UNSUPPORTED_IMAGE_TYPE,
    UNSUPPORTED_MEDIA_TYPE,
    VALIDATION,
    CloudRequestError,
    error_body,
)
from osbuildd.errors import ServiceError

# the table's names, for the handlers
__all__ = ["BASE", "BODY_DECODING", "BY_ID", "COMPOSE_NOT_FOUND", "CloudError", "CloudRequestError",
           "ERROR_HREF", "ERROR_NOT_FOUND", "INVALID_COMPOSE_ID", "INVALID_ERROR_ID", "METHOD_NOT_ALLOWED",
           "NOT_ACCEPTABLE", "RESOURCE_NOT_FOUND", "SERVICE_ERROR_NOT_FOUND", "TABLE", "TENANT_NOT_FOUND",
           "UNAUTHENTICATED", "UNAUTHORIZED", "UNSPECIFIED", "UNSUPPORTED_ARCHITECTURE", "UNSUPPORTED_DISTRIBUTION",
           "UNSUPPORTED_IMAGE_TYPE", "UNSUPPORTED_MEDIA_TYPE", "VALIDATION", "cloud_errors", "error_body"]

log = structlog.get_logger("osbuildd.cloud")


class CloudError(CloudRequestError, APIError):
    """An answer with error ``error_id`` of TABLE (its HTTP status), ``details`` optional: the pure
    logic's error (its id, status and details) that renders itself as an HTTP answer."""

    def response(self) -> web.Response:
        operation_id = uuid.uuid4().hex
        level = log.error if self.status >= 500 else log.info
        level("cloud error", error_id=self.error_id, status=self.status, operation_id=operation_id,
              details=self.details)
        return web.Response(status=self.status, text=json.dumps(error_body(self.error_id, operation_id, self.details)),
                            content_type="application/json")


_AUTH = {AuthFailure.UNAUTHENTICATED: UNAUTHENTICATED, AuthFailure.FORBIDDEN: UNAUTHORIZED,
         AuthFailure.NO_TENANT: TENANT_NOT_FOUND}
_HTTP = {404: RESOURCE_NOT_FOUND, 405: METHOD_NOT_ALLOWED, 406: NOT_ACCEPTABLE, 415: UNSUPPORTED_MEDIA_TYPE}


@web.middleware
async def cloud_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The Cloud API's one error middleware: every failure in upstream's shape, HEAD without a body."""
    try:
        return await handler(request)
    except CloudError as e:
        err = e
    except CloudRequestError as e:   # raised by the pure logic (osbuildd.compose.cloud)
        err = CloudError(e.error_id, e.details)
    except AuthError as e:
        err = CloudError(_AUTH[e.failure], e.reason)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        err = CloudError(_HTTP.get(e.status, UNSPECIFIED), "" if e.status in _HTTP else e.reason)
    except ServiceError as e:
        # a service error no handler translated: its kind's status family, the reason in details
        err = CloudError({400: 42, 404: RESOURCE_NOT_FOUND}.get(e.kind.http_status, UNSPECIFIED), e.reason)
    except Exception:
        log.exception("cloud handler failed", path=request.path, method=request.method)
        err = CloudError(UNSPECIFIED, INTERNAL_REASON)
    resp = err.response()
    if request.method == "HEAD":
        return web.Response(status=resp.status)
    return resp
