"""org.osbuild.gcp: resumable upload to GCS → compute image from the object → share; object always deleted.

Storage goes through gcloud-aio-storage; the few compute v1 calls (images.insert, operations.wait,
images.get, get/setIamPolicy) are plain REST with aiohttp and a gcloud-aio-auth token, against a
configurable API root.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
from gcloud.aio.auth import Token
from gcloud.aio.storage import Storage

from .common import CountingFile, ProgressCounter, file_digest, log, option, retry
from .credentials import Credentials
from .errors import (
    IMPORTING_IMAGE,
    INVALID_CONFIG,
    INVALID_TARGET_CONFIG,
    SHARING_TARGET,
    UPLOADING_IMAGE,
    UploadError,
)
from .model import Artifact, Target, TargetName

NAME = TargetName.GCP
SCOPES = [
    "https://www.googleapis.com/auth/devstorage.read_write",
    "https://www.googleapis.com/auth/compute",
]
_SEV = ["UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE", "SEV_CAPABLE", "SEV_SNP_CAPABLE", "SEV_LIVE_MIGRATABLE",
        "SEV_LIVE_MIGRATABLE_V2", "GVNIC", "IDPF"]
# Default guest OS features by the `os` option's prefix, as upstream; other distros get none.
GUEST_OS_FEATURES: dict[str, list[str]] = {
    "rhel-8": _SEV, "centos-8": _SEV,
    "rhel-9": [*_SEV, "TDX_CAPABLE"], "centos-9": [*_SEV, "TDX_CAPABLE"], "rhel-10": [*_SEV, "TDX_CAPABLE"],
}
METADATA_IMAGE_NAME = "osbuild-composer-image-name"


def guest_os_features(options: dict[str, Any]) -> list[dict[str, str]]:
    given = option(options, "guestOsFeatures", "guest_os_features")
    if given:
        return [{"type": f["type"] if isinstance(f, dict) else str(f)} for f in given]
    os_name = str(options.get("os") or "")
    for prefix, features in GUEST_OS_FEATURES.items():
        if os_name == prefix or os_name.startswith(prefix + "."):
            return [{"type": f} for f in features]
    return []


def _service_file(options: dict[str, Any], creds: Credentials) -> str | io.StringIO | None:
    """options.credentials (base64 JSON) > [gcp] credentials file > None (application default)."""
    encoded = options.get("credentials")
    if encoded:
        try:
            data = json.loads(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            raise UploadError(INVALID_TARGET_CONFIG, "credentials: not base64-encoded JSON") from None
        if not isinstance(data, dict) or data.get("type") != "service_account":
            raise UploadError(INVALID_TARGET_CONFIG, "credentials: not a service account key")
        return io.StringIO(json.dumps(data))
    return creds.gcp.credentials or None


async def upload(target: Target, artifact: Artifact, creds: Credentials, counter: ProgressCounter) -> dict[str, Any]:
    options = target.options or {}
    obj = option(options, "object", default="")
    if not obj:
        raise UploadError(INVALID_TARGET_CONFIG, "No GCP object name provided")
    bucket = option(options, "bucket", default=creds.gcp.bucket)
    if not bucket:
        raise UploadError(INVALID_TARGET_CONFIG, "No GCP bucket provided")
    region = option(options, "region", default=creds.gcp.region)
    image_name = target.image_name
    service_file = _service_file(options, creds)

    async with aiohttp.ClientSession() as session:
        try:
            # gcloud-aio types its session as requests.Session (that of its REST build); the aio
            # build takes aiohttp's
            token = Token(service_file=service_file, scopes=SCOPES, session=session)  # type: ignore[arg-type]
            project = await token.get_project()
        except Exception as e:
            raise UploadError(INVALID_CONFIG, f"GCP credentials: {type(e).__name__}: {e}") from None
        if not project:
            raise UploadError(INVALID_CONFIG, "GCP credentials name no project_id")
        storage = Storage(token=token, session=session,  # type: ignore[arg-type]  # as Token above
                          api_root=creds.gcp.storage_api_root or None)
        await _upload_object(storage, bucket, obj, artifact.path, image_name, counter)
        compute = _Compute(session, token, creds.gcp.compute_api_root, project, creds.gcp.poll_interval)
        import_error: Exception | None = None
        try:
            await compute.insert_image(image_name, region, guest_os_features(options),
                                       f"https://storage.googleapis.com/{bucket}/{obj}")
        except Exception as e:
            import_error = e
        finally:
            # upstream always deletes the object, also when the import failed
            try:
                await retry(lambda: storage.delete(bucket, obj), what="gcs delete")
            except Exception as e:
                log.warning("upload.gcp.delete_failed", bucket=bucket, object=obj, error=_message(e))
        if import_error is not None:
            raise UploadError(IMPORTING_IMAGE, f"importing image {image_name} failed: {_message(import_error)}")
        shares = list(option(options, "shareWithAccounts", "share_with_accounts", default=[]))
        if shares:
            try:
                await compute.share_image(image_name, shares)
            except Exception as e:
                raise UploadError(SHARING_TARGET, f"sharing image {image_name} failed: {_message(e)}") from None
    return {"image_name": image_name, "project_id": project}


async def _upload_object(storage: Storage, bucket: str, obj: str, artifact: Path, image_name: str,
                         counter: ProgressCounter) -> None:
    md5 = base64.b64encode(await file_digest(artifact, "md5")).decode()
    size = (await asyncio.to_thread(artifact.stat)).st_size
    loop = asyncio.get_running_loop()
    try:
        stream = await asyncio.to_thread(CountingFile, artifact, counter, loop)
        # resumable streams the open file from disk; the simple path would read it all into memory
        resp = await storage.upload(
            bucket, obj, stream, content_type="application/octet-stream", force_resumable_upload=True,
            metadata={"md5Hash": md5, "metadata": {METADATA_IMAGE_NAME: image_name}},
            timeout=max(300, size // (1 << 20)))
    except Exception as e:
        raise UploadError(UPLOADING_IMAGE, f"uploading to gs://{bucket}/{obj} failed: {_message(e)}") from None
    if resp.get("md5Hash") and resp["md5Hash"] != md5:
        raise UploadError(UPLOADING_IMAGE, f"gs://{bucket}/{obj}: MD5 mismatch after upload")


class _Compute:
    """The compute v1 calls the gcp target needs, nothing more."""

    def __init__(self, session: aiohttp.ClientSession, token: Token, root: str, project: str,
                 poll_interval: float) -> None:
        self.session, self.token, self.project, self.poll = session, token, project, poll_interval
        self.base = f"{root.rstrip('/')}/projects/{project}/global"

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {await self.token.get()}"}
        async with self.session.request(method, f"{self.base}/{path}", json=body, headers=headers) as resp:
            data = await resp.json(content_type=None) if resp.content_length != 0 else {}
            if resp.status >= 400:
                msg = (data or {}).get("error", {}).get("message") if isinstance(data, dict) else None
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status,
                                                  message=msg or resp.reason or "")
            return data or {}

    async def insert_image(self, name: str, region: str, features: list[dict[str, str]], source: str) -> None:
        body: dict[str, Any] = {"name": name, "rawDisk": {"containerType": "TAR", "source": source}}
        if region:
            body["storageLocations"] = [region]
        if features:
            body["guestOsFeatures"] = features
        op = await self._call("POST", "images", body)
        while op.get("status") in ("PENDING", "RUNNING"):
            await asyncio.sleep(self.poll)
            op = await retry(functools.partial(self._call, "POST", f"operations/{op['name']}/wait"),
                             what="gcp operations.wait")
        errors = (op.get("error") or {}).get("errors") or []
        if op.get("httpErrorStatusCode") or errors:
            detail = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errors)
            raise RuntimeError(f"operation {op.get('name')} failed ({op.get('httpErrorStatusCode', '')}) {detail}")
        await self._call("GET", f"images/{name}")

    async def share_image(self, name: str, members: list[str]) -> None:
        policy = await self._call("GET", f"images/{name}/getIamPolicy")
        bindings = policy.setdefault("bindings", [])
        for binding in bindings:
            if binding.get("role") == "roles/compute.imageUser":
                binding["members"] = sorted(set(binding.get("members", [])) | set(members))
                break
        else:
            bindings.append({"role": "roles/compute.imageUser", "members": members})
        await self._call("POST", f"images/{name}/setIamPolicy", {"policy": policy})


def _message(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}: {exc.message}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
