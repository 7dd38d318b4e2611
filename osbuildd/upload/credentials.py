"""Where the upload targets get their credentials and endpoints from.

Priority, as upstream's worker: credentials in the target options > osbuildd's config (``[aws]``,
``[gcp]``, ``[azure]``) > upstream's worker config ``/etc/osbuild-worker/osbuild-worker.toml`` > the
SDK's own defaults (environment, ``~/.aws``, ``GOOGLE_APPLICATION_CREDENTIALS``, ...).

The settings hold *paths* to credential files; the files are read when a target runs, so secrets are
never kept in (or printed with) these objects.
"""

from __future__ import annotations

import configparser
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import INVALID_CONFIG, UploadError

if TYPE_CHECKING:
    from osbuildd.config import Config

WORKER_CONFIG = Path("/etc/osbuild-worker/osbuild-worker.toml")


@dataclass
class AWSSettings:
    credentials: str = ""           # AWS shared-credentials INI file, profile [default]
    region: str = ""
    bucket: str = ""
    s3_endpoint: str = ""           # "" = AWS (or botocore's AWS_ENDPOINT_URL_S3)
    ec2_endpoint: str = ""          # "" = AWS (or AWS_ENDPOINT_URL_EC2)
    import_poll_interval: float = 15.0      # upstream's SnapshotImported waiter delay
    import_timeout: float = 24 * 3600.0     # upstream waits at most 24 h


@dataclass
class GenericS3Settings:
    credentials: str = ""
    endpoint: str = ""
    region: str = ""
    bucket: str = ""
    ca_bundle: str = ""
    skip_ssl_verification: bool = False


@dataclass
class GCPSettings:
    credentials: str = ""           # service-account JSON key file
    bucket: str = ""
    region: str = ""
    storage_api_root: str = ""      # "" = storage.googleapis.com (or STORAGE_EMULATOR_HOST)
    compute_api_root: str = "https://compute.googleapis.com/compute/v1"
    poll_interval: float = 5.0


@dataclass
class AzureSettings:
    credentials: str = ""           # TOML file with client_id, client_secret
    upload_threads: int = 16
    blob_endpoint: str = "https://{account}.blob.core.windows.net"
    management_url: str = "https://management.azure.com"
    authority_url: str = "https://login.microsoftonline.com"   # https only (azure-identity insists)
    ca_bundle: str = ""             # PEM CA file for authority_url and management_url; "" = system store
    poll_interval: float = 5.0


@dataclass
class Credentials:
    aws: AWSSettings = field(default_factory=AWSSettings)
    generic_s3: GenericS3Settings = field(default_factory=GenericS3Settings)
    gcp: GCPSettings = field(default_factory=GCPSettings)
    azure: AzureSettings = field(default_factory=AzureSettings)

    @classmethod
    def load(cls, config: Config | None = None, worker_config: Path | None = WORKER_CONFIG) -> Credentials:
        """osbuildd's config sections first, then upstream's worker config for what is still empty.

        Blocking (reads one small TOML file): call it at start-up or through ``asyncio.to_thread``.
        """
        creds = cls()
        if config is not None:
            for section in ("aws", "generic_s3", "gcp", "azure"):
                _merge(getattr(creds, section), getattr(config, section, None))
        if worker_config is not None and worker_config.is_file():
            try:
                data = tomllib.loads(worker_config.read_text())
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise UploadError(INVALID_CONFIG, f"{worker_config}: {e}") from None
            for section in ("aws", "generic_s3", "gcp", "azure"):
                _merge(getattr(creds, section), data.get(section), only_empty=True)
        if creds.azure.upload_threads < 0:
            raise UploadError(INVALID_CONFIG, "[azure] upload_threads must not be negative")
        return creds


Settings = AWSSettings | GenericS3Settings | GCPSettings | AzureSettings


def _merge(target: Settings, source: object, only_empty: bool = False) -> None:
    """Fill ``target`` from ``source``: a section of osbuildd's Config, or a TOML table (a dict)."""
    if source is None:
        return
    for f in fields(target):
        value = source.get(f.name) if isinstance(source, dict) else getattr(source, f.name, None)
        if value is None or value == "":
            continue
        current = getattr(target, f.name)
        if only_empty and current not in ("", f.default):
            continue
        setattr(target, f.name, type(current)(value))


# --- credential files (read in a worker thread by the targets) ---

def read_aws_credentials_file(path: str) -> tuple[str, str, str | None]:
    """(key id, secret, session token) of profile ``default`` of a shared-credentials INI file."""
    parser = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
        section = parser["default"]
        return section["aws_access_key_id"], section["aws_secret_access_key"], section.get("aws_session_token")
    except (OSError, configparser.Error, KeyError) as e:
        # the message names the file and what is missing, never a value
        raise UploadError(INVALID_CONFIG, f"AWS credentials file {path}: {type(e).__name__}: {e}") from None


def read_azure_credentials_file(path: str) -> tuple[str, str]:
    """(client_id, client_secret) from upstream's azure credentials TOML (JSON is accepted too)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        try:
            data = tomllib.loads(raw.decode())
        except tomllib.TOMLDecodeError:
            data = json.loads(raw)
        return str(data["client_id"]), str(data["client_secret"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        # names the file and the missing key, never a value
        raise UploadError(INVALID_CONFIG, f"Azure credentials file {path}: missing or invalid "
                          f"({type(e).__name__}: {e})") from None
