"""org.osbuild.aws.s3 against moto: multipart upload, presigned SigV4 URL, public URL, abort on failure."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from osbuildd.compose.model import UploadTarget
from osbuildd.upload import Credentials, UploadError, awsclient, upload
from osbuildd.upload.awsclient import create_client

from .conftest import AWS_KEYS

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def s3_target(bucket: str, **extra: object) -> UploadTarget:
    return UploadTarget("org.osbuild.aws.s3", "test-image",
                        {"region": "us-east-1", "bucket": bucket, "key": "compose-1", **extra})


async def fetch(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, await r.read()


async def test_presigned_url_serves_the_image_byte_for_byte(credentials: Credentials, s3_bucket: str,
                                                            disk_image: dict[str, Path], moto_url: str) -> None:
    raw = disk_image["raw"]
    sent: list[int] = []
    result = await upload(s3_target(s3_bucket), raw, credentials, sent.append)
    url = result["url"]
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]      # SigV4, as the Go SDK
    assert query["X-Amz-Expires"] == ["604800"]                   # 7 days
    assert query["X-Amz-Credential"][0].startswith("AKIDFROMFILE/")  # [aws] credentials file signed it
    assert urlsplit(url).path == f"/{s3_bucket}/compose-1-disk.raw"
    status, body = await fetch(url)
    assert status == 200
    assert hashlib.sha256(body).digest() == hashlib.sha256(raw.read_bytes()).digest()
    assert sent[-1] == raw.stat().st_size
    assert sent == sorted(sent)
    async with create_client("s3", region="us-east-1", endpoint=moto_url, creds=AWS_KEYS, path_style=True) as s3:
        head = await s3.head_object(Bucket=s3_bucket, Key="compose-1-disk.raw")
        # 40 MiB in 8 MiB parts: a real multipart upload (ETag "<md5>-<parts>")
        assert head["ETag"].strip('"').endswith("-5")


async def grantees(s3: object, bucket: str, key: str) -> set[str]:
    acl = await s3.get_object_acl(Bucket=bucket, Key=key)  # type: ignore[attr-defined]
    return {g["Grantee"].get("URI", g["Grantee"].get("ID", "")) for g in acl["Grants"]}


async def test_public_upload_returns_a_plain_url(credentials: Credentials, s3_bucket: str,
                                                 disk_image: dict[str, Path], moto_url: str) -> None:
    vhd = disk_image["vhd"]
    result = await upload(s3_target(s3_bucket, public=True), vhd, credentials, None)
    assert "X-Amz-Signature" not in result["url"]
    status, body = await fetch(result["url"])
    assert status == 200 and body == vhd.read_bytes()
    async with create_client("s3", region="us-east-1", endpoint=moto_url, creds=AWS_KEYS, path_style=True) as s3:
        assert ALL_USERS in await grantees(s3, s3_bucket, "compose-1-disk.vhd")


async def test_generic_endpoint_with_keys_in_options(credentials: Credentials, s3_bucket: str,
                                                     disk_image: dict[str, Path], moto_url: str) -> None:
    # endpoint + region: generic S3, path-style, credentials from the options
    target = s3_target(s3_bucket, endpoint=moto_url, accessKeyID="AKIDGENERIC",
                       secretAccessKey="generic-Secret-do-not-log")
    result = await upload(target, disk_image["tar.gz"], Credentials(), None)
    assert result["url"].startswith(f"{moto_url}/{s3_bucket}/compose-1-image.tar.gz?")
    assert "generic-Secret-do-not-log" not in result["url"]
    status, body = await fetch(result["url"])
    assert status == 200 and body == disk_image["tar.gz"].read_bytes()


async def test_generic_endpoint_without_credentials_is_a_config_error(s3_bucket: str, moto_url: str,
                                                                      disk_image: dict[str, Path]) -> None:
    with pytest.raises(UploadError) as err:
        await upload(s3_target(s3_bucket, endpoint=moto_url), disk_image["raw"], Credentials(), None)
    assert (err.value.id, err.value.reason) == (17, "no credentials found")


@pytest.mark.parametrize("options, error_id, reason", [
    ({"region": "us-east-1", "bucket": "b"}, 2, "No AWS object key provided"),
    ({"region": "us-east-1", "key": "k"}, 2, "No AWS bucket provided"),
    ({"endpoint": "http://127.0.0.1:1", "key": "k"}, 17, "s3 server configuration is incomplete"),
    ({"key": "k"}, 17, "no default endpoint for S3 was set"),
])
async def test_bad_options_name_the_problem(options: dict, error_id: int, reason: str,
                                            disk_image: dict[str, Path]) -> None:
    with pytest.raises(UploadError) as err:
        await upload(UploadTarget("org.osbuild.aws.s3", "x", options), disk_image["raw"], Credentials(), None)
    assert (err.value.id, err.value.reason) == (error_id, reason)


async def test_missing_bucket_is_an_upload_error(credentials: Credentials, disk_image: dict[str, Path]) -> None:
    with pytest.raises(UploadError) as err:
        await upload(s3_target("no-such-bucket-here"), disk_image["raw"], credentials, None)
    assert err.value.id == 11
    assert "NoSuchBucket" in err.value.reason


async def _open_uploads(moto_url: str, bucket: str) -> list:
    async with create_client("s3", region="us-east-1", endpoint=moto_url, creds=AWS_KEYS, path_style=True) as s3:
        return (await s3.list_multipart_uploads(Bucket=bucket)).get("Uploads", [])


async def test_failed_upload_aborts_the_multipart_upload(credentials: Credentials, s3_bucket: str,
                                                         disk_image: dict[str, Path], moto_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = awsclient._read_part

    def failing_read(fd: int, offset: int, size: int) -> tuple[bytes, str]:
        nonlocal calls
        calls += 1
        if calls == 3:   # the third part cannot be read: the disk went away mid-upload
            raise OSError(5, "Input/output error")
        return real(fd, offset, size)

    monkeypatch.setattr(awsclient, "_read_part", failing_read)
    with pytest.raises(UploadError) as err:
        await upload(s3_target(s3_bucket), disk_image["raw"], credentials, None)
    assert err.value.id == 11 and "Input/output error" in err.value.reason
    assert await _open_uploads(moto_url, s3_bucket) == []


async def test_cancelled_upload_aborts_the_multipart_upload(credentials: Credentials, s3_bucket: str,
                                                            disk_image: dict[str, Path], moto_url: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(awsclient, "PART_SIZE", 5 << 20)       # 8 parts: most still to go when cancelled
    monkeypatch.setattr(awsclient, "CONCURRENCY", 1)
    first_part = asyncio.Event()
    task = asyncio.create_task(upload(s3_target(s3_bucket), disk_image["raw"], credentials,
                                      lambda sent: first_part.set()))
    await first_part.wait()
    assert len(await _open_uploads(moto_url, s3_bucket)) == 1   # it was really in progress
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _open_uploads(moto_url, s3_bucket) == []


@pytest.fixture
def no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing for the SDK's default chain to find: no env keys, no ~/.aws, no instance metadata."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


async def test_sdk_default_chain_is_the_last_resort(credentials: Credentials, s3_bucket: str,
                                                    disk_image: dict[str, Path], no_aws_environment: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    credentials.aws.credentials = ""            # no keys in the options, none in the config
    with pytest.raises(UploadError) as err:
        await upload(s3_target(s3_bucket), disk_image["raw"], credentials, None)
    assert err.value.id == 11 and "Unable to locate credentials" in err.value.reason
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-Secret-do-not-log")
    result = await upload(s3_target(s3_bucket), disk_image["raw"], credentials, None)
    assert "Credential=AKIDFROMENV%2F" in result["url"]    # the environment's key signed it


@pytest.fixture
async def tls_moto(moto_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """moto behind TLS: (https URL, CA file)."""
    from aiohttp import web

    from .tls_proxy import forwarder, make_pki, server_context

    ca, cert, key = make_pki(tmp_path)
    runner = web.AppRunner(forwarder(moto_url))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context(cert, key))
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"https://127.0.0.1:{port}", ca
    await runner.cleanup()


async def test_tls_endpoint_needs_the_ca_bundle_or_skip_verification(
        s3_bucket: str, disk_image: dict[str, Path], tls_moto: tuple[str, Path]) -> None:
    import ssl

    url, ca = tls_moto
    keys = {"accessKeyID": "AKIDTLS", "secretAccessKey": "tls-Secret-do-not-log"}
    # an unknown CA: the handshake fails, and that is an upload error
    with pytest.raises(UploadError) as err:
        await upload(s3_target(s3_bucket, endpoint=url, **keys), disk_image["tar.gz"], Credentials(), None)
    assert err.value.id == 11 and "SSL" in err.value.reason.upper()
    # ca_bundle: verified against our CA
    result = await upload(s3_target(s3_bucket, endpoint=url, ca_bundle=str(ca), **keys),
                          disk_image["tar.gz"], Credentials(), None)
    assert result["url"].startswith(f"{url}/{s3_bucket}/")
    ctx = ssl.create_default_context(cafile=str(ca))
    async with aiohttp.ClientSession() as s, s.get(result["url"], ssl=ctx) as r:
        assert r.status == 200 and await r.read() == disk_image["tar.gz"].read_bytes()
    # skip_ssl_verification: no verification at all
    result = await upload(s3_target(s3_bucket, endpoint=url, skip_ssl_verification=True, key="insecure", **keys),
                          disk_image["tar.gz"], Credentials(), None)
    assert result["url"].startswith(f"{url}/{s3_bucket}/insecure-image.tar.gz?")
