"""EC2 image copy and share: what the ``aws-ec2-copy`` / ``aws-ec2-share`` jobs do (upstream's
worker ``jobimpl-awsec2.go`` over images' ``awscloud.CopyImage`` / ``ShareImage``).

Copy: ``CopyImage`` in the target region, wait until the copy is available, tag it and its snapshots
with the copy's name. Share: every snapshot of the image gets ``createVolumePermission`` for the
accounts, then the image ``launchPermission``. Failures are UploadErrors with upstream's ids and
reasons (3 "sharing target"; 17 "invalid config" when no client can be made); the provider's own
code and message go into ``details``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .awsclient import client_error_message, create_client, static_credentials
from .common import log, retry
from .credentials import Credentials
from .errors import INVALID_CONFIG, SHARING_TARGET, UploadError


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


async def ec2_client(creds: Credentials, region: str) -> Any:
    """An EC2 client context manager for ``region`` with the daemon's AWS settings ([aws] config,
    the worker config, else the SDK's chain); raises UploadError 17 (upstream: "Invalid worker config")."""
    try:
        keys = await static_credentials({}, creds.aws.credentials)
        return create_client("ec2", region=region, endpoint=creds.aws.ec2_endpoint, creds=keys)
    except UploadError:
        raise
    except Exception as e:
        raise UploadError(INVALID_CONFIG, "Invalid worker config",
                          {"error": client_error_message(e)}) from None


async def copy_image(creds: Credentials, *, name: str, ami: str, source_region: str, target_region: str) -> str:
    """Copy ``ami`` of ``source_region`` into ``target_region`` as ``name``; the copy's AMI id once
    it is available (its snapshots tagged too)."""
    async with await ec2_client(creds, target_region) as ec2:
        try:
            copied = await ec2.copy_image(Name=name, SourceImageId=ami, SourceRegion=source_region)
        except Exception as e:
            raise UploadError(SHARING_TARGET, _copy_reason(_code(e), ami, source_region),
                              {"error": client_error_message(e)}) from None
        new_ami = str(copied["ImageId"])
        log.info("upload.aws.copy", ami=ami, source_region=source_region, region=target_region, copy=new_ami)
        try:
            image = await _wait_available(ec2, new_ami, creds)
            snapshots = [b["Ebs"]["SnapshotId"] for b in image.get("BlockDeviceMappings") or []
                         if (b.get("Ebs") or {}).get("SnapshotId")]
            await ec2.create_tags(Resources=[new_ami, *snapshots], Tags=[{"Key": "Name", "Value": name}])
        except UploadError:
            raise
        except Exception as e:
            raise UploadError(SHARING_TARGET, f"Error copying ami {ami}",
                              {"ami": new_ami, "error": client_error_message(e)}) from None
    return new_ami


def _copy_reason(code: str, ami: str, source_region: str) -> str:
    if code == "InvalidRegion":
        return f"Invalid source region '{source_region}'"
    if code == "InvalidAMIID.Malformed":
        return f"Malformed source ami id '{ami}'"
    if code in ("InvalidAMIID.NotFound", "InvalidRequest"):   # CopyImage says InvalidRequest for both
        return f"Source ami '{ami}' not found"
    return f"Error copying ami {ami}"


async def _wait_available(ec2: Any, ami: str, creds: Credentials) -> dict[str, Any]:
    """The image once it is ``available``; a ``failed`` (or vanished) one is an error. Polled as
    upstream's ImageAvailable waiter, bounded like the snapshot import ([aws] import_timeout)."""
    deadline = time.monotonic() + creds.aws.import_timeout
    while True:
        resp = await retry(lambda: ec2.describe_images(ImageIds=[ami]), what="ec2 describe_images")
        images = resp.get("Images") or []
        state = images[0].get("State", "") if images else ""
        if state == "available":
            return dict(images[0])
        if not images or state in ("failed", "invalid", "deregistered", "error"):
            reason = (images[0].get("StateReason") or {}) if images else {}
            raise UploadError(SHARING_TARGET, f"Image not available after waiting: {state or 'gone'}",
                              {"ami": ami, "code": reason.get("Code", ""), "message": reason.get("Message", "")})
        if time.monotonic() > deadline:
            raise UploadError(SHARING_TARGET, f"Image {ami} not available after {creds.aws.import_timeout:g}s",
                              {"ami": ami, "state": state})
        await asyncio.sleep(creds.aws.import_poll_interval)


async def share_image(creds: Credentials, *, ami: str, region: str, accounts: list[str]) -> None:
    """Let ``accounts`` launch ``ami`` (of ``region``) and create volumes from its snapshots."""
    async with await ec2_client(creds, region) as ec2:
        try:
            found = (await ec2.describe_images(ImageIds=[ami])).get("Images") or []
            if not found:
                raise UploadError(SHARING_TARGET, f"Ami '{ami}' not found in region '{region}'")
            for bdm in found[0].get("BlockDeviceMappings") or []:
                snapshot = (bdm.get("Ebs") or {}).get("SnapshotId")
                if snapshot:
                    await ec2.modify_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission",
                                                        OperationType="add", UserIds=accounts)
            await ec2.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"UserId": a} for a in accounts]})
        except UploadError:
            raise
        except Exception as e:
            raise UploadError(SHARING_TARGET, _share_reason(_code(e), ami, region, accounts),
                              {"error": client_error_message(e)}) from None
    log.info("upload.aws.shared", ami=ami, region=region, accounts=len(accounts))


def _share_reason(code: str, ami: str, region: str, accounts: list[str]) -> str:
    if code == "InvalidAMIID.Malformed":
        return f"Malformed ami id '{ami}'"
    if code == "InvalidAMIID.NotFound":
        return f"Ami '{ami}' not found in region '{region}'"
    if code == "InvalidAMIAttributeItemValue":
        return f"Invalid user id to share ami with: {accounts}"
    return f"Error sharing image with target {accounts}"
