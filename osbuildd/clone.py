"""Cloning a finished AMI compose: copy its image to another region and/or share it with accounts.

As upstream's ``PostCloneCompose``: from the build job's ``org.osbuild.aws`` result ({ami, region}),
an ``aws-ec2-copy`` job when the region differs (a finished copy of the same compose into that
region is reused), then an ``aws-ec2-share`` job depending on it when there are accounts (the aws
target's own ``shareWithAccounts`` plus the request's). The last job's id is the clone's id.

The job handlers (``run``) take the daemon's AWS settings, as upstream's worker does: the compose's
own target credentials were dropped with the build job's sealed args when it finished.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from osbuildd.config import Config
from osbuildd.errors import ErrorKind, ServiceError
from osbuildd.log import get_logger
from osbuildd.queue import Job, JobError, JobNotFound, JobStatus, JobStore, errors
from osbuildd.upload import Credentials, UploadError, aws_ec2

AWS_EC2_COPY = "aws-ec2-copy"
AWS_EC2_SHARE = "aws-ec2-share"
JOB_TYPES = (AWS_EC2_COPY, AWS_EC2_SHARE)
AWS_TARGET = "org.osbuild.aws"
log = get_logger("osbuildd.clone")
PARSING_JOB_ARGS = 29   # upstream clienterrors.ErrorParsingJobArgs (osbuildd.queue.errors stops at 28)


class CloneRefused(ServiceError):
    """The compose cannot be cloned. ``why``: "state" (not finished successfully, upstream 31),
    "unsupported" (no single AWS image to clone, upstream 32)."""

    kind = ErrorKind.INVALID
    error_id = "CloneRefused"

    def __init__(self, why: str, message: str) -> None:
        super().__init__(message)
        self.why = why


@dataclass(frozen=True)
class CloneStatus:
    """A clone job's state in upstream's UploadStatus words, with its result."""

    job: Job
    status: str          # pending | running | success | failure
    ami: str
    region: str
    error: dict[str, Any] | None


def _aws_result(build: Job) -> dict[str, Any]:
    """The {ami, region} of the build's one AWS upload, or CloneRefused."""
    result = build.result or {}
    if build.status != JobStatus.FINISHED or build.error is not None or not result.get("success"):
        raise CloneRefused("state", f"compose {build.id} is {_state_word(build)}: only a compose that "
                                    "finished successfully can be cloned")
    aws = [r for r in result.get("target_results") or [] if r.get("name") == AWS_TARGET]
    if not aws:
        raise CloneRefused("unsupported", f"compose {build.id} has no AWS (org.osbuild.aws) image to clone")
    if len(aws) > 1:
        raise CloneRefused("unsupported", f"compose {build.id} has {len(aws)} AWS images; a clone needs exactly one")
    options = aws[0].get("options") or {}
    if aws[0].get("target_error") or not options.get("ami") or not options.get("region"):
        raise CloneRefused("unsupported", f"compose {build.id} has no uploaded AMI to clone")
    return {"ami": str(options["ami"]), "region": str(options["region"])}


def _state_word(build: Job) -> str:
    if build.status == JobStatus.FINISHED:
        return "failed"
    return {JobStatus.PENDING: "waiting", JobStatus.RUNNING: "running"}.get(build.status, str(build.status))


def _target_shares(build: Job) -> list[str]:
    for t in (build.args or {}).get("targets") or []:
        if t.get("name") == AWS_TARGET:
            opts = t.get("options") or {}
            return [str(a) for a in opts.get("shareWithAccounts") or opts.get("share_with_accounts") or []]
    return []


async def enqueue(jobs: JobStore, build: Job, region: str, share_with: list[str], channel: str) -> str:
    """Enqueue the clone of the compose whose build job is ``build`` in ``channel``; the id of the
    job to wait on (the build's own id when there is nothing to do, as upstream). Raises CloneRefused."""
    source = _aws_result(build)
    final = build.id
    share_ami, share_region = source["ami"], region
    if region != source["region"]:
        share_ami = share_region = ""   # the share job reads the copy's result (its dynamic args)
        final = await _finished_copy(jobs, build.id, region, channel) or await jobs.enqueue(
            AWS_EC2_COPY, {"ami": source["ami"], "source_region": source["region"], "target_region": region,
                           "target_name": f"composer-api-{uuid.uuid4()}"}, [final], channel)
    shares = list(dict.fromkeys(_target_shares(build) + list(share_with)))
    if shares:
        final = await jobs.enqueue(AWS_EC2_SHARE, {"ami": share_ami, "region": share_region,
                                                   "share_with_accounts": shares}, [final], channel)
    return final


