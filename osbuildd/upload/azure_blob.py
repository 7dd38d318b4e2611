"""VHD upload as an Azure page blob: 512-byte aligned, 4 MiB pages, all-zero pages skipped (sparse)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from pathlib import Path

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobServiceClient

from osbuildd.errors import ErrorKind, ServiceError

from .common import ProgressCounter, file_digest, read_at, retry

PAGE_CHUNK = 4 << 20
_ZERO = bytes(PAGE_CHUNK)


class AlignmentError(ServiceError, ValueError):
    """The image's size is not what a page blob can hold (a multiple of 512 bytes)."""

    kind = ErrorKind.FAILED
    error_id = "AlignmentError"


def vhd_name(image_name: str) -> str:
    """Upstream's EnsureVHDExtension."""
    return image_name if image_name.endswith(".vhd") else f"{image_name}.vhd"


def service_client(account_url: str, account: str, key: str) -> BlobServiceClient:
    # retries are the project's own loop (common.retry, logged, per page); the SDK's policy is off
    # so a failing page is not tried 5 x 4 times
    return BlobServiceClient(account_url, credential={"account_name": account, "account_key": key},
                             retry_total=0)


async def ensure_container(svc: BlobServiceClient, container: str) -> None:
    try:
        await svc.create_container(container)
    except ResourceExistsError:
        pass


async def upload_page_blob(svc: BlobServiceClient, container: str, blob_name: str, path: Path,
                           counter: ProgressCounter, threads: int = 4) -> str:
    """Create the page blob (with its MD5) and upload the non-zero 4 MiB pages; returns the blob URL.

    Memory: at most ``threads`` chunks of 4 MiB at once. Skipped (zero) pages count as sent in the
    progress, since progress is "how much of the image is done".
    """
    size = (await asyncio.to_thread(os.stat, path)).st_size
    if size % 512:
        raise AlignmentError("size for azure image must be aligned to 512 bytes")
    md5 = await file_digest(path, "md5")
    blob = svc.get_blob_client(container, blob_name)
    await retry(lambda: blob.create_page_blob(size, content_settings=ContentSettings(content_md5=bytearray(md5))),
                what="azure create_page_blob")
    chunks = iter(range(0, size, PAGE_CHUNK))
    fd = await asyncio.to_thread(os.open, path, os.O_RDONLY)

    async def worker() -> None:
        for offset in chunks:   # shared iterator: each chunk taken once
            length = min(PAGE_CHUNK, size - offset)
            data = await read_at(fd, offset, length)
            if data != (_ZERO if length == PAGE_CHUNK else bytes(length)):
                await retry(functools.partial(blob.upload_page, data, offset=offset, length=length),
                            what="azure upload_page")
            counter.add(length)

    try:
        async with asyncio.TaskGroup() as tg:
            for _ in range(max(1, min(threads, -(-size // PAGE_CHUNK)))):
                tg.create_task(worker())
    except BaseException as e:
        # a half-written page blob reads as a corrupt disk: don't leave it behind (shielded, so a
        # cancelled upload is cleaned up too)
        with contextlib.suppress(Exception):
            await asyncio.shield(blob.delete_blob())
        if isinstance(e, BaseExceptionGroup):
            raise e.exceptions[0] from None
        raise
    finally:
        await asyncio.to_thread(os.close, fd)
    return str(blob.url)
