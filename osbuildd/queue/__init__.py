"""The job store and scheduler, on SQLite or PostgreSQL (see docs/CONTRACTS.md "Job queue")."""

from osbuildd.queue import errors
from osbuildd.queue.db import Database, DatabaseUnavailable, MigrationError
from osbuildd.queue.errors import (
    JobInUse,
    JobNotFound,
    JobNotPending,
    JobNotRunning,
    JobStoreError,
    TokenNotFound,
)
from osbuildd.queue.jobs import LOCAL_OWNER, REQUEUE_TYPES, JobStore
from osbuildd.queue.model import Dequeued, GraphJob, Job, JobError, JobStatus, job_select_columns

__all__ = [
    "LOCAL_OWNER", "REQUEUE_TYPES", "Database", "DatabaseUnavailable", "Dequeued", "GraphJob", "Job", "JobError", "JobInUse", "JobNotFound",
    "JobNotPending", "JobNotRunning", "JobStatus", "JobStore", "JobStoreError", "MigrationError",
    "TokenNotFound", "errors", "job_select_columns",
]
