"""org.osbuild.aws: S3 upload → EC2 snapshot import → AMI, shared with the given accounts.

Steps and error ids as upstream's worker (images ``awscloud``): the S3 object is deleted once the
snapshot exists, and kept when the import fails (to look at it).
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import time
from enum import StrEnum
from typing import Any

from .awsclient import client_error_message, create_client, multipart_upload, static_credentials
from .common import ProgressCounter, decompressed, log, option, retry
from .credentials import Credentials
from .errors import IMPORTING_IMAGE, INVALID_CONFIG, INVALID_TARGET_CONFIG, UPLOADING_IMAGE, UploadError
from .model import Artifact, Target, TargetName

NAME = TargetName.AWS


class BootMode(StrEnum):
    """EC2's RegisterImage BootMode values upstream's ``bootMode`` option may name."""

    LEGACY_BIOS = "legacy-bios"
    UEFI = "uefi"
    UEFI_PREFERRED = "uefi-preferred"


BOOT_MODES = frozenset(m.value for m in BootMode)   # plain strings: the error message lists them
_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def ec2_arch(arch: str | None) -> str:
    name = arch or platform.machine()
    if name not in _ARCH:
        raise UploadError(INVALID_TARGET_CONFIG, f"no EC2 architecture for {name}")
    return _ARCH[name]


async def upload(target: Target, artifact: Artifact, creds: Credentials, counter: ProgressCounter) -> dict[str, Any]:
    options = target.options or {}
    key = option(options, "key", default="")
    if not key:
        raise UploadError(INVALID_TARGET_CONFIG, "No AWS object key provided")
    region = option(options, "region", default=creds.aws.region)
    bucket = option(options, "bucket", default=creds.aws.bucket)
    if not bucket:
        raise UploadError(INVALID_TARGET_CONFIG, "No AWS bucket provided")
    boot_mode = option(options, "bootMode", "boot_mode")
    if boot_mode is not None and boot_mode not in BOOT_MODES:
        raise UploadError(INVALID_TARGET_CONFIG, f"bootMode: must be one of {sorted(BOOT_MODES)}")
    shares = list(option(options, "shareWithAccounts", "share_with_accounts", default=[]))
    image_name = target.image_name
    arch = ec2_arch(artifact.arch or None)
    try:
        keys = await static_credentials(options, creds.aws.credentials)
        s3_cm = create_client("s3", region=region, endpoint=creds.aws.s3_endpoint, creds=keys,
                              path_style=bool(creds.aws.s3_endpoint))
        ec2_cm = create_client("ec2", region=region, endpoint=creds.aws.ec2_endpoint, creds=keys)
    except UploadError:
        raise
    except Exception as e:
        raise UploadError(INVALID_CONFIG, f"creating the AWS clients failed: {client_error_message(e)}") from None
    try:
        path = await decompressed(artifact.path)
    except RuntimeError as e:
        raise UploadError(UPLOADING_IMAGE, str(e)) from None

    async with s3_cm as s3, ec2_cm as ec2:
        try:
            log.info("upload.aws.s3", bucket=bucket, key=key)
            await multipart_upload(s3, bucket, key, path, counter)
        except Exception as e:
            raise UploadError(UPLOADING_IMAGE, f"uploading to s3://{bucket}/{key} failed: "
                              f"{client_error_message(e)}") from None
        try:
            snapshot = await _import_snapshot(ec2, bucket, key, image_name, creds)
            await s3.delete_object(Bucket=bucket, Key=key)
            await ec2.create_tags(Resources=[snapshot], Tags=[{"Key": "Name", "Value": image_name}])
            params: dict[str, Any] = {
                "Name": image_name, "Architecture": arch, "VirtualizationType": "hvm",
                "RootDeviceName": "/dev/sda1", "EnaSupport": True,
                "BlockDeviceMappings": [{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snapshot}}],
            }
            if boot_mode:
                params["BootMode"] = boot_mode
            ami = (await ec2.register_image(**params)).get("ImageId")
            if not ami:
                raise UploadError(IMPORTING_IMAGE, "No ami returned")
            await ec2.create_tags(Resources=[ami], Tags=[{"Key": "Name", "Value": image_name}])
            if shares:
                await ec2.modify_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission",
                                                    OperationType="add", UserIds=shares)
                await ec2.modify_image_attribute(
                    ImageId=ami, LaunchPermission={"Add": [{"UserId": a} for a in shares]})
        except UploadError:
            raise
        except Exception as e:
            raise UploadError(IMPORTING_IMAGE, f"importing {image_name} failed: {client_error_message(e)}") from None
    log.info("upload.aws.done", ami=ami, region=region)
    return {"ami": ami, "region": region}


async def _import_snapshot(ec2: Any, bucket: str, key: str, image_name: str, creds: Credentials) -> str:
    task = await ec2.import_snapshot(
        Description=f"Image Builder AWS Import of {image_name}",
        DiskContainer={"UserBucket": {"S3Bucket": bucket, "S3Key": key}})
    task_id = task["ImportTaskId"]
    log.info("upload.aws.import", task=task_id)
    deadline = time.monotonic() + creds.aws.import_timeout
    try:
        while True:
            resp = await retry(lambda: ec2.describe_import_snapshot_tasks(ImportTaskIds=[task_id]),
                               what="ec2 describe_import_snapshot_tasks")
            detail = resp["ImportSnapshotTasks"][0].get("SnapshotTaskDetail", {})
            status = detail.get("Status", "")
            if status == "completed":
                if not detail.get("SnapshotId"):
                    raise UploadError(IMPORTING_IMAGE, "import task completed without a snapshot id")
                return str(detail["SnapshotId"])
            if status not in ("active", "pending", ""):
                raise UploadError(IMPORTING_IMAGE, f"Unable to import snapshot, task result: {status}, "
                                  f"msg: {detail.get('StatusMessage', '')}")
            if time.monotonic() > deadline:
                raise UploadError(IMPORTING_IMAGE, f"import snapshot task {task_id} timed out")
            await asyncio.sleep(creds.aws.import_poll_interval)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):   # don't leave an import running for a canceled compose
            await asyncio.shield(ec2.cancel_import_task(ImportTaskId=task_id))
        raise
