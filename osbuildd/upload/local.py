"""org.osbuild.worker.server: the artifact stays where the build put it (the compose's results).

Upstream's worker PUTs the file back to composer; in osbuildd the build already runs beside the
compose service, so nothing is copied: the target checks the file and names it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .common import ProgressCounter
from .credentials import Credentials
from .errors import INVALID_TARGET_CONFIG, UploadError
from .model import Artifact, Target, TargetName

NAME = TargetName.WORKER_SERVER


async def upload(target: Target, artifact: Artifact, creds: Credentials, counter: ProgressCounter) -> dict[str, Any]:
    try:
        size = (await asyncio.to_thread(artifact.path.stat)).st_size
    except OSError as e:
        raise UploadError(INVALID_TARGET_CONFIG, f"artifact {artifact.path.name}: {e.strerror}") from None
    counter.add(size)
    # upstream's result field (the export's file name, as upstream's OsbuildArtifact has it), plus
    # where the file is on this host for the local download routes
    return {"artifact_relative_path": artifact.filename, "artifact_path": str(artifact.path)}
