"""The Cloud API's error table (upstream ``cloudapi/v2/errors.go``) and the error its pure logic raises.

An error answer is ``{"kind":"Error","id","href","code","reason","operation_id","details"}`` with the
HTTP status of the id's row. The request translation, status rendering, ... of this package raise
:class:`CloudRequestError` (an id of TABLE and details); the Cloud API's error middleware answers it
over HTTP, the in-process composer (``osbuildd.imagebuilder.local``) hands it on as a ComposerError.
No aiohttp here: the code that raises it runs outside any HTTP request.
"""

from __future__ import annotations

from osbuildd.errors import ErrorDef

BASE = "/api/image-builder-composer/v2"
ERROR_HREF = f"{BASE}/errors"
CODE_PREFIX = "IMAGE-BUILDER-COMPOSER-"


# In upstream's order: GET /errors pages through this list as it stands.
TABLE: tuple[ErrorDef, ...] = (
    ErrorDef(401, 401, "Account authentication could not be verified"),
    ErrorDef(2, 403, "Account is unauthorized to perform this action"),
    ErrorDef(3, 415, "Only 'application/json' content is supported"),
    ErrorDef(4, 400, "Unsupported distribution"),
    ErrorDef(5, 400, "Unsupported architecture"),
    ErrorDef(6, 400, "Unsupported image type"),
    ErrorDef(7, 400, "Must specify baseurl, mirrorlist, or metalink"),
    ErrorDef(8, 400, "Failed to depsolve packages"),
    ErrorDef(9, 400, "Invalid OSTree ref"),
    ErrorDef(10, 400, "Error resolving OSTree repo"),
    ErrorDef(11, 400, "Failed to get manifest"),
    ErrorDef(14, 400, "Invalid format for compose id"),
    ErrorDef(15, 404, "Compose with given id not found"),
    ErrorDef(16, 400, "Invalid format for error id, it should be an integer as a string"),
    ErrorDef(17, 404, "Error with given id not found"),
    ErrorDef(18, 400, "Invalid format for page param, it should be an integer as a string"),
    ErrorDef(19, 400, "Invalid format for size param, it should be an integer as a string"),
    ErrorDef(20, 400, "Malformed json, unable to decode body"),
    ErrorDef(21, 404, "Requested resource doesn't exist"),
    ErrorDef(22, 405, "Requested method isn't supported for resource"),
    ErrorDef(23, 406, "Only 'application/json' content is supported"),
    ErrorDef(24, 400, "BaseURL must be specified for payload repositories"),
    ErrorDef(26, 404, "Job with given id has an invalid type"),
    ErrorDef(25, 400, "Compose request has unsupported number of image builds"),
    ErrorDef(27, 400, "Invalid OSTree parameters or parameter combination"),
    ErrorDef(28, 400, "Tenant not found in JWT claims"),
    ErrorDef(1022, 400, "Artifact not found"),
    ErrorDef(29, 400, "Invalid repository, when check_gpg is set, gpgkey must be specified"),
    ErrorDef(30, 400, "Request could not be validated"),
    ErrorDef(31, 400, "Compose is running or has failed"),
    ErrorDef(32, 400, "This compose doesn't support the creation of multiple images"),
    ErrorDef(33, 400, "Invalid format for image id"),
    ErrorDef(34, 400, "Image with given id not found"),
    ErrorDef(35, 400, "Invalid image customization"),
    ErrorDef(36, 400, "local_save is not enabled"),
    ErrorDef(37, 400, "Requested partitioning mode is invalid"),
    ErrorDef(38, 400, "Invalid upload target for image type"),
    ErrorDef(39, 400, "Invalid request, include blueprint or customizations, not both"),
    ErrorDef(40, 400, "Invalid request, Blueprint and Cloud API request Distribution must match"),
    ErrorDef(41, 400, "Invalid request, Blueprint and Cloud API request Architecture must match"),
    ErrorDef(42, 400, "Invalid request, see details for more information"),
    ErrorDef(43, 400, "Invalid request, either bootc or distribution needs to be specified, but not both"),
    ErrorDef(44, 400, "Invalid request, either bootc or distribution needs to be specified"),
    ErrorDef(45, 400, "Invalid request, distribution is required for this compose request"),
    ErrorDef(46, 400, "iso_payload_reference must not be set for non-ISO bootc image types"),
    ErrorDef(47, 400, "bootable-container-iso image type requires a bootc compose request (use 'bootc' instead of 'distribution')"),
    ErrorDef(1000, 500, "Failed to initialize blueprint"),
    ErrorDef(1001, 500, "Failed to generate manifest seed"),
    ErrorDef(1002, 500, "Failed to depsolve packages"),
    ErrorDef(1003, 500, "Failed to marshal struct"),
    ErrorDef(1004, 500, "Failed to unmarshal struct"),
    ErrorDef(1005, 500, "Failed to enqueue job"),
    ErrorDef(1006, 500, "Compose has more than one upload target"),
    ErrorDef(1007, 500, "Compose has unknown upload target"),
    ErrorDef(1008, 500, "Unable to load openapi spec"),
    ErrorDef(1009, 500, "Unable to parse manifest version"),
    ErrorDef(1010, 500, "Unknown manifest version"),
    ErrorDef(1011, 500, "Unable to convert ostree commit stage metadata"),
    ErrorDef(1012, 500, "OSBuildJobResult does not have expected fields set"),
    ErrorDef(1013, 500, "Unable to get depsolve job status"),
    ErrorDef(1014, 500, "Depsolve job was cancelled"),
    ErrorDef(1015, 500, "Compose has unexpected number of image builds"),
    ErrorDef(1016, 500, "Error checking status of build job dependencies"),
    ErrorDef(1017, 500, "Unable to get osbuild job status"),
    ErrorDef(1018, 500, "Unable to get ec2 job status"),
    ErrorDef(1019, 500, "Unable to get job type of existing job"),
    ErrorDef(1020, 500, "Unable to retrieve tenant from request context"),
    ErrorDef(1021, 500, "Unable to get list of composes"),
    ErrorDef(1023, 500, "Unable to delete job"),
    ErrorDef(1024, 500, "Unable to delete job artifacts"),
    ErrorDef(1025, 500, "Unable to get list of image types"),
    ErrorDef(10000, 500, "Unspecified internal error "),
    ErrorDef(10001, 500, "Error is not an instance of HTTPError"),
    ErrorDef(10002, 500, "Error does not exist"),
    ErrorDef(10003, 500, "OperationID is empty or is not a string"),
)
BY_ID = {e.id: e for e in TABLE}

