"""The worker's settings: upstream's osbuild-worker.toml, overridden by the command line.

osbuild-worker.toml (upstream ``cmd/osbuild-worker/config.go``): ``base_path``, ``[authentication]``
``oauth_url``, ``client_id``, ``client_secret`` (a file), ``offline_token`` (a file); ``[aws]``,
``[gcp]``, ``[azure]``, ``[generic_s3]`` credentials for the uploads (read by
``osbuildd.upload.credentials`` from the same file); ``[osbuild_executor] type`` (only ``host``
here); ``[composer] url``: the worker API's address as upstream (``host:port``), or, osbuildd's
addition, a list of them (several daemons on one database: the worker uses one and moves to the next
when it stops answering, ``osbuildd.worker.client``); the command line's addresses win over it. A
missing file means the defaults, as upstream; other sections upstream knows are accepted and unused.
"""

from __future__ import annotations

import platform
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path("/etc/osbuild-worker/osbuild-worker.toml")
DEFAULT_STATE_DIR = Path("/var/lib/osbuildd-worker")
DEFAULT_BASE_PATH = "/api/worker/v1"
# upstream's osbuild-remote-worker certificate paths
DEFAULT_CERT = "/etc/osbuild-composer/worker-crt.pem"
DEFAULT_KEY = "/etc/osbuild-composer/worker-key.pem"
DEFAULT_CA = "/etc/osbuild-composer/ca-crt.pem"

_KNOWN = {"base_path", "authentication", "aws", "gcp", "azure", "generic_s3", "osbuild_executor", "composer",
          "koji", "containers", "oci", "pulp", "dnf-json", "repository_mtls", "deployment_channel"}
_AUTH_KEYS = {"oauth_url", "client_id", "client_secret", "offline_token"}
_COMPOSER_KEYS = {"url", "proxy"}   # proxy: upstream's, unused here
_EXECUTORS = {"host"}   # upstream also has aws.ec2 and qemu.kvm: builds in a VM, not done here


class WorkerConfigError(ValueError):
    """A bad option or configuration value, worded in one line."""


def machine_arch() -> str:
    m = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


@dataclass
class WorkerSettings:
    composer: str = ""               # scheme://host[:port] of the worker API (the first of composers)
    composers: list[str] = field(default_factory=list)   # every address given, in the order tried
    base_path: str = DEFAULT_BASE_PATH
    cert: str = DEFAULT_CERT
    key: str = field(default=DEFAULT_KEY, repr=False)
    ca: str = DEFAULT_CA
    token_url: str = ""
    client_id: str = ""
    client_secret_file: str = ""
    offline_token_file: str = ""
    state_dir: Path = DEFAULT_STATE_DIR
    store: Path | None = None
    arch: str = field(default_factory=machine_arch)
    poll_interval: float = 5.0       # GET /jobs/{token}: heartbeat and cancel check
    status_interval: float = 60.0    # POST /workers/{id}/status
    partial_interval: float = 1.0    # PATCH partial (progress, log increments) at most this often
    osbuild: str = "auto"
    config_file: Path | None = None  # the osbuild-worker.toml read (credentials come from it too)

    @property
    def oauth(self) -> bool:
        return bool(self.token_url)

    @property
    def store_dir(self) -> Path:
        return self.store or self.state_dir / "store"


def composer_url(address: str) -> str:
    """``host:port`` (upstream's ADDRESS, https) or a URL -> ``scheme://host[:port]``."""
    text = address.strip().rstrip("/")
    if "://" not in text:
        text = "https://" + text
    scheme, _, rest = text.partition("://")
    if scheme not in ("http", "https") or not rest or "/" in rest:
        raise WorkerConfigError(f"composer address {address!r}: expected host:port or http(s)://host[:port]")
    return f"{scheme}://{rest}"


def composer_urls(addresses: list[str]) -> list[str]:
    """Addresses given (each maybe a comma-separated list) as distinct URLs, in order."""
    out: list[str] = []
    for address in addresses:
        for part in address.split(","):
            if part.strip():
                url = composer_url(part)
                if url not in out:
                    out.append(url)
    return out


