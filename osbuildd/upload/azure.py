"""org.osbuild.azure (page blob in a given storage account) and org.osbuild.azure.image (managed image).

azure.image follows upstream's worker: authenticate as the service principal from ``[azure] credentials``
(azure-identity's async ClientSecretCredential, which caches the token and fetches a new one before it
expires, so a long upload's later ARM calls still carry a valid token), find (or create) the storage account tagged for the location, list its keys, upload the VHD as a
page blob into container ``imagebuilder``, then create the image from the blob. The management
(ARM) calls are plain REST with aiohttp against a configurable ``management_url``; the blob upload
uses azure-storage-blob's aio client.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from enum import StrEnum
from typing import Any

import aiohttp
from azure.identity.aio import ClientSecretCredential
from multidict import CIMultiDictProxy

from .azure_blob import AlignmentError, ensure_container, service_client, upload_page_blob, vhd_name
from .common import ProgressCounter, decompressed, log, option, retry
from .credentials import Credentials, read_azure_credentials_file
from .errors import (
    IMPORTING_IMAGE,
    INVALID_CONFIG,
    INVALID_TARGET_CONFIG,
    SHARING_TARGET,
    UPLOADING_IMAGE,
    UploadError,
)
from .model import Artifact, Target, TargetName

NAME_BLOB = TargetName.AZURE
NAME_IMAGE = TargetName.AZURE_IMAGE
CONTAINER = "imagebuilder"
STORAGE_TAG = "imageBuilderStorageAccount"
BLOB_THREADS = 4   # upstream's azureMaxUploadGoroutines for the blob-only target
API_RESOURCES = "2021-04-01"
API_STORAGE = "2023-01-01"
API_COMPUTE = "2024-03-01"


class HyperVGeneration(StrEnum):
    """The managed image's ``hyperVGeneration`` (option ``hyperv_generation``)."""

    V1 = "V1"
    V2 = "V2"


def _message(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}: {exc.message}"
    text = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


async def upload_blob_target(target: Target, artifact: Artifact, creds: Credentials,
                             counter: ProgressCounter) -> dict[str, Any] | None:
    """org.osbuild.azure: shared-key upload into an existing container; no result options."""
    options = target.options or {}
    account = option(options, "storageAccount", "storage_account")
    key = option(options, "storageAccessKey", "storage_access_key")
    container = option(options, "container")
    for name, value in (("storageAccount", account), ("storageAccessKey", key), ("container", container)):
        if not value:
            raise UploadError(INVALID_TARGET_CONFIG, f"{name}: missing")
    try:
        svc = service_client(creds.azure.blob_endpoint.format(account=account), account, key)
    except Exception as e:
        raise UploadError(INVALID_CONFIG, f"creating the Azure blob client failed: {_message(e)}") from None
    async with svc:
        try:
            await upload_page_blob(svc, container, vhd_name(target.image_name), artifact.path, counter,
                                   BLOB_THREADS)
        except AlignmentError as e:
            raise UploadError(UPLOADING_IMAGE, str(e)) from None
        except Exception as e:
            raise UploadError(UPLOADING_IMAGE, f"uploading to container {container} failed: {_message(e)}") from None
    return None


async def upload_image_target(target: Target, artifact: Artifact, creds: Credentials,
                              counter: ProgressCounter) -> dict[str, Any]:
    options = target.options or {}
    if not creds.azure.credentials:
        raise UploadError(SHARING_TARGET, "osbuild job has org.osbuild.azure.image target but this worker "
                                          "doesn't have azure credentials")
    for name in ("tenant_id", "subscription_id", "resource_group"):
        if not option(options, name):
            raise UploadError(INVALID_TARGET_CONFIG, f"{name}: missing")
    hyperv = option(options, "hyperv_generation", default=HyperVGeneration.V1.value)
    if hyperv not in tuple(HyperVGeneration):
        raise UploadError(INVALID_TARGET_CONFIG, "hyperv_generation: must be V1 or V2")
    client_id, secret = await asyncio.to_thread(read_azure_credentials_file, creds.azure.credentials)
    image_name = target.image_name
    tls = await asyncio.to_thread(_tls_context, creds.azure.ca_bundle)
    try:
        credential = _credential(creds, options["tenant_id"], client_id, secret)
    except ValueError as e:   # azure-identity checks the tenant id's characters and the authority's scheme
        raise UploadError(INVALID_CONFIG, f"Azure credential: {_message(e)}") from None
    del secret   # from here on only the credential holds it
    async with credential, aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as session:
        arm = _ARM(session, creds, credential, options["tenant_id"], options["subscription_id"],
                   options["resource_group"])
        try:
            location = option(options, "location") or await arm.resource_group_location()
            account = await arm.storage_account(location)
            key = await arm.storage_key(account)
        except Exception as e:
            raise UploadError(INVALID_TARGET_CONFIG, f"preparing the Azure storage failed: {_message(e)}") from None
        svc = service_client(creds.azure.blob_endpoint.format(account=account), account, key)
        async with svc:
            try:
                await ensure_container(svc, CONTAINER)
            except Exception as e:
                raise UploadError(INVALID_TARGET_CONFIG, f"creating container {CONTAINER}: {_message(e)}") from None
            try:
                path = await decompressed(artifact.path)
                blob_url = await upload_page_blob(svc, CONTAINER, vhd_name(image_name), path, counter,
                                                  creds.azure.upload_threads or 16)
            except AlignmentError as e:
                raise UploadError(UPLOADING_IMAGE, str(e)) from None
            except Exception as e:
                raise UploadError(UPLOADING_IMAGE, f"uploading the VHD failed: {_message(e)}") from None
        try:
            await arm.create_image(image_name, location, hyperv, blob_url)
        except Exception as e:
            raise UploadError(IMPORTING_IMAGE, f"creating image {image_name} failed: {_message(e)}") from None
    log.info("upload.azure.image", image=image_name, location=location)
    return {"image_name": image_name}


