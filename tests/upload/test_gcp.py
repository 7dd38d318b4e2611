"""org.osbuild.gcp: resumable upload to gcp-storage-emulator; image insert against a fake of compute v1.

The compute part is a contract test against a fake (``fake_gcp.py``), not against Google.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest

from osbuildd.compose.model import UploadTarget
from osbuildd.upload import Credentials, UploadError, upload
from osbuildd.upload.gcp import guest_os_features

from .fake_gcp import FakeCompute


def read_text(path: Path) -> str:
    return path.read_text()


def gcp_target(bucket: str, **extra: object) -> UploadTarget:
    return UploadTarget("org.osbuild.gcp", "osbuildd-gce-test",
                        {"region": "europe-west1", "bucket": bucket, "object": "composes/image.tar.gz",
                         "os": "rhel-9.6", **extra})


async def object_status(gcs: str, bucket: str, obj: str) -> int:
    async with aiohttp.ClientSession() as s, s.get(f"{gcs}/storage/v1/b/{bucket}/o/{quote(obj, safe='')}") as r:
        return r.status


async def test_upload_import_share_and_the_object_is_deleted(
        credentials: Credentials, gcs_bucket: str, gcs_url: str, disk_image: dict[str, Path],
        fake_compute: tuple[FakeCompute, str]) -> None:
    fake, _ = fake_compute
    targz = disk_image["tar.gz"]
    sent: list[int] = []
    result = await upload(gcp_target(gcs_bucket, shareWithAccounts=["user:alice@example.com"]),
                          targz, credentials, sent.append)
    assert result == {"image_name": "osbuildd-gce-test", "project_id": "osbuildd-test"}
    assert sent[-1] == targz.stat().st_size
    [insert] = fake.inserts
    body = insert["body"]
    assert body["rawDisk"] == {"containerType": "TAR",
                               "source": f"https://storage.googleapis.com/{gcs_bucket}/composes/image.tar.gz"}
    assert body["storageLocations"] == ["europe-west1"]
    assert {"type": "TDX_CAPABLE"} in body["guestOsFeatures"]          # rhel-9 defaults
    # at insert time the object was there, complete (MD5 checked by the emulator) and labelled
    obj = insert["object"]
    assert obj is not None
    assert obj["md5Hash"] == base64.b64encode(hashlib.md5(targz.read_bytes()).digest()).decode()
    assert int(obj["size"]) == targz.stat().st_size
    assert obj["metadata"] == {"osbuild-composer-image-name": "osbuildd-gce-test"}
    assert "osbuildd-gce-test" in fake.images
    assert fake.policies["osbuildd-gce-test"]["bindings"] == [
        {"role": "roles/compute.imageUser", "members": ["user:alice@example.com"]}]
    assert await object_status(gcs_url, gcs_bucket, "composes/image.tar.gz") == 404


async def test_failed_import_is_error_12_and_the_object_is_still_deleted(
        credentials: Credentials, gcs_bucket: str, gcs_url: str, disk_image: dict[str, Path],
        fake_compute: tuple[FakeCompute, str]) -> None:
    fake_compute[0].fail_import = True
    with pytest.raises(UploadError) as err:
        await upload(gcp_target(gcs_bucket), disk_image["tar.gz"], credentials, None)
    assert err.value.id == 12
    assert "INVALID_IMAGE" in err.value.reason
    assert fake_compute[0].inserts[0]["object"] is not None
    assert await object_status(gcs_url, gcs_bucket, "composes/image.tar.gz") == 404


async def test_transient_errors_are_retried(credentials: Credentials, gcs_bucket: str,
                                            disk_image: dict[str, Path], fake_compute: tuple[FakeCompute, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from osbuildd.upload import common

    monkeypatch.setattr(common.random, "random", lambda: 0.0)   # shortest backoff
    fake_compute[0].flaky_waits = 2
    result = await upload(gcp_target(gcs_bucket), disk_image["tar.gz"], credentials, None)
    assert result["image_name"] == "osbuildd-gce-test"
    assert fake_compute[0].flaky_waits == 0


async def test_persistent_server_errors_give_up(credentials: Credentials, gcs_bucket: str,
                                               disk_image: dict[str, Path], fake_compute: tuple[FakeCompute, str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from osbuildd.upload import common

    monkeypatch.setattr(common.random, "random", lambda: 0.0)
    fake_compute[0].flaky_waits = 100
    with pytest.raises(UploadError) as err:
        await upload(gcp_target(gcs_bucket), disk_image["tar.gz"], credentials, None)
    assert err.value.id == 12 and "HTTP 503" in err.value.reason
    assert fake_compute[0].flaky_waits == 95      # five attempts, then the error is reported


async def test_credentials_in_the_options_win(credentials: Credentials, gcs_bucket: str,
                                              disk_image: dict[str, Path], gcp_service_file: Path) -> None:
    data = json.loads(read_text(gcp_service_file))
    data["project_id"] = "from-options"
    credentials.gcp.credentials = "/nonexistent/gcp.json"      # would fail if it were used
    encoded = base64.b64encode(json.dumps(data).encode()).decode()
    result = await upload(gcp_target(gcs_bucket, credentials=encoded), disk_image["tar.gz"], credentials, None)
    assert result["project_id"] == "from-options"


async def test_missing_bucket_fails_the_upload(credentials: Credentials, disk_image: dict[str, Path]) -> None:
    with pytest.raises(UploadError) as err:
        await upload(gcp_target("no-such-gcs-bucket"), disk_image["tar.gz"], credentials, None)
    assert err.value.id == 11


@pytest.mark.parametrize("options, error_id, reason", [
    ({"bucket": "b"}, 2, "No GCP object name provided"),
    ({"object": "o"}, 2, "No GCP bucket provided"),
    ({"object": "o", "bucket": "b", "credentials": "%%%"}, 2, "credentials: not base64-encoded JSON"),
])
async def test_bad_options(options: dict, error_id: int, reason: str, disk_image: dict[str, Path]) -> None:
    with pytest.raises(UploadError) as err:
        await upload(UploadTarget("org.osbuild.gcp", "x", options), disk_image["tar.gz"], Credentials(), None)
    assert (err.value.id, err.value.reason) == (error_id, reason)


def test_guest_os_features_as_upstream() -> None:
    assert guest_os_features({"os": "debian-12"}) == []
    assert {"type": "TDX_CAPABLE"} not in guest_os_features({"os": "rhel-8.10"})
    assert {"type": "UEFI_COMPATIBLE"} in guest_os_features({"os": "centos-9"})
    assert guest_os_features({"os": "rhel-9", "guestOsFeatures": [{"type": "GVNIC"}]}) == [{"type": "GVNIC"}]