# ids used by name in handlers
UNAUTHENTICATED, UNAUTHORIZED, UNSUPPORTED_MEDIA_TYPE = 401, 2, 3
UNSUPPORTED_DISTRIBUTION, UNSUPPORTED_ARCHITECTURE, UNSUPPORTED_IMAGE_TYPE = 4, 5, 6
INVALID_COMPOSE_ID, COMPOSE_NOT_FOUND, INVALID_ERROR_ID, ERROR_NOT_FOUND = 14, 15, 16, 17
BODY_DECODING, RESOURCE_NOT_FOUND, METHOD_NOT_ALLOWED, NOT_ACCEPTABLE = 20, 21, 22, 23
TENANT_NOT_FOUND, VALIDATION = 28, 30
UNSPECIFIED, SERVICE_ERROR_NOT_FOUND = 10000, 10002


def error_body(error_id: int, operation_id: str, details: str = "") -> dict[str, str]:
    e = BY_ID.get(error_id) or BY_ID[SERVICE_ERROR_NOT_FOUND]
    return {"href": f"{ERROR_HREF}/{e.id}", "id": str(e.id), "kind": "Error", "code": f"{CODE_PREFIX}{e.id}",
            "reason": e.reason, "operation_id": operation_id, "details": details}


class CloudRequestError(Exception):
    """The Cloud API's answer ``error_id`` (a TABLE id, else 10002) with ``details``."""

    def __init__(self, error_id: int, details: str = "") -> None:
        super().__init__(f"cloud error {error_id}: {details}")
        self.error_id = error_id if error_id in BY_ID else SERVICE_ERROR_NOT_FOUND
        self.details = details

    @property
    def status(self) -> int:
        return BY_ID[self.error_id].status

    def body(self, operation_id: str) -> dict[str, str]:
        return error_body(self.error_id, operation_id, self.details)
