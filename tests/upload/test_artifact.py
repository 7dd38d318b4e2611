"""What the targets read of the artifact: the compose's architecture (org.osbuild.aws registers the AMI
with it) and the export's file name (worker.server's artifact_relative_path, aws.s3's object key), as
upstream's worker takes them from the job's ``osbuild_artifact`` rather than from the file on disk."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

from osbuildd.compose.model import UploadTarget
from osbuildd.upload import Artifact, Credentials, upload
from osbuildd.upload.awsclient import create_client

from .conftest import AWS_KEYS
from .fake_ec2 import EC2Shim


async def test_worker_server_names_the_export_file_not_the_file_on_disk(tmp_path: Path) -> None:
    on_disk = tmp_path / "compose-1.partial"
    on_disk.write_bytes(b"x" * 4096)
    target = UploadTarget("org.osbuild.worker.server", "img", {})
    result = await upload(target, Artifact(on_disk, export_filename="disk.qcow2"), Credentials())
    assert result == {"artifact_relative_path": "disk.qcow2", "artifact_path": str(on_disk)}
    # a bare path: the file's own name is the export's
    result = await upload(target, on_disk, Credentials())
    assert result is not None and result["artifact_relative_path"] == "compose-1.partial"


async def test_s3_object_key_is_key_dash_export_filename(credentials: Credentials, s3_bucket: str,
                                                         disk_image: dict[str, Path], moto_url: str,
                                                         tmp_path: Path) -> None:
    renamed = tmp_path / "artifact.bin"
    shutil.copyfile(disk_image["vhd"], renamed)
    target = UploadTarget("org.osbuild.aws.s3", "test-image",
                          {"region": "us-east-1", "bucket": s3_bucket, "key": "compose-2"})
    await upload(target, Artifact(renamed, export_filename="disk.vhd"), credentials)
    async with create_client("s3", region="us-east-1", endpoint=moto_url, creds=AWS_KEYS, path_style=True) as s3:
        head = await s3.head_object(Bucket=s3_bucket, Key="compose-2-disk.vhd")
        assert head["ContentLength"] == renamed.stat().st_size


async def test_aarch64_compose_registers_an_arm64_ami(credentials: Credentials, s3_bucket: str,
                                                      disk_image: dict[str, Path], moto_url: str,
                                                      ec2_shim: tuple[EC2Shim, str]) -> None:
    shim, _ = ec2_shim

    def target(name: str) -> UploadTarget:
        return UploadTarget("org.osbuild.aws", name, {"region": "us-east-1", "bucket": s3_bucket, "key": name})

    async def registered_arch(name: str, artifact: Artifact | Path) -> str:
        result = await upload(target(name), artifact, credentials)
        assert result is not None and result["ami"].startswith("ami-")
        [form] = [f for f in shim.registered if f["Name"] == name]
        return form["Architecture"]

    assert await registered_arch("arm-ami", Artifact(disk_image["raw"], arch="aarch64")) == "arm64"
    assert await registered_arch("x86-ami", Artifact(disk_image["raw"], arch="x86_64")) == "x86_64"
    # no arch given: this host's, as upstream's worker
    host = {"x86_64": "x86_64", "aarch64": "arm64"}[platform.machine()]
    assert await registered_arch("host-ami", disk_image["raw"]) == host
