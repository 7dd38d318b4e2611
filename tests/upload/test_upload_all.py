"""All targets of one compose at once, in one event loop; failures stay per target; secrets stay out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import structlog

from osbuildd.compose.model import UploadTarget
from osbuildd.upload import Credentials, TargetResult, target_error, upload_all
from osbuildd.upload.credentials import read_aws_credentials_file

from .fake_azure import FakeARM
from .fake_gcp import FakeCompute


def three_targets(s3_bucket: str, gcs_bucket: str) -> list[UploadTarget]:
    return [
        UploadTarget("org.osbuild.aws", "all-ami", {"region": "us-east-1", "bucket": s3_bucket, "key": "all.raw",
                                                    "shareWithAccounts": ["123456789012"]}),
        UploadTarget("org.osbuild.gcp", "all-gce", {"bucket": gcs_bucket, "object": "all.tar.gz",
                                                    "region": "us-central1"}),
        UploadTarget("org.osbuild.azure.image", "all-azure", {"tenant_id": "t", "subscription_id": "s",
                                                              "resource_group": "rg"}),
    ]


async def test_three_clouds_at_once(credentials: Credentials, s3_bucket: str, gcs_bucket: str,
                                    disk_image: dict[str, Path], fake_compute: tuple[FakeCompute, str],
                                    fake_arm: tuple[FakeARM, str]) -> None:
    # one artifact for all targets, as in a compose: the VHD is 512-aligned for Azure
    artifact = disk_image["vhd"]
    size = artifact.stat().st_size
    progress: dict[int, list[int]] = {0: [], 1: [], 2: [], 3: []}
    in_flight: set[int] = set()
    overlap = False

    def report(index: int, sent: int) -> None:
        nonlocal overlap
        progress[index].append(sent)
        if sent < size:
            in_flight.add(index)
        else:
            in_flight.discard(index)
        overlap = overlap or len(in_flight) >= 2

    targets = [*three_targets(s3_bucket, gcs_bucket), UploadTarget("org.osbuild.worker.server", "disk.vhd", {})]
    results = await upload_all(targets, artifact, credentials, report)
    assert [r.name for r in results] == [t.name for t in targets]      # target order kept
    assert [r.error for r in results] == [None] * 4
    assert results[0].options["ami"].startswith("ami-")
    assert results[1].options == {"image_name": "all-gce", "project_id": "osbuildd-test"}
    assert results[2].options == {"image_name": "all-azure"}
    assert results[3].options["artifact_relative_path"] == "disk.vhd"
    assert all(progress[i][-1] == size for i in range(4))
    assert overlap          # the uploads really ran at the same time
    assert fake_compute[0].inserts[0]["object"] is not None
    assert fake_arm[0].blob_existed == [True]
    assert target_error(results) is None


async def test_one_bad_bucket_fails_only_its_target(credentials: Credentials, gcs_bucket: str,
                                                    disk_image: dict[str, Path]) -> None:
    targets = three_targets("no-such-bucket-anywhere", gcs_bucket)
    results = await upload_all(targets, disk_image["vhd"], credentials)
    assert results[0].error is not None and results[0].options is None
    assert results[0].error.id == 11
    assert "NoSuchBucket" in results[0].error.reason
    assert results[1].error is None and results[1].options["image_name"] == "all-gce"
    assert results[2].error is None and results[2].options == {"image_name": "all-azure"}
    job_error = target_error(results)
    assert job_error is not None
    assert (job_error.id, job_error.reason) == (28, "at least one target failed")
    assert job_error.details == [{"id": 11, "reason": results[0].error.reason}]
    assert results[0].to_dict() == {"name": "org.osbuild.aws", "target_error": job_error.details[0]}
    assert results[2].to_dict() == {"name": "org.osbuild.azure.image", "options": {"image_name": "all-azure"}}


async def test_unknown_target_is_error_4(disk_image: dict[str, Path]) -> None:
    [result] = await upload_all([UploadTarget("org.osbuild.nope", "x", {})], disk_image["raw"], Credentials())
    assert result == TargetResult("org.osbuild.nope", None, result.error)
    assert result.error is not None
    assert (result.error.id, result.error.reason) == (4, "invalid target type: org.osbuild.nope")


async def test_secrets_never_reach_logs_or_results(credentials: Credentials, s3_bucket: str, gcs_bucket: str,
                                                   disk_image: dict[str, Path], capsys: pytest.CaptureFixture,
                                                   fake_arm: tuple[FakeARM, str]) -> None:
    secrets = ["opt-Secret-do-not-log", "aws-Secret-do-not-log", "arm-Secret-do-not-log", "tok-do-not-log"]
    targets = [
        UploadTarget("org.osbuild.aws.s3", "s", {"region": "us-east-1", "bucket": s3_bucket, "key": "k",
                                                 "accessKeyID": "AKID", "secretAccessKey": secrets[0],
                                                 "sessionToken": secrets[3]}),
        UploadTarget("org.osbuild.aws.s3", "s", {"region": "us-east-1", "bucket": "missing-bkt", "key": "k",
                                                 "accessKeyID": "AKID", "secretAccessKey": secrets[0]}),
        three_targets(s3_bucket, gcs_bucket)[0],          # the [aws] credentials file's secret
        three_targets(s3_bucket, gcs_bucket)[2],          # the azure client secret
    ]
    fake_arm[0].client_secret = "something-else"           # make the azure login fail
    with structlog.testing.capture_logs() as events:
        results = await upload_all(targets, disk_image["vhd"], credentials)
    assert results[1].error is not None and results[3].error is not None
    # A presigned URL made with temporary credentials must carry the session token (SigV4 puts it in
    # X-Amz-Security-Token, upstream's URLs too): it may appear there, and nowhere else.
    url = results[0].options["url"]
    assert f"X-Amz-Security-Token={secrets[3]}" in url
    text = repr(events) + repr([r.to_dict() for r in results]).replace(url, "") + repr(credentials) \
        + capsys.readouterr().out
    for secret in secrets:
        assert secret not in text


async def test_cancelling_upload_all_stops_every_target(credentials: Credentials, s3_bucket: str,
                                                        gcs_bucket: str, disk_image: dict[str, Path]) -> None:
    started = asyncio.Event()
    task = asyncio.create_task(upload_all(three_targets(s3_bucket, gcs_bucket), disk_image["vhd"], credentials,
                                          lambda i, sent: started.set()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_config_and_worker_config_priority(tmp_path: Path) -> None:
    worker = tmp_path / "osbuild-worker.toml"
    worker.write_text('[aws]\ncredentials = "/etc/osbuild-worker/aws"\nbucket = "worker-bucket"\n'
                      '[gcp]\nbucket = "worker-gcs"\n[azure]\ncredentials = "/w/azure.toml"\nupload_threads = 8\n'
                      '[generic_s3]\nendpoint = "https://minio:9000"\nregion = "us-east-1"\n')

    class Section:
        def __init__(self, **kw: str) -> None:
            self.__dict__.update(kw)

    class Config:
        aws = Section(credentials="/etc/osbuildd/aws", region="eu-west-1", bucket="")
        gcp = Section(credentials="", bucket="osbuildd-gcs", region="")
        azure = Section(credentials="")

    creds = Credentials.load(Config(), worker)
    assert creds.aws.credentials == "/etc/osbuildd/aws"       # osbuildd's config wins
    assert creds.aws.bucket == "worker-bucket"                # the worker config fills the gaps
    assert creds.aws.region == "eu-west-1"
    assert creds.gcp.bucket == "osbuildd-gcs"
    assert (creds.azure.credentials, creds.azure.upload_threads) == ("/w/azure.toml", 8)
    assert (creds.generic_s3.endpoint, creds.generic_s3.region) == ("https://minio:9000", "us-east-1")
    assert Credentials.load(None, tmp_path / "absent.toml") == Credentials()


def test_aws_credentials_file(tmp_path: Path) -> None:
    good = tmp_path / "aws"
    good.write_text("[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s3cr3t\n")
    assert read_aws_credentials_file(str(good)) == ("AKIA1", "s3cr3t", None)
    bad = tmp_path / "bad"
    bad.write_text("[other]\naws_access_key_id = AKIA1\naws_secret_access_key = s3cr3t\n")
    from osbuildd.upload import UploadError

    with pytest.raises(UploadError) as err:
        read_aws_credentials_file(str(bad))
    assert err.value.id == 17 and "s3cr3t" not in err.value.reason and str(bad) in err.value.reason
