"""org.osbuild.aws against moto (S3 + EC2) with the ImportSnapshot shim in front of moto's EC2."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from osbuildd.compose.model import UploadTarget
from osbuildd.upload import Credentials, UploadError, upload
from osbuildd.upload.awsclient import create_client

from .conftest import AWS_KEYS
from .fake_ec2 import EC2Shim

SHARE = "123456789012"


def ami_target(bucket: str, **extra: object) -> UploadTarget:
    return UploadTarget("org.osbuild.aws", "osbuildd-ami-test",
                        {"region": "us-east-1", "bucket": bucket, "key": "image-key.raw", **extra})


async def test_image_becomes_a_shared_ami_and_the_object_is_removed(
        credentials: Credentials, s3_bucket: str, disk_image: dict[str, Path], moto_url: str,
        ec2_shim: tuple[EC2Shim, str]) -> None:
    shim, _ = ec2_shim
    sent: list[int] = []
    result = await upload(ami_target(s3_bucket, shareWithAccounts=[SHARE], bootMode="uefi-preferred"),
                          disk_image["raw"], credentials, sent.append)
    assert set(result) == {"ami", "region"}
    assert result["region"] == "us-east-1" and result["ami"].startswith("ami-")
    assert sent[-1] == disk_image["raw"].stat().st_size
    # the import saw the uploaded object, and was polled until completed
    [task] = shim.tasks.values()
    assert (task.bucket, task.key, task.object_existed) == (s3_bucket, "image-key.raw", True)
    assert task.polls == shim.active_polls + 1
    async with create_client("ec2", region="us-east-1", endpoint=moto_url, creds=AWS_KEYS) as ec2, \
            create_client("s3", region="us-east-1", endpoint=moto_url, creds=AWS_KEYS, path_style=True) as s3:
        [image] = (await ec2.describe_images(ImageIds=[result["ami"]]))["Images"]
        assert image["Name"] == "osbuildd-ami-test"
        assert image["State"] == "available"
        assert image["RootDeviceName"] == "/dev/sda1"
        assert {"Key": "Name", "Value": "osbuildd-ami-test"} in image.get("Tags", [])
        perms = await ec2.describe_image_attribute(ImageId=result["ami"], Attribute="launchPermission")
        assert {"UserId": SHARE} in perms["LaunchPermissions"]
        snap = await ec2.describe_snapshots(SnapshotIds=[task.snapshot])
        assert {"Key": "Name", "Value": "osbuildd-ami-test"} in snap["Snapshots"][0]["Tags"]
        vol_perms = await ec2.describe_snapshot_attribute(SnapshotId=task.snapshot,
                                                          Attribute="createVolumePermission")
        assert {"UserId": SHARE} in vol_perms["CreateVolumePermissions"]
        with pytest.raises(ClientError) as err:
            await s3.head_object(Bucket=s3_bucket, Key="image-key.raw")
        assert err.value.response["Error"]["Code"] in ("404", "NoSuchKey")


async def test_failed_import_is_error_12_and_keeps_the_object(
        credentials: Credentials, s3_bucket: str, disk_image: dict[str, Path], moto_url: str,
        ec2_shim: tuple[EC2Shim, str]) -> None:
    ec2_shim[0].fail_imports = True
    with pytest.raises(UploadError) as err:
        await upload(ami_target(s3_bucket), disk_image["raw"], credentials, None)
    assert err.value.id == 12
    assert err.value.reason == ("Unable to import snapshot, task result: deleted, "
                                "msg: ClientError: Disk validation failed")
    async with create_client("s3", region="us-east-1", endpoint=moto_url, creds=AWS_KEYS, path_style=True) as s3:
        head = await s3.head_object(Bucket=s3_bucket, Key="image-key.raw")
        assert head["ContentLength"] == disk_image["raw"].stat().st_size


async def test_xz_artifact_is_uploaded_decompressed(credentials: Credentials, s3_bucket: str,
                                                    disk_image: dict[str, Path], tmp_path: Path,
                                                    ec2_shim: tuple[EC2Shim, str]) -> None:
    import lzma

    xz = tmp_path / "disk.raw.xz"
    xz.write_bytes(lzma.compress(disk_image["raw"].read_bytes(), preset=0))
    sent: list[int] = []
    await upload(ami_target(s3_bucket), xz, credentials, sent.append)
    assert sent[-1] == disk_image["raw"].stat().st_size      # the raw size, not the .xz size
    assert (tmp_path / "disk.raw").read_bytes() == disk_image["raw"].read_bytes()
    assert xz.exists()


@pytest.mark.parametrize("options, reason", [
    ({"region": "us-east-1", "bucket": "b"}, "No AWS object key provided"),
    ({"region": "us-east-1", "key": "k"}, "No AWS bucket provided"),
    ({"region": "us-east-1", "key": "k", "bucket": "b", "bootMode": "bios"},
     "bootMode: must be one of ['legacy-bios', 'uefi', 'uefi-preferred']"),
])
async def test_bad_options_are_invalid_target_config(options: dict, reason: str,
                                                     disk_image: dict[str, Path]) -> None:
    with pytest.raises(UploadError) as err:
        await upload(UploadTarget("org.osbuild.aws", "x", options), disk_image["raw"], Credentials(), None)
    assert (err.value.id, err.value.reason) == (2, reason)


async def test_bucket_and_region_fall_back_to_the_config(credentials: Credentials, s3_bucket: str,
                                                         disk_image: dict[str, Path]) -> None:
    credentials.aws.bucket = s3_bucket
    result = await upload(UploadTarget("org.osbuild.aws", "from-config", {"key": "k.raw"}),
                          disk_image["raw"], credentials, None)
    assert result["region"] == "us-east-1" and result["ami"].startswith("ami-")
