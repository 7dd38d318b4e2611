"""Job error ids and the job store's exceptions.

The ids are upstream's worker client errors (osbuild-composer ``internal/worker/clienterrors``) so
results stay compatible with composer-cli, the Cloud API and remote workers.
"""

from __future__ import annotations

from osbuildd.errors import ErrorKind, ServiceError

NO_DYNAMIC_ARGS = 1
INVALID_TARGET_CONFIG = 2
SHARING_TARGET = 3
INVALID_TARGET = 4
DEPSOLVE_DEPENDENCY = 5
READING_JOB_STATUS = 6
PARSING_DYNAMIC_ARGS = 7
MANIFEST_GENERATION = 8
MANIFEST_DEPENDENCY = 9
BUILD_JOB = 10
UPLOADING_IMAGE = 11
IMPORTING_IMAGE = 12
KOJI_FAILED_DEPENDENCY = 13
KOJI_BUILD = 14
KOJI_INIT = 15
KOJI_FINALIZE = 16
INVALID_CONFIG = 17
OLD_RESULT_COMPATIBLE = 18
EMPTY_MANIFEST = 19
DNF_DEPSOLVE_ERROR = 20
DNF_MARKING_ERRORS = 21
DNF_OTHER_ERROR = 22
RPMMD_ERROR = 23
EMPTY_PACKAGE_SPECS = 24
DNF_REPO_ERROR = 25
JOB_DEPENDENCY = 26
JOB_MISSING_HEARTBEAT = 27
TARGET_ERROR = 28

# Upstream's generic "a dependency of this job failed" is 26; 5/9/13 are the depsolve/manifest/koji
# flavours of it. The queue uses the generic one when it fails dependents of a failed job.
DEPENDENCY_FAILED = JOB_DEPENDENCY

# Ids that mean "a dependency failed" (upstream IsDependencyError).
DEPENDENCY_ERRORS = frozenset({DEPSOLVE_DEPENDENCY, MANIFEST_DEPENDENCY, KOJI_FAILED_DEPENDENCY, JOB_DEPENDENCY})

# Ids upstream reports as the user's fault (4xx) rather than an internal one (5xx).
USER_INPUT_ERRORS = frozenset({
    DNF_DEPSOLVE_ERROR, DNF_MARKING_ERRORS, NO_DYNAMIC_ARGS, INVALID_TARGET_CONFIG, SHARING_TARGET,
    INVALID_TARGET, DEPSOLVE_DEPENDENCY, MANIFEST_DEPENDENCY, JOB_DEPENDENCY, EMPTY_PACKAGE_SPECS,
    EMPTY_MANIFEST,
})

# Reasons the daemon itself writes.
REASON_INTERRUPTED = "interrupted"                # the daemon died while the job ran
REASON_SHUTTING_DOWN = "daemon shutting down"     # SIGTERM while the job ran
REASON_MISSING_HEARTBEAT = "missing heartbeat"
REASON_DEPENDENCY_FAILED = "dependency failed"


def status_code(error_id: int | None) -> str:
    """Upstream's coarse class of a job error: "2xx" none, "4xx" user input, "5xx" internal."""
    if error_id is None:
        return "2xx"
    return "4xx" if error_id in USER_INPUT_ERRORS else "5xx"


class JobStoreError(ServiceError):
    """Base of the job store's exceptions: a job in the wrong state for the operation, by default."""

    kind = ErrorKind.CONFLICT
    error_id = "JobStoreError"


class JobNotFound(JobStoreError, KeyError):
    kind = ErrorKind.NOT_FOUND
    error_id = "JobNotFound"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class TokenNotFound(JobStoreError, KeyError):
    """No job was handed out with this token (or it was requeued since)."""

    kind = ErrorKind.NOT_FOUND
    error_id = "TokenNotFound"

    def __init__(self, token: str = "") -> None:
        super().__init__("token not found")
        self.token = token


class JobNotRunning(JobStoreError):
    """finish()/cancel() on a job that is not running (or not pending, for cancel)."""

    error_id = "JobNotRunning"


class JobNotPending(JobStoreError):
    """dequeue_by_id() on a job that is not pending any more."""

    error_id = "JobNotPending"


class JobInUse(JobStoreError):
    """delete() of a job other jobs still depend on, or that is running."""

    error_id = "JobInUse"