def read_file(path: Path | None, *, explicit: bool) -> dict[str, Any]:
    """The TOML table of ``path``; {} when the default file does not exist (as upstream)."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise WorkerConfigError(f"{path}: no such file") from None
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkerConfigError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WorkerConfigError(f"{path}: syntax: {exc}") from None


def _str(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise WorkerConfigError(f"{where}: {key}: must be a string")
    return value


def _table(data: dict[str, Any], name: str, src: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise WorkerConfigError(f"{src}: {name}: must be a table")
    return value


def apply_file(settings: WorkerSettings, data: dict[str, Any], src: str) -> list[str]:
    """Fill ``settings`` from osbuild-worker.toml's table; returns the unknown keys (ignored)."""
    unknown = sorted(k for k in data if k not in _KNOWN)
    if "base_path" in data:
        settings.base_path = _str(data, "base_path", src)
    auth = _table(data, "authentication", src)
    unknown += [f"authentication.{k}" for k in sorted(auth) if k not in _AUTH_KEYS]
    where = f"{src}: authentication"
    settings.token_url = _str(auth, "oauth_url", where)
    settings.client_id = _str(auth, "client_id", where)
    settings.client_secret_file = _str(auth, "client_secret", where)
    settings.offline_token_file = _str(auth, "offline_token", where)
    composer = _table(data, "composer", src)
    unknown += [f"composer.{k}" for k in sorted(composer) if k not in _COMPOSER_KEYS]
    url = composer.get("url", [])
    if isinstance(url, str):
        url = [url]
    if not isinstance(url, list) or not all(isinstance(u, str) for u in url):
        raise WorkerConfigError(f"{src}: composer.url: must be an address or a list of addresses")
    if url:
        try:
            settings.composers = composer_urls(url)
        except WorkerConfigError as exc:
            raise WorkerConfigError(f"{src}: composer.url: {exc}") from None
        settings.composer = settings.composers[0] if settings.composers else ""
    for section in ("aws", "gcp", "azure", "generic_s3"):
        for key, value in _table(data, section, src).items():
            if key == "credentials" and not isinstance(value, str):
                raise WorkerConfigError(f"{src}: {section}.credentials: must be a file path string")
    executor = _table(data, "osbuild_executor", src)
    kind = _str(executor, "type", f"{src}: osbuild_executor") or "host"
    if kind not in _EXECUTORS:
        raise WorkerConfigError(f"{src}: osbuild_executor.type: only \"host\" is supported, got {kind!r}")
    return unknown


def validate(settings: WorkerSettings) -> None:
    if not settings.composers and settings.composer:
        settings.composers = [settings.composer]
    if not settings.composers:
        raise WorkerConfigError("no composer: give ADDRESS or --composer URL")
    settings.composer = settings.composers[0]
    if not settings.base_path.startswith("/"):
        raise WorkerConfigError(f"base_path must start with '/', got {settings.base_path!r}")
    settings.base_path = settings.base_path.rstrip("/") or "/"
    if settings.oauth:
        if not settings.client_id:
            raise WorkerConfigError("OAuth: --token-url needs --client-id")
        if bool(settings.client_secret_file) == bool(settings.offline_token_file):
            raise WorkerConfigError("OAuth: give one of --client-secret-file and --offline-token-file")
        if not settings.token_url.startswith(("http://", "https://")):
            raise WorkerConfigError(f"OAuth: token URL must be http(s), got {settings.token_url!r}")
    elif settings.client_id or settings.client_secret_file or settings.offline_token_file:
        raise WorkerConfigError("OAuth: --client-id and the secret need --token-url")
    if settings.poll_interval <= 0:
        raise WorkerConfigError("--poll-interval must be positive")
    if not settings.arch or "/" in settings.arch or ":" in settings.arch:
        raise WorkerConfigError(f"--arch: not an architecture: {settings.arch!r}")
