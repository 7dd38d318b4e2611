"""Compose requests and composes: what the APIs hand the compose service and get back."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osbuildd.depsolve import PackageSpec
from osbuildd.distro import Repository
from osbuildd.errors import ErrorKind, ServiceError

if TYPE_CHECKING:
    from osbuildd.blueprint import Blueprint


class ComposeState(StrEnum):
    """A compose's state, from its build job (canceled is its own state here; Weldr shows it FAILED)."""

    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELED = "canceled"


class ComposeRequestError(ServiceError, ValueError):
    """A request the service refuses; ``field`` names what is wrong (each API maps it to its 4xx),
    ``topic`` the part of the request it is about: "distro" | "arch" | "image_type" | "blueprint" |
    "size" | "repositories" | "targets". ``str()``: "<field>: <message>"."""

    kind = ErrorKind.INVALID
    error_id = "ComposeError"

    def __init__(self, field: str, message: str, topic: str = "") -> None:
        super().__init__(f"{field}: {message}", field=field)
        self.message = message
        self.topic = topic or field.split(".")[0].split("[")[0]


class ComposeNotFound(ServiceError, LookupError):
    kind = ErrorKind.NOT_FOUND
    error_id = "UnknownUUID"

    def __init__(self, compose_id: str) -> None:
        super().__init__(f"compose {compose_id} not found")
        self.compose_id = compose_id


class ComposeStateError(ServiceError, RuntimeError):
    """cancel/delete of a compose in a state that does not allow it (e.g. delete while running):
    ``compose_id``, its ``state`` and the ``operation`` ("cancel" | "delete"), for an API to word it."""

    kind = ErrorKind.CONFLICT
    error_id = "BuildInWrongState"

    def __init__(self, compose_id: str, state: ComposeState, operation: str, message: str) -> None:
        super().__init__(message)
        self.compose_id = compose_id
        self.state = state
        self.operation = operation


@dataclass
class UploadTarget:
    name: str                     # upstream target name, e.g. "org.osbuild.aws.s3"
    image_name: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "image_name": self.image_name, "options": self.options}


# Targets that mean "keep the artifact in the compose's results" (no upload step).
LOCAL_TARGETS = frozenset({"org.osbuild.worker.server", "org.osbuild.local"})


@dataclass
class ComposeRequest:
    distro: str
    arch: str
    image_type: str
    blueprint: Blueprint
    size: int | None = None
    repositories: list[Repository] | None = None     # None = the distro's defaults
    # added to the image's package sets only, after ``repositories`` or the defaults (upstream's
    # Cloud API payload_repositories: not for the build root)
    payload_repositories: list[Repository] | None = None
    targets: list[UploadTarget] = field(default_factory=list)
    channel: str = ""
    origin: str = "weldr"
    seed: int | None = None
    api_request: dict[str, Any] | None = None   # the Cloud API's request as sent (metadata echoes it)


@dataclass
class Compose:
    id: str
    request: dict[str, Any]
    blueprint_name: str
    blueprint_version: str
    image_type: str
    distro: str
    arch: str
    state: ComposeState
    created: float
    started: float | None
    finished: float | None
    progress: dict[str, Any] | None
    error: dict[str, Any] | None  # {id, reason, details} of the build job (dependency chain inside)
    image_path: Path | None
    image_filename: str
    manifest: dict[str, Any] | None
    packages: list[PackageSpec]
    upload_statuses: list[dict[str, Any]]
    log_path: Path
    size: int
    origin: str = "weldr"
    channel: str = ""
    job_status: str = ""          # the build job's raw queue status
    result: dict[str, Any] | None = None  # the build job's result (upstream OSBuildJobResult shape)

    @property
    def timings(self) -> dict[str, Any] | None:
        """The build's per-stage timings (``osbuildd.runner.timings``), once its build has run."""
        t = (self.result or {}).get("timings")
        return t if isinstance(t, dict) else None

    @property
    def weldr_status(self) -> str:
        """Upstream Weldr's queue_status: WAITING / RUNNING / FINISHED / FAILED (canceled = FAILED)."""
        return {"waiting": "WAITING", "running": "RUNNING", "finished": "FINISHED"}.get(self.state, "FAILED")

    @property
    def logs_dir(self) -> Path:
        return self.log_path.parent

    def stage_log(self, stage_id: str) -> Path:
        return self.logs_dir / "stages" / f"{stage_id}.log"
