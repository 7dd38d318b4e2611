"""The worker API's error table and its one error middleware (upstream ``internal/worker/api/errors.go``).

Every error answer is ``{"href": <base>/errors/<id>, "id", "kind": "Error", "code":
"IMAGE-BUILDER-WORKER-<id>", "reason", "message" (= reason, for old workers), "operation_id"}`` plus
``details`` when osbuildd has something to add, with the HTTP status of the id's row. Authentication
failures (which upstream leaves to its JWT layer) are answered in the same shape with ids 401 and 403,
which are not part of the table ``GET /errors/{id}`` serves.
"""

from __future__ import annotations

import json
import uuid

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from osbuildd.api.auth import AuthError, AuthFailure
from osbuildd.api.middleware import INTERNAL_REASON, APIError, ErrorDef
from osbuildd.errors import ServiceError

CODE_PREFIX = "IMAGE-BUILDER-WORKER-"
log = structlog.get_logger("osbuildd.worker_api")


# upstream's ids, statuses and reasons (the reasons are identifiers workers may match: kept exact)
TABLE: tuple[ErrorDef, ...] = (
    ErrorDef(3, 415, "Only 'application/json' content is supported"),
    ErrorDef(10, 400, "Malformed json, unable to decode body"),
    ErrorDef(5, 404, "Token not found"),
    ErrorDef(6, 400, "Job is not running"),
    ErrorDef(7, 400, "Given job id is not a uuidv4"),
    ErrorDef(8, 400, "Given job id is not a uuidv4"),
    ErrorDef(9, 400, "Invalid format for error id, it should be an integer as a string"),
    ErrorDef(11, 404, "Requested resource doesn't exist"),
    ErrorDef(12, 405, "Requested method isn't supported for resource"),
    ErrorDef(13, 406, "Only 'application/json' content is supported"),
    ErrorDef(14, 404, "Error with given id not found"),
    ErrorDef(15, 400, "Requested job type cannot be dequeued"),
    ErrorDef(16, 400, "Tenant not found in JWT claims"),
    ErrorDef(17, 400, "Given worker id is not a uuidv4"),
    ErrorDef(18, 400, "Given worker id doesn't exist"),
    ErrorDef(1000, 500, "Error discarding artifact"),
    ErrorDef(1001, 500, "Error creating artifact"),
    ErrorDef(1002, 500, "Error writing artifact"),
    ErrorDef(1003, 500, "Error resolving id from job token"),
    ErrorDef(1004, 500, "Error finishing job"),
    ErrorDef(1005, 500, "Error requesting job"),
    ErrorDef(1006, 500, "Error requesting job"),
    ErrorDef(1007, 500, "Unable to load openapi spec"),
    ErrorDef(1008, 500, "Unable to register the worker"),
    ErrorDef(1009, 500, "Unable update worker status"),
    ErrorDef(10000, 500, "Unspecified internal error "),
    ErrorDef(10001, 500, "Error is not an instance of HTTPError"),
    ErrorDef(10002, 500, "Error does not exist"),
    ErrorDef(10003, 500, "OperationID is empty or is not a string"),
)
BY_ID = {e.id: e for e in TABLE}
# osbuildd's: the authentication layer's refusals (not served by GET /errors/{id})
AUTH_ERRORS = {401: ErrorDef(401, 401, "Account authentication could not be verified"),
               403: ErrorDef(403, 403, "Account is unauthorized to perform this action")}

UNSUPPORTED_MEDIA_TYPE, JOB_NOT_FOUND, JOB_NOT_RUNNING, MALFORMED_JOB_ID, MALFORMED_JOB_TOKEN = 3, 5, 6, 7, 8
INVALID_ERROR_ID, BODY_DECODING, RESOURCE_NOT_FOUND, METHOD_NOT_ALLOWED, NOT_ACCEPTABLE = 9, 10, 11, 12, 13
ERROR_NOT_FOUND, INVALID_JOB_TYPE, TENANT_NOT_FOUND, MALFORMED_WORKER_ID, WORKER_NOT_FOUND = 14, 15, 16, 17, 18
CREATING_ARTIFACT, WRITING_ARTIFACT, FINISHING_JOB, REQUESTING_JOB = 1001, 1002, 1004, 1006
INSERTING_WORKER, UPDATING_WORKER = 1008, 1009
UNSPECIFIED, SERVICE_ERROR_NOT_FOUND = 10000, 10002


def find(error_id: int) -> ErrorDef:
    return BY_ID.get(error_id) or AUTH_ERRORS.get(error_id) or BY_ID[SERVICE_ERROR_NOT_FOUND]


def error_body(base: str, error_id: int, operation_id: str, details: str = "") -> dict[str, str]:
    e = find(error_id)
    body = {"href": f"{base}/errors/{e.id}", "id": str(e.id), "kind": "Error", "code": f"{CODE_PREFIX}{e.id}",
            "reason": e.reason, "message": e.reason, "operation_id": operation_id}
    if details:
        body["details"] = details
    return body


class WorkerError(APIError):
    """An answer with error ``error_id`` (its row's HTTP status), ``details`` optional."""

    def __init__(self, error_id: int, details: str = "") -> None:
        super().__init__(f"worker API error {error_id}: {details}")
        self.error_id = find(error_id).id
        self.details = details

    @property
    def status(self) -> int:
        return find(self.error_id).status

    def render(self, base: str) -> web.Response:
        operation_id = uuid.uuid4().hex
        level = log.error if self.status >= 500 else log.info
        level("worker API error", error_id=self.error_id, status=self.status, operation_id=operation_id,
              details=self.details)
        return web.Response(status=self.status, content_type="application/json",
                            text=json.dumps(error_body(base, self.error_id, operation_id, self.details)))


class EmptyAnswer(APIError):
    """A status without a body (upstream: PUT of an artifact when artifacts are disabled)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"status {status}")
        self.status = status


_AUTH = {AuthFailure.UNAUTHENTICATED: 401, AuthFailure.FORBIDDEN: 403, AuthFailure.NO_TENANT: TENANT_NOT_FOUND}
_HTTP = {404: RESOURCE_NOT_FOUND, 405: METHOD_NOT_ALLOWED, 406: NOT_ACCEPTABLE, 415: UNSUPPORTED_MEDIA_TYPE}


def worker_errors(base: str) -> Middleware:
    """The worker API's one error middleware: every failure in upstream's shape, HEAD without a body."""

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except EmptyAnswer as e:
            return web.Response(status=e.status)
        except WorkerError as e:
            err = e
        except AuthError as e:
            err = WorkerError(_AUTH[e.failure], e.reason)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            err = WorkerError(_HTTP.get(e.status, UNSPECIFIED), "" if e.status in _HTTP else e.reason)
        except ServiceError as e:
            log.info("service error", path=request.path, error=e.reason)
            err = WorkerError(UNSPECIFIED if e.kind.http_status >= 500 else BODY_DECODING, e.reason)
        except Exception:
            log.exception("worker API handler failed", path=request.path, method=request.method)
            err = WorkerError(UNSPECIFIED, INTERNAL_REASON)
        resp = err.render(base)
        if request.method == "HEAD":
            return web.Response(status=resp.status)
        return resp

    return errors