def _tls_context(ca_bundle: str) -> ssl.SSLContext | bool:
    """``[azure] ca_bundle`` (a PEM file) for AAD and ARM, else the system's trust store. Blocking."""
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True


def _credential(creds: Credentials, tenant: str, client_id: str, secret: str) -> ClientSecretCredential:
    settings = creds.azure
    extra: dict[str, Any] = {"connection_verify": settings.ca_bundle} if settings.ca_bundle else {}
    # no instance discovery: it asks login.microsoftonline.com about the authority, which a sovereign
    # cloud or a closed network cannot reach. retry_total=0: a failing token request is retried by the
    # project's loop around the ARM call (where there is one), not 4 times more inside the SDK.
    return ClientSecretCredential(tenant, client_id, secret, authority=settings.authority_url,
                                  disable_instance_discovery=True, retry_total=0, **extra)


class _ARM:
    """The Azure Resource Manager calls azure.image needs (REST, bearer token from the credential)."""

    def __init__(self, session: aiohttp.ClientSession, creds: Credentials, credential: ClientSecretCredential,
                 tenant: str, subscription: str, resource_group: str) -> None:
        self.session = session
        self.settings = creds.azure
        self.credential = credential
        self.tenant = tenant
        self.scope = f"{self.settings.management_url.rstrip('/')}/.default"
        self.rg_path = f"/subscriptions/{subscription}/resourceGroups/{resource_group}"

    async def _call(self, method: str, path: str, api: str, body: dict[str, Any] | None = None,
                    absolute: bool = False) -> tuple[int, CIMultiDictProxy[str], dict[str, Any]]:
        url = path if absolute else f"{self.settings.management_url.rstrip('/')}{path}"
        params = None if absolute else {"api-version": api}
        # asked for on every call: the credential answers from its cache and refreshes near expiry
        token = await self.credential.get_token(self.scope)
        headers = {"Authorization": f"Bearer {token.token}"}
        async with self.session.request(method, url, params=params, json=body, headers=headers) as resp:
            text = await resp.text()
            data = _json(text)
            if resp.status >= 400:
                msg = data.get("error", {}).get("message", "") if isinstance(data, dict) else text[:200]
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status, message=msg)
            # ARM answers objects; anything else has none of the fields asked for
            return resp.status, resp.headers, data if isinstance(data, dict) else {}

    async def _wait(self, status: int, headers: CIMultiDictProxy[str]) -> None:
        """Poll a long-running operation (Azure-AsyncOperation, else Location) until it ends."""
        op_url = headers.get("Azure-AsyncOperation")
        loc_url = headers.get("Location")
        if status not in (201, 202) or not (op_url or loc_url):
            return
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            await asyncio.sleep(self.settings.poll_interval)
            if op_url:
                _, _, data = await retry(lambda: self._call("GET", op_url, "", absolute=True), what="azure poll")
                state = data.get("status", "")
                if state == "Succeeded":
                    return
                if state in ("Failed", "Canceled"):
                    raise RuntimeError(f"operation {state}: {data.get('error', {}).get('message', '')}")
            else:
                # loc_url is set here (no op_url); `or ""` only tells the type checker
                code, _, _ = await retry(lambda: self._call("GET", loc_url or "", "", absolute=True),
                                         what="azure poll")
                if code != 202:
                    return
        raise TimeoutError("Azure operation did not finish within an hour")

    async def resource_group_location(self) -> str:
        _, _, data = await self._call("GET", self.rg_path, API_RESOURCES)
        return str(data["location"])

    async def storage_account(self, location: str) -> str:
        base = f"{self.rg_path}/providers/Microsoft.Storage/storageAccounts"
        _, _, data = await self._call("GET", base, API_STORAGE)
        for acc in data.get("value", []):
            if (acc.get("tags") or {}).get(STORAGE_TAG) == f"location={location}":
                return str(acc["name"])
        name = f"ib{uuid.uuid4().hex[:22]}"
        body = {"location": location, "sku": {"name": "Standard_RAGRS"}, "kind": "StorageV2",
                "tags": {STORAGE_TAG: f"location={location}"}}
        status, headers, _ = await self._call("PUT", f"{base}/{name}", API_STORAGE, body)
        await self._wait(status, headers)
        return name

    async def storage_key(self, account: str) -> str:
        path = f"{self.rg_path}/providers/Microsoft.Storage/storageAccounts/{account}/listKeys"
        _, _, data = await self._call("POST", path, API_STORAGE)
        return str(data["keys"][0]["value"])

    async def create_image(self, name: str, location: str, hyperv: str, blob_url: str) -> None:
        body = {"location": location, "properties": {
            "hyperVGeneration": hyperv,
            "storageProfile": {"osDisk": {"osType": "Linux", "osState": "Generalized", "blobUri": blob_url}},
        }}
        path = f"{self.rg_path}/providers/Microsoft.Compute/images/{name}"
        status, headers, _ = await self._call("PUT", path, API_COMPUTE, body)
        await self._wait(status, headers)


def _json(text: str) -> object:
    import json

    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}
