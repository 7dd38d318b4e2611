"""org.osbuild.azure / azure.image: page-blob VHD upload to azurite; image creation against a fake ARM.

The ARM part (login, storage account by tag, keys, Images.CreateOrUpdate) is a contract test against
``fake_azure.py``, not against Azure. The blob upload is real azurite.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from azure.storage.blob.aio import BlobServiceClient

from osbuildd.compose.model import UploadTarget
from osbuildd.upload import Credentials, UploadError, upload

from .fake_azure import ACCOUNT, KEY, FakeARM


def blob_service(azurite_url: str) -> BlobServiceClient:
    return BlobServiceClient(f"{azurite_url}/{ACCOUNT}", credential={"account_name": ACCOUNT, "account_key": KEY})


@pytest.fixture
async def container(azurite_url: str) -> str:
    name = f"c{uuid.uuid4().hex[:12]}"
    async with blob_service(azurite_url) as svc:
        await svc.create_container(name)
    return name


async def download(azurite_url: str, container: str, blob: str) -> tuple[dict, bytes, list]:
    async with blob_service(azurite_url) as svc:
        client = svc.get_blob_client(container, blob)
        props = await client.get_blob_properties()
        data = await (await client.download_blob()).readall()
        ranges = [r async for r in client.list_page_ranges() if not r.cleared]
        return props, data, ranges


def blob_target(container: str, name: str = "osbuildd-vhd-test") -> UploadTarget:
    return UploadTarget("org.osbuild.azure", name,
                        {"storageAccount": ACCOUNT, "storageAccessKey": KEY, "container": container})


async def test_vhd_page_blob_contents_and_zero_pages_skipped(credentials: Credentials, container: str,
                                                             azurite_url: str, disk_image: dict[str, Path]) -> None:
    import hashlib

    vhd = disk_image["vhd"]
    sent: list[int] = []
    result = await upload(blob_target(container), vhd, credentials, sent.append)
    assert result is None                              # upstream: no result options
    assert sent[-1] == vhd.stat().st_size
    props, data, ranges = await download(azurite_url, container, "osbuildd-vhd-test.vhd")
    assert props.blob_type == "PageBlob"
    assert props.size == vhd.stat().st_size
    assert data == vhd.read_bytes()
    assert props.content_settings.content_md5 == hashlib.md5(vhd.read_bytes()).digest()
    written = sum(r.end - r.start + 1 for r in ranges)
    assert 0 < written < props.size                    # sparse: the empty part of the disk was not sent


async def test_unaligned_file_is_refused(credentials: Credentials, container: str, tmp_path: Path) -> None:
    odd = tmp_path / "odd.vhd"
    odd.write_bytes(b"x" * 1000)
    with pytest.raises(UploadError) as err:
        await upload(blob_target(container), odd, credentials, None)
    assert (err.value.id, err.value.reason) == (11, "size for azure image must be aligned to 512 bytes")


async def test_wrong_key_is_an_upload_error(credentials: Credentials, container: str,
                                            disk_image: dict[str, Path]) -> None:
    target = blob_target(container)
    target.options["storageAccessKey"] = "d3Jvbmcta2V5LWRvLW5vdC1sb2c="
    with pytest.raises(UploadError) as err:
        await upload(target, disk_image["vhd"], credentials, None)
    assert err.value.id == 11
    assert "d3Jvbmcta2V5LWRvLW5vdC1sb2c=" not in err.value.reason


def image_target(name: str = "osbuildd-azure-image") -> UploadTarget:
    return UploadTarget("org.osbuild.azure.image", name,
                        {"tenant_id": "tenant-1", "subscription_id": "sub-1", "resource_group": "rg-1",
                         "hyperv_generation": "V2"})


async def test_managed_image_from_the_uploaded_vhd(credentials: Credentials, azurite_url: str,
                                                   disk_image: dict[str, Path],
                                                   fake_arm: tuple[FakeARM, str]) -> None:
    fake, _ = fake_arm
    result = await upload(image_target(), disk_image["vhd"], credentials, None)
    assert result == {"image_name": "osbuildd-azure-image"}
    assert fake.blob_existed == [True]
    body = fake.images["osbuildd-azure-image"]
    assert body["location"] == "eastus"                  # from the resource group
    assert body["properties"]["hyperVGeneration"] == "V2"
    disk = body["properties"]["storageProfile"]["osDisk"]
    assert (disk["osType"], disk["osState"]) == ("Linux", "Generalized")
    assert disk["blobUri"] == f"{azurite_url}/{ACCOUNT}/imagebuilder/osbuildd-azure-image.vhd"
    assert all(n == 2 for n in fake.ops.values())       # polled until Succeeded
    _, data, _ = await download(azurite_url, "imagebuilder", "osbuildd-azure-image.vhd")
    assert data == disk_image["vhd"].read_bytes()


async def test_image_target_without_worker_credentials(credentials: Credentials,
                                                       disk_image: dict[str, Path]) -> None:
    credentials.azure.credentials = ""
    with pytest.raises(UploadError) as err:
        await upload(image_target(), disk_image["vhd"], credentials, None)
    assert err.value.id == 3
    assert "doesn't have azure credentials" in err.value.reason


async def test_image_target_with_a_rejected_secret(credentials: Credentials, disk_image: dict[str, Path],
                                                   fake_arm: tuple[FakeARM, str]) -> None:
    fake_arm[0].client_secret = "another-secret"
    with pytest.raises(UploadError) as err:
        await upload(image_target(), disk_image["vhd"], credentials, None)
    assert err.value.id == 2
    assert "arm-Secret-do-not-log" not in err.value.reason


async def test_failed_page_upload_removes_the_half_written_blob(credentials: Credentials, container: str,
                                                                azurite_url: str, disk_image: dict[str, Path],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    from osbuildd.upload import azure_blob

    calls = 0
    real = azure_blob.read_at

    async def failing_read(fd: int, offset: int, size: int) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise OSError(5, "Input/output error")
        return await real(fd, offset, size)

    monkeypatch.setattr(azure_blob, "read_at", failing_read)
    with pytest.raises(UploadError) as err:
        await upload(blob_target(container), disk_image["vhd"], credentials, None)
    assert err.value.id == 11 and "Input/output error" in err.value.reason
    with pytest.raises(ResourceNotFoundError):
        await download(azurite_url, container, "osbuildd-vhd-test.vhd")