async def _finished_copy(jobs: JobStore, build_id: str, region: str, channel: str) -> str | None:
    """A successful copy of this compose into ``region`` made before, in the same channel."""
    for dep_id in await jobs.dependents(build_id):
        try:
            dep = await jobs.get(dep_id)
        except JobNotFound:
            continue
        if dep.type == AWS_EC2_COPY and dep.channel == channel and dep.status == JobStatus.FINISHED \
                and dep.error is None and (dep.result or {}).get("region") == region:
            return dep.id
    return None


def status(job: Job) -> CloneStatus:
    """Upstream's uploadStatusFromJobStatus over a clone job."""
    result = job.result or {}
    error = job.error.to_dict() if job.error else None
    if error is not None or job.status == JobStatus.CANCELED:
        word = "failure"
    elif job.status == JobStatus.PENDING:
        word = "pending"
    elif job.status == JobStatus.RUNNING:
        word = "running"
    else:
        word = "success"
    return CloneStatus(job, word, str(result.get("ami") or ""), str(result.get("region") or ""), error)


# -- the job handlers ---------------------------------------------------------------------------

async def run(config: Config, job: Job, dynamic_args: list[dict[str, Any]]) -> tuple[dict[str, Any], JobError | None]:
    """Run an ``aws-ec2-copy`` or ``aws-ec2-share`` job: (result, error) in upstream's JSON
    (``{ami, region}``, ``job_error`` on failure). Never raises but for cancellation."""
    try:
        creds = await asyncio.to_thread(Credentials.load, config)
        if job.type == AWS_EC2_COPY:
            return await _copy(creds, job.args), None
        return await _share(creds, job.args, dynamic_args), None
    except UploadError as e:
        err = e.to_job_error()
    except (KeyError, TypeError, ValueError) as e:
        err = JobError(PARSING_JOB_ARGS, f"Error parsing arguments: {type(e).__name__}: {e}")
    except Exception as e:   # e.g. no connection to EC2 at all: still the job's failure, with its cause
        log.exception("clone job failed", job_id=job.id, type=job.type)
        err = JobError(errors.SHARING_TARGET, f"{job.type} failed: {type(e).__name__}: {e}")
    return {"ami": "", "region": "", "job_error": err.to_dict()}, err


async def _copy(creds: Credentials, args: dict[str, Any]) -> dict[str, Any]:
    ami = await aws_ec2.copy_image(creds, name=str(args["target_name"]), ami=str(args["ami"]),
                                   source_region=str(args["source_region"]), target_region=str(args["target_region"]))
    return {"ami": ami, "region": str(args["target_region"])}


async def _share(creds: Credentials, args: dict[str, Any], dynamic_args: list[dict[str, Any]]) -> dict[str, Any]:
    ami, region = str(args.get("ami") or ""), str(args.get("region") or "")
    if not ami or not region:
        if len(dynamic_args) != 1:
            raise UploadError(errors.NO_DYNAMIC_ARGS, "An ec2 share job should have args or depend on an ec2 copy job")
        copied = dynamic_args[0]
        if copied.get("job_error"):   # (the queue already fails a dependent of a failed job)
            raise UploadError(errors.JOB_DEPENDENCY, "AWSEC2CopyJob dependency failed", copied["job_error"])
        ami, region = str(copied.get("ami") or ""), str(copied.get("region") or "")
        if not ami or not region:
            raise UploadError(errors.PARSING_DYNAMIC_ARGS, "Error parsing dynamic args as ec2 copy job")
    accounts = [str(a) for a in args["share_with_accounts"]]
    await aws_ec2.share_image(creds, ami=ami, region=region, accounts=accounts)
    return {"ami": ami, "region": region}
