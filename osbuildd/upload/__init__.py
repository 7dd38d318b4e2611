"""Upload targets: a built artifact to AWS (AMI or S3 URL), GCP, Azure, or kept locally.

``upload()`` runs one target; ``upload_all()`` runs all targets of a compose at once, each with its
own progress and error, so one failing target never stops the others. Target names, options and
result options are upstream's (osbuild-composer ``internal/target``).
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import aws, aws_s3, azure, gcp, local
from .common import ProgressCounter, log
from .credentials import Credentials
from .errors import INVALID_TARGET, TARGET_ERROR, UPLOADING_IMAGE, JobError, UploadError
from .model import Artifact, Target, TargetFn, TargetName

__all__ = ["Artifact", "Credentials", "Target", "TargetName", "TargetResult", "UploadError", "TARGETS", "upload",
           "upload_all", "target_error"]

TARGETS: dict[str, TargetFn] = {
    aws.NAME: aws.upload,
    aws_s3.NAME: aws_s3.upload,
    gcp.NAME: gcp.upload,
    azure.NAME_BLOB: azure.upload_blob_target,
    azure.NAME_IMAGE: azure.upload_image_target,
    local.NAME: local.upload,
}


@dataclass
class TargetResult:
    name: str
    options: dict[str, Any] | None
    error: JobError | None

    def to_dict(self) -> dict[str, Any]:
        """Upstream's TargetResult JSON: ``{name, options?, target_error?}``."""
        out: dict[str, Any] = {"name": self.name}
        if self.options is not None:
            out["options"] = self.options
        if self.error is not None:
            out["target_error"] = _error_dict(self.error)
        return out


def _error_dict(error: JobError) -> dict[str, Any]:
    out = asdict(error) if hasattr(error, "__dataclass_fields__") else dict(vars(error))
    if out.get("details") is None:
        out.pop("details", None)
    return out


async def upload(target: Target, artifact: Artifact | Path, credentials: Credentials,
                 progress: Callable[[int], None] | None = None) -> dict[str, Any] | None:
    """Run one target; returns its result options (None for targets without any).

    ``artifact``: the built image, or only its path (then its file name is the export's, and its
    architecture this host's). ``progress(sent)`` gets the bytes of the artifact done so far.
    Raises ``UploadError``.
    """
    fn = TARGETS.get(target.name)
    if fn is None:
        raise UploadError(INVALID_TARGET, f"invalid target type: {target.name}")
    art = Artifact.of(artifact)
    if not await asyncio.to_thread(art.path.is_file):
        raise UploadError(UPLOADING_IMAGE, f"artifact not found: {art.path.name}")
    log.info("upload.start", target=target.name, image_name=target.image_name)
    result = await fn(target, art, credentials, ProgressCounter(progress))
    log.info("upload.done", target=target.name, image_name=target.image_name)
    return result


async def upload_all(targets: Sequence[Target], artifact: Artifact | Path, credentials: Credentials,
                     progress: Callable[[int, int], None] | None = None) -> list[TargetResult]:
    """All targets concurrently; results in target order. ``progress(index, sent)`` per target.

    A failing target yields a TargetResult with ``error`` set and does not cancel the others.
    Cancelling the call cancels every target (their multipart uploads are aborted).
    """

    async def one(index: int, target: Target) -> TargetResult:
        def report(sent: int) -> None:
            if progress is not None:
                progress(index, sent)

        try:
            return TargetResult(target.name, await upload(target, artifact, credentials, report), None)
        except UploadError as e:
            log.warning("upload.failed", target=target.name, error_id=e.id, reason=e.reason)
            return TargetResult(target.name, None, e.to_job_error())
        except Exception as e:  # a bug or an unforeseen library error: still only this target fails
            # no traceback with locals: the frames hold the target options (keys, secrets)
            where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
            log.error("upload.crashed", target=target.name, error=f"{type(e).__name__}: {e}",
                      where=f"{where.filename}:{where.lineno}" if where else "")
            return TargetResult(target.name, None, JobError(UPLOADING_IMAGE, f"{type(e).__name__}: {e}"))

    return list(await asyncio.gather(*(one(i, t) for i, t in enumerate(targets))))


def target_error(results: Sequence[TargetResult]) -> JobError | None:
    """The job error upstream sets when any target failed (28, details = the target errors)."""
    errors = [_error_dict(r.error) for r in results if r.error is not None]
    if not errors:
        return None
    return JobError(TARGET_ERROR, "at least one target failed", errors)
