"""org.osbuild.aws.s3: the image as an S3 object, returned as a presigned (SigV4, 7 days) or public URL."""

from __future__ import annotations

from typing import Any

from .awsclient import client_error_message, create_client, multipart_upload, static_credentials
from .common import ProgressCounter, log, option
from .credentials import Credentials
from .errors import INVALID_CONFIG, INVALID_TARGET_CONFIG, UPLOADING_IMAGE, UploadError
from .model import Artifact, Target, TargetName

NAME = TargetName.AWS_S3
PRESIGN_EXPIRY = 7 * 24 * 3600   # upstream: 7 days, the SigV4 maximum


async def _client_settings(options: dict[str, Any], creds: Credentials) -> dict[str, Any]:
    """Upstream's mode selection: real AWS, a generic S3 endpoint, or the worker's [generic_s3]."""
    endpoint = option(options, "endpoint", default="")
    region = option(options, "region", default="")
    gs3 = creds.generic_s3
    if not endpoint and region:
        return {"region": region, "endpoint": creds.aws.s3_endpoint,
                "bucket": option(options, "bucket", default=creds.aws.bucket),
                "creds": await static_credentials(options, creds.aws.credentials),
                "path_style": bool(creds.aws.s3_endpoint)}
    if endpoint and region:
        if option(options, "accessKeyID") and option(options, "secretAccessKey"):
            keys = await static_credentials(options, "")
        elif gs3.credentials:
            keys = await static_credentials({}, gs3.credentials)
        else:
            raise UploadError(INVALID_CONFIG, "no credentials found")
        return {"region": region, "endpoint": endpoint, "bucket": option(options, "bucket", default=""),
                "creds": keys, "path_style": True,
                "ca_bundle": option(options, "ca_bundle", default=""),
                "insecure": bool(options.get("skip_ssl_verification"))}
    if not endpoint and not region:
        for what in ("endpoint", "region", "bucket", "credentials"):
            if not getattr(gs3, what):
                raise UploadError(INVALID_CONFIG, f"no default {what} for S3 was set")
        return {"region": gs3.region, "endpoint": gs3.endpoint, "bucket": gs3.bucket,
                "creds": await static_credentials({}, gs3.credentials), "path_style": True,
                "ca_bundle": gs3.ca_bundle, "insecure": gs3.skip_ssl_verification}
    raise UploadError(INVALID_CONFIG, "s3 server configuration is incomplete")


async def upload(target: Target, artifact: Artifact, creds: Credentials, counter: ProgressCounter) -> dict[str, Any]:
    options = target.options or {}
    key = option(options, "key", default="")
    if not key:
        raise UploadError(INVALID_TARGET_CONFIG, "No AWS object key provided")
    settings = await _client_settings(options, creds)
    bucket = settings["bucket"]
    if not bucket:
        raise UploadError(INVALID_TARGET_CONFIG, "No AWS bucket provided")
    object_key = f"{key}-{artifact.filename}"   # upstream: <key>-<export_filename>
    verify: bool | str | None = None
    if settings.get("insecure"):
        verify = False
    elif settings.get("ca_bundle"):
        verify = settings["ca_bundle"]
    try:
        client_cm = create_client("s3", region=settings["region"], endpoint=settings["endpoint"],
                                  creds=settings["creds"], path_style=settings["path_style"], verify=verify)
    except Exception as e:
        raise UploadError(INVALID_CONFIG, f"creating the S3 client failed: {client_error_message(e)}") from None
    async with client_cm as s3:
        try:
            log.info("upload.s3.start", bucket=bucket, key=object_key)
            done = await multipart_upload(s3, bucket, object_key, artifact.path, counter)
            if options.get("public"):
                await s3.put_object_acl(Bucket=bucket, Key=object_key, ACL="public-read")
                url = _public_url(settings, bucket, object_key, done)
            else:
                url = await s3.generate_presigned_url(
                    "get_object", Params={"Bucket": bucket, "Key": object_key}, ExpiresIn=PRESIGN_EXPIRY)
        except UploadError:
            raise
        except Exception as e:
            raise UploadError(UPLOADING_IMAGE, f"uploading to s3://{bucket}/{object_key} failed: "
                              f"{client_error_message(e)}") from None
    return {"url": url}


def _public_url(settings: dict[str, Any], bucket: str, key: str, done: dict[str, Any]) -> str:
    # A custom endpoint is addressed path-style, so the object's URL is built from it; on AWS the
    # upload's Location is the URL (a single PUT has none, so it is built the same way).
    if settings["endpoint"]:
        return f"{settings['endpoint'].rstrip('/')}/{bucket}/{key}"
    return done.get("Location") or f"https://{bucket}.s3.{settings['region']}.amazonaws.com/{key}"
