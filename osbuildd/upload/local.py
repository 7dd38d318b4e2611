"""org.osbuild.worker.server: the artifact stays where the build put it (the compose's results).

Upstream's worker PUTs the file back to composer; in osbuildd the build already runs beside the
compose service, so nothing is copied: the target checks the file and names it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from .common import ProgressCounter
from .credentials import Credentials
from .errors import INVALID_TARGET_CONFIG, UploadError

NAME = "org.osbuild.worker.server"


async def upload(target: Any, artifact: Path, creds: Credentials, counter: ProgressCounter) -> dict[str, Any]:
    try:
        size = (await asyncio.to_thread(artifact.stat)).st_size
    except OSError as e:
        raise UploadError(INVALID_TARGET_CONFIG, f"artifact {artifact.name}: {e.strerror}") from None
    counter.add(size)
    export_filename = getattr(target, "export_filename", "") or artifact.name
    # upstream's result field, plus where the file is on this host for the local download routes
    return {"artifact_relative_path": export_filename, "artifact_path": str(artifact)}
