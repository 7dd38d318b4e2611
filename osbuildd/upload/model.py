"""What a target is given: the compose's upload target, the built artifact, the credentials."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from .common import ProgressCounter
from .credentials import Credentials


class TargetName(StrEnum):
    """Upstream's target names (osbuild-composer ``internal/target``) that osbuildd uploads to."""

    AWS = "org.osbuild.aws"
    AWS_S3 = "org.osbuild.aws.s3"
    GCP = "org.osbuild.gcp"
    AZURE = "org.osbuild.azure"
    AZURE_IMAGE = "org.osbuild.azure.image"
    WORKER_SERVER = "org.osbuild.worker.server"


class Target(Protocol):
    """What a target reads of the compose's ``UploadTarget`` (``osbuildd.compose.model``)."""

    @property
    def name(self) -> str: ...

    @property
    def image_name(self) -> str: ...

    @property
    def options(self) -> dict[str, Any]: ...   # upstream's target options, a JSON object


@dataclass(frozen=True)
class Artifact:
    """The built image: where it is, and what the build job says about it (upstream's
    ``osbuild_artifact`` of its targets, and the compose's architecture)."""

    path: Path
    export_filename: str = ""   # upstream's osbuild_artifact.export_filename; "" = the file's own name
    arch: str = ""              # the compose's architecture; "" = this host's (what upstream's worker uses)

    @classmethod
    def of(cls, artifact: Artifact | Path) -> Artifact:
        return artifact if isinstance(artifact, Artifact) else cls(Path(artifact))

    @property
    def filename(self) -> str:
        return self.export_filename or self.path.name


TargetFn = Callable[[Target, Artifact, Credentials, ProgressCounter], Awaitable[dict[str, Any] | None]]
