"""aiobotocore clients and the S3 multipart upload shared by org.osbuild.aws and org.osbuild.aws.s3."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import os
import zlib
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.loaders import create_loader

from .common import ProgressCounter, log, read_at, retry
from .credentials import read_aws_credentials_file

PART_SIZE = 8 << 20       # 8 MiB parts (boto3's default) ...
MAX_PARTS = 10000         # ... grown for files past 80 GiB (S3's part count limit)
CONCURRENCY = 10          # parts in flight (boto3's default); memory is PART_SIZE * CONCURRENCY at most,
                          # whatever the file size
_LOADER = create_loader()


async def static_credentials(options: dict[str, Any], credentials_file: str) -> dict[str, str]:
    """Client keyword arguments for the credentials: options > file > {} (the SDK's default chain)."""
    key_id = options.get("accessKeyID") or options.get("access_key_id")
    secret = options.get("secretAccessKey") or options.get("secret_access_key")
    token = options.get("sessionToken") or options.get("session_token")
    if key_id and secret:
        out = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
        if token:
            out["aws_session_token"] = token
        return out
    if credentials_file:
        key_id, secret, token = await asyncio.to_thread(read_aws_credentials_file, credentials_file)
        out = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
        if token:
            out["aws_session_token"] = token
        return out
    return {}


def create_client(service: str, *, region: str, endpoint: str = "", creds: dict[str, str],
                  path_style: bool = False, verify: bool | str | None = None) -> Any:
    """An aiobotocore client context manager. SigV4 everywhere (presigned URLs as the Go SDK makes them).

    ``Any``: aiobotocore's clients are generated from the service models at run time and the package
    has no types (so are the ``s3``/``ec2`` parameters below)."""
    s3cfg: dict[str, Any] = {"addressing_style": "path"} if path_style else {}
    if service == "s3":
        # Parts carry a CRC32 checksum (computed off the event loop, see _upload_parts) that S3
        # verifies; botocore already skips the SigV4 payload SHA-256 on https in that case, and this
        # makes plain-http endpoints (moto, minio) behave the same instead of hashing every part twice.
        s3cfg["payload_signing_enabled"] = False
    config = AioConfig(signature_version="s3v4" if service == "s3" else None, s3=s3cfg or None,
                       retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=CONCURRENCY * 2)
    kwargs: dict[str, Any] = {"region_name": region or None, "config": config, **creds}
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    if verify is not None:
        kwargs["verify"] = verify
    session = get_session()
    # the service models are big JSON files: parse them once per process, not once per client
    session.register_component("data_loader", _LOADER)
    return session.create_client(service, **kwargs)


async def multipart_upload(s3: Any, bucket: str, key: str, path: Path, counter: ProgressCounter, *,
                           part_size: int | None = None, concurrency: int | None = None) -> dict[str, Any]:
    """Upload ``path`` to ``bucket/key`` in parts read from disk one at a time per worker.

    Each part is retried on transient errors; on any failure or cancellation the multipart upload
    is aborted so that no half-uploaded parts stay behind (they would be billed and invisible).
    """
    size = (await asyncio.to_thread(os.stat, path)).st_size
    part_size = max(part_size or PART_SIZE, -(-size // MAX_PARTS))
    concurrency = concurrency or CONCURRENCY
    fd = await asyncio.to_thread(os.open, path, os.O_RDONLY)
    try:
        if size <= part_size:
            body = await read_at(fd, 0, size)
            resp: dict[str, Any] = await retry(lambda: s3.put_object(Bucket=bucket, Key=key, Body=body),
                                               what="s3 put_object")
            counter.add(size)
            return resp
        # CRC32 per part, declared up front and listed again at completion (as S3 requires when an
        # algorithm is declared); the server then combines the part checksums instead of re-reading
        # the whole object for a full-object checksum
        created = await retry(lambda: s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32"),
                              what="s3 create_multipart_upload")
        upload_id = created["UploadId"]
        try:
            done = await _upload_parts(s3, bucket, key, upload_id, fd, size, part_size, concurrency, counter)
            parts = [{"PartNumber": n, "ETag": done[n][0], "ChecksumCRC32": done[n][1]} for n in sorted(done)]
            return await retry(lambda: s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}),
                what="s3 complete_multipart_upload")
        except BaseException:
            # shielded: a cancelled upload must still be aborted
            await asyncio.shield(_abort(s3, bucket, key, upload_id))
            raise
    finally:
        await asyncio.to_thread(os.close, fd)


async def _upload_parts(s3: Any, bucket: str, key: str, upload_id: str, fd: int, size: int,
                        part_size: int, concurrency: int, counter: ProgressCounter) -> dict[int, tuple[str, str]]:
    """Part number → (ETag, CRC32)."""
    count = -(-size // part_size)
    numbers = iter(range(1, count + 1))
    etags: dict[int, tuple[str, str]] = {}

    async def worker() -> None:
        for number in numbers:   # a shared iterator: each part is taken by exactly one worker
            offset = (number - 1) * part_size
            body, crc = await asyncio.to_thread(_read_part, fd, offset, min(part_size, size - offset))
            resp = await retry(functools.partial(
                s3.upload_part, Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body,
                ChecksumCRC32=crc), what="s3 upload_part")
            etags[number] = (resp["ETag"], crc)
            counter.add(len(body))
            del body

    try:
        async with asyncio.TaskGroup() as tg:
            for _ in range(min(concurrency, count)):
                tg.create_task(worker())
    except BaseExceptionGroup as group:
        raise group.exceptions[0] from None   # the first failure is the story; the rest were cancelled
    return etags


def _read_part(fd: int, offset: int, size: int) -> tuple[bytes, str]:
    """A part and its CRC32 (base64, as S3 wants it), in a worker thread: zlib releases the GIL."""
    body = os.pread(fd, size, offset)
    return body, base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()


async def _abort(s3: Any, bucket: str, key: str, upload_id: str) -> None:
    with contextlib.suppress(Exception):
        await s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        log.info("upload.s3.aborted", bucket=bucket, key=key)


def client_error_message(exc: BaseException) -> str:
    """The remote error code and message (botocore), or the exception's own text."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response["Error"]
        return f"{err.get('Code', '')}: {err.get('Message', '')}".strip(": ")
    return f"{type(exc).__name__}: {exc}"
