"""osbuildd's configuration: one TOML file loaded into typed dataclasses.

Every key and its default is documented in ``etc/osbuildd.toml``. Unknown keys and wrong types are
errors (``ConfigError("<file>: <key>: <message>")``) so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from osbuildd.common import datasizes
from osbuildd.errors import ErrorKind, ServiceError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

DEFAULT_PATH = Path("/etc/osbuildd/osbuildd.toml")
ENV_VAR = "OSBUILDD_CONFIG"

class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


# the config fields stay plain strings (a TOML value, checked against these in _validate)
LOG_LEVELS = tuple(v.value for v in LogLevel)
LOG_FORMATS = tuple(v.value for v in LogFormat)
class ConfigError(ServiceError, ValueError):
    """A configuration problem, worded ``<file>: <key>: <message>`` (one line)."""

    kind = ErrorKind.INVALID
    error_id = "ConfigError"


def parse_size(text: str | int) -> int:
    """Bytes of a size such as ``"20GiB"``, ``"20Gi"``, ``"500MB"`` or ``1048576`` (one parser:
    ``osbuildd.common.datasizes``)."""
    return datasizes.parse(text)


@dataclass(frozen=True)
class Listen:
    """Where an API listens: ``host:port`` (TCP) or ``unix:/path``."""

    host: str | None = None
    port: int | None = None
    path: Path | None = None

    @classmethod
    def parse(cls, text: str) -> Listen:
        if text.startswith("unix:"):
            path = text[5:]
            if not path.startswith("/"):
                raise ValueError(f"unix socket path must be absolute: {text!r}")
            return cls(path=Path(path))
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected \"host:port\" or \"unix:/path\", got {text!r}")
        return cls(host=host.strip("[]") or "0.0.0.0", port=int(port))

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"


@dataclass
class WeldrConfig:
    socket: Path = Path("/run/weldr/api.socket")
    max_body_size: int = 16 * 1024 * 1024


@dataclass
class ListenerConfig:
    listen: str = ""  # "host:port" or "unix:/path"; empty = not started

    @property
    def address(self) -> Listen | None:
        return Listen.parse(self.listen) if self.listen else None


# The server's own certificate (upstream: fixed /etc/osbuild-composer/composer-{crt,key}.pem);
# `osbuildd gen-certs /etc/osbuildd` writes these files.
DEFAULT_CERT = "/etc/osbuildd/composer-crt.pem"
DEFAULT_KEY = "/etc/osbuildd/composer-key.pem"
DEFAULT_CA = "/etc/osbuildd/ca-crt.pem"


@dataclass
class SecureListenerConfig(ListenerConfig):
    """``[cloud]`` / ``[worker_api]``: a listener with upstream's ``[koji]`` / ``[worker]`` TLS and
    authentication keys (same names, same defaults, same semantics; etc/osbuildd.toml)."""

    cert: str = DEFAULT_CERT
    key: str = field(default=DEFAULT_KEY, repr=False)
    ca: str = DEFAULT_CA            # client certificates' CA; "" = the system trust store (as upstream)
    enable_tls: bool = True
    enable_mtls: bool = True
    allowed_domains: list[str] = field(default_factory=list)
    enable_jwt: bool = False
    jwt_keys_urls: list[str] = field(default_factory=list)
    jwt_ca_file: str = ""
    jwt_acl_file: str = ""
    # upstream's built-in default is empty (every token refused with 28); its deployments set this
    jwt_tenant_provider_fields: list[str] = field(default_factory=lambda: ["rh-org-id"])

    @property
    def local(self) -> bool:
        """A ``unix:`` listener: never TLS, never authenticated (Identity "local")."""
        addr = self.address
        return addr is not None and addr.path is not None

    @property
    def mtls(self) -> bool:
        return self.enable_tls and self.enable_mtls

    def validate(self, fail: Callable[[str, str], None], name: str) -> None:
        if self.local:
            return   # TLS and auth keys do not apply
        if self.enable_tls:
            for key in ("cert", "key"):
                if not getattr(self, key):
                    fail(f"{name}.{key}", "must be set when enable_tls = true (the server's certificate)")
            if self.enable_mtls == self.enable_jwt:
                fail(f"{name}.enable_mtls",
                     "with enable_tls = true exactly one of enable_mtls or enable_jwt must be true")
        if self.enable_jwt:
            if not self.jwt_keys_urls:
                fail(f"{name}.jwt_keys_urls", "must list at least one JWKS URL or file when enable_jwt = true")
            for url in self.jwt_keys_urls:
                if not (url.startswith(("https://", "file:///")) or url.startswith("/")):
                    fail(f"{name}.jwt_keys_urls", f"must be https:// URLs or absolute file paths, got {url!r}")
            if not any(self.jwt_tenant_provider_fields):
                fail(f"{name}.jwt_tenant_provider_fields", "must name at least one claim when enable_jwt = true")


@dataclass
class WorkerAPIConfig(SecureListenerConfig):
    """``[worker_api]``: upstream's ``[worker]`` keys (TLS/auth as ``[cloud]``, and these; times in
    seconds; osbuild-composer.toml's Go durations such as ``"20s"`` are converted by composerconfig)."""

    base_path: str = "/api/worker/v1"
    request_job_timeout: float = 0       # POST /jobs long-poll; 0 = until a job comes (upstream)
    enable_artifacts: bool = True
    worker_heartbeat_timeout: float = 3600.0   # workers silent this long are dropped (upstream 1h)
    # osbuildd additions (upstream's fixed values; lower them only in tests)
    job_timeout: float = 120.0           # a remote job whose token was not polled this long is requeued
    job_watch_interval: float = 30.0     # how often that is checked
    worker_watch_interval: float = 300.0   # how often silent workers are dropped

    def validate(self, fail: Callable[[str, str], None], name: str) -> None:
        super().validate(fail, name)
        if not self.base_path.startswith("/") or self.base_path.endswith("/") or len(self.base_path) < 2:
            fail(f"{name}.base_path", f"must start with / and not end with /, got {self.base_path!r}")
        for key in ("request_job_timeout", "worker_heartbeat_timeout", "job_timeout", "job_watch_interval",
                    "worker_watch_interval"):
            value = getattr(self, key)
            if value < 0 or (key != "request_job_timeout" and value == 0):
                fail(f"{name}.{key}", f"must be a positive number of seconds, got {value!r}")


@dataclass
class ImageBuilderConfig(ListenerConfig):
    """``[image_builder]``: image-builder-crc's settings (its environment variables, applied over these
    keys by :func:`apply_image_builder_env`; see ``IMAGE_BUILDER_ENV`` and etc/osbuildd.toml)."""

    log_level: str = ""              # "" = the daemon's log_level
    allowed_org_ids: list[str] = field(default_factory=lambda: ["*"])   # "*" = any organisation
    distributions_dir: str = ""      # "" = the distributions shipped with osbuildd
    quota_file: str = ""             # "" = no quota
    allow_file: str = ""             # "" = restricted distributions for nobody
    # PostgreSQL (pg_host "" = the daemon's own database, osbuildd.db)
    pg_host: str = ""
    pg_port: int = 5432
    pg_database: str = "imagebuilder"
    pg_user: str = "postgres"
    pg_password: str = field(default="", repr=False)
    pg_sslmode: str = "prefer"
    # where builds go: "" = the in-process compose service; else a composer's Cloud API (https://...)
    osbuild_url: str = ""
    composer_token_url: str = ""
    composer_offline_token: str = field(default="", repr=False)
    composer_client_id: str = ""
    composer_client_secret: str = field(default="", repr=False)
    osbuild_cert_path: str = ""
    osbuild_key_path: str = ""
    osbuild_ca_path: str = ""        # "" = the system trust store
    # upload defaults image-builder puts in the Cloud API requests
    aws_region: str = ""
    gcp_region: str = ""
    gcp_bucket: str = ""
    azure_location: str = ""
    # osbuildd extensions: the web UI at "/" of this listener (identity from X-Rh-Identity as for the
    # API), and Weldr's ?test=1|2 fake composes on POST .../compose (tests only)
    web: bool = False
    test_composes: bool = False

    def validate(self, fail: Callable[[str, str], None], name: str) -> None:
        if self.log_level and self.log_level not in LOG_LEVELS:
            fail(f"{name}.log_level", f"must be \"\" or one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        if any(not org for org in self.allowed_org_ids):
            fail(f"{name}.allowed_org_ids", "must not contain empty strings")
        for key in ("distributions_dir", "quota_file", "allow_file", "osbuild_cert_path", "osbuild_key_path",
                    "osbuild_ca_path"):
            value = getattr(self, key)
            if value and not value.startswith("/"):
                fail(f"{name}.{key}", f"must be an absolute path, got {value!r}")
        if not 0 < self.pg_port < 65536:
            fail(f"{name}.pg_port", f"must be a port number, got {self.pg_port!r}")
        for key in ("osbuild_url", "composer_token_url"):
            value = getattr(self, key)
            if value and not value.startswith(("https://", "http://")):
                fail(f"{name}.{key}", f"must be an http(s):// URL, got {value!r}")
        if bool(self.osbuild_cert_path) != bool(self.osbuild_key_path):
            fail(f"{name}.osbuild_cert_path", "osbuild_cert_path and osbuild_key_path must be set together")
        if self.composer_client_secret and not self.composer_client_id:
            fail(f"{name}.composer_client_id", "must be set with composer_client_secret")
        if (self.composer_offline_token or self.composer_client_id) and not self.composer_token_url:
            fail(f"{name}.composer_token_url",
                 "must be set with composer_offline_token or composer_client_id (the OAuth2 token endpoint)")


WEB_MODES = ("local", "hosted")


@dataclass
class WebConfig(ListenerConfig):
    """``[web]``: the web UI and the image-builder API beside it. Local mode injects one built-in
    organisation's identity for every request, so it may only listen where nobody else can connect
    (loopback, a unix socket) unless an authenticating proxy is in front (``trust_proxy``)."""

    mode: str = "local"
    org_id: str = "000000"
    account_number: str = "000000"
    user: str = "local"
    trust_proxy: bool = False
    static_dir: str = ""     # "" = the UI built into the package (osbuildd/web/static)

    def validate(self, fail: Callable[[str, str], None], name: str) -> None:
        if self.mode not in WEB_MODES:
            fail(f"{name}.mode", f"must be one of {', '.join(WEB_MODES)}, got {self.mode!r}")
        for key in ("org_id", "account_number", "user"):
            if not getattr(self, key):
                fail(f"{name}.{key}", "must not be empty")
        if self.static_dir and not self.static_dir.startswith("/"):
            fail(f"{name}.static_dir", f"must be an absolute path, got {self.static_dir!r}")
        addr = self.address
        if (self.mode == "local" and addr is not None and addr.host is not None and not self.trust_proxy
                and not is_loopback(addr.host)):
            fail(f"{name}.listen", f"{self.listen!r} is not a loopback address: local mode gives anyone who "
                 "connects the built-in organisation (listen on 127.0.0.1 or set trust_proxy = true behind "
                 "an authenticating proxy)")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# image-builder-crc's environment variables and the [image_builder] key each overrides. Names from
# its internal/config (today's) and the deployments of its earlier releases (OSBUILD_URL, OSBUILD_CERT_PATH,
# ALLOWED_ORG_IDS, ...); where both spell one setting, either works (the later in this table wins).
IMAGE_BUILDER_ENV: dict[str, str] = {
    "LISTEN_ADDRESS": "listen",
    "LOG_LEVEL": "log_level",
    "ALLOWED_ORG_IDS": "allowed_org_ids",      # ";"-separated, as upstream
    "DISTRIBUTIONS_DIR": "distributions_dir",
    "QUOTA_FILE": "quota_file",
    "ALLOW_FILE": "allow_file",
    "PGHOST": "pg_host",
    "PGPORT": "pg_port",
    "PGDATABASE": "pg_database",
    "PGUSER": "pg_user",
    "PGPASSWORD": "pg_password",
    "PGSSLMODE": "pg_sslmode",
    "COMPOSER_URL": "osbuild_url",
    "OSBUILD_URL": "osbuild_url",
    "COMPOSER_TOKEN_URL": "composer_token_url",
    "COMPOSER_OFFLINE_TOKEN": "composer_offline_token",
    "COMPOSER_CLIENT_ID": "composer_client_id",
    "COMPOSER_CLIENT_SECRET": "composer_client_secret",
    "OSBUILD_CERT_PATH": "osbuild_cert_path",
    "OSBUILD_KEY_PATH": "osbuild_key_path",
    "COMPOSER_CA_PATH": "osbuild_ca_path",
    "OSBUILD_CA_PATH": "osbuild_ca_path",
    "OSBUILD_AWS_REGION": "aws_region",
    "OSBUILD_GCP_REGION": "gcp_region",
    "OSBUILD_GCP_BUCKET": "gcp_bucket",
    "OSBUILD_AZURE_LOCATION": "azure_location",
}

# upstream's LOG_LEVEL values (logrus / slog names, any case) -> ours
_IB_LOG_LEVELS = {"trace": "debug", "debug": "debug", "info": "info", "warn": "warning", "warning": "warning",
                  "error": "error", "fatal": "error", "panic": "error"}


def apply_image_builder_env(config: ImageBuilderConfig, environ: Mapping[str, str] | None = None,
                            ) -> tuple[ImageBuilderConfig, list[str]]:
    """``config`` with image-builder's environment variables applied (a set variable wins over the key,
    even when empty, as upstream's loader does), and the names of those that were set. Raises
    ConfigError ``<environment>: <VARIABLE>: <message>``."""
    env = os.environ if environ is None else environ
    src = "<environment>"
    values: dict[str, Any] = {}
    applied: list[str] = []
    for var, key in IMAGE_BUILDER_ENV.items():
        if var not in env:
            continue
        raw = env[var]
        applied.append(var)
        if key == "allowed_org_ids":
            values[key] = raw.split(";") if raw else []
        elif key == "pg_port":
            if not raw.strip().isdigit():
                raise ConfigError(f"{src}: {var}: must be a port number, got {raw!r}")
            values[key] = int(raw)
        elif key == "log_level":
            if raw and raw.lower() not in _IB_LOG_LEVELS:
                raise ConfigError(f"{src}: {var}: must be one of {', '.join(_IB_LOG_LEVELS)}, got {raw!r}")
            values[key] = _IB_LOG_LEVELS.get(raw.lower(), "")
        else:
            values[key] = raw
    out = dataclasses.replace(config, **values)

    def fail(key: str, message: str) -> None:
        names = [v for v, k in IMAGE_BUILDER_ENV.items() if f"image_builder.{k}" == key]
        if set(names) & set(applied):
            raise ConfigError(f"{src}: {[n for n in names if n in applied][-1]}: {message}")
        raise ConfigError(f"<config>: {key} ({' or '.join(names)}): {message}")

    try:
        out.address  # noqa: B018 - parsing is the check
    except ValueError as exc:
        fail("image_builder.listen", str(exc))
    out.validate(fail, "image_builder")
    return out, applied


# upstream's [distro_aliases] defaults (cmd/osbuild-composer/config.go)
DEFAULT_DISTRO_ALIASES = {"rhel-8": "rhel-8.10", "rhel-9": "rhel-9.6", "rhel-10": "rhel-10.0"}


@dataclass
class BuilderConfig:
    osbuild: str = "auto"  # "auto": upstream osbuild from PATH if present, else osbuildd-engine
    max_parallel: int = 1
    local_executor: bool = True
    cache_max_size: str = "20GiB"
    stage_timeout: float = 0  # seconds, 0 = none
    # download a waiting build's curl sources into the store once its manifest is known (local executor)
    prefetch: bool = True
    # where repository `file:` URLs may point (empty: none) and where signed_by/gpgkey paths may be
    local_repo_dirs: list[str] = field(default_factory=list)
    keyring_dirs: list[str] = field(default_factory=lambda: ["/usr/share/keyrings", "/etc/apt/keyrings",
                                                              "/etc/pki/rpm-gpg"])

    @property
    def cache_max_bytes(self) -> int:
        return parse_size(self.cache_max_size)


@dataclass
class DistrosConfig:
    host: str = ""  # overrides /etc/os-release detection, e.g. "debian-12"
    # distribution name -> the distribution it stands for; the file's entries are merged onto these
    aliases: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_DISTRO_ALIASES))


@dataclass
class AwsConfig:
    credentials: str = field(default="", repr=False)  # path to an AWS shared credentials file
    region: str = ""
    bucket: str = ""


@dataclass
class GcpConfig:
    credentials: str = field(default="", repr=False)  # path to a service account JSON file
    bucket: str = ""
    region: str = ""


@dataclass
class AzureConfig:
    credentials: str = field(default="", repr=False)  # path to a TOML/JSON file with client id/secret


@dataclass
class DatabaseConfig:
    """``[database]``: empty ``url`` = the embedded SQLite file ``<state_dir>/osbuildd.db``;
    ``postgresql://user:password@host:port/dbname`` = a PostgreSQL shared by every daemon."""
    url: str = field(default="", repr=False)   # may carry a password
    pool_size: int = 10

    @property
    def is_postgresql(self) -> bool:
        return self.url.startswith(("postgresql://", "postgres://"))


@dataclass
class ResultsConfig:
    """``[results]``: where compose results (images, logs, metadata) live. Empty ``dir`` =
    ``<state_dir>/results``; several daemons on one database point it at one shared directory
    (NFS or similar), so every daemon serves every compose's files."""
    dir: str = ""


def read_text(path: Path) -> str:
    """A configuration file's text, or ConfigError in one line naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc.reason}") from None


@dataclass
class Config:
    state_dir: Path = Path("/var/lib/osbuildd")
    log_level: str = "info"
    log_format: str = "auto"
    weldr: WeldrConfig = field(default_factory=WeldrConfig)
    cloud: SecureListenerConfig = field(default_factory=SecureListenerConfig)
    image_builder: ImageBuilderConfig = field(default_factory=ImageBuilderConfig)
    worker_api: WorkerAPIConfig = field(default_factory=WorkerAPIConfig)
    builder: BuilderConfig = field(default_factory=BuilderConfig)
    distros: DistrosConfig = field(default_factory=DistrosConfig)
    aws: AwsConfig = field(default_factory=AwsConfig)
    gcp: GcpConfig = field(default_factory=GcpConfig)
    azure: AzureConfig = field(default_factory=AzureConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    results: ResultsConfig = field(default_factory=ResultsConfig)
    web: WebConfig = field(default_factory=WebConfig)
    # where the config came from (None = built-in defaults); not a key of the file
    source: Path | None = field(default=None, compare=False)

    # -- the state directory layout (docs/CONTRACTS.md "State directory") --
    @property
    def db_path(self) -> Path:
        return self.state_dir / "osbuildd.db"

    @property
    def store_dir(self) -> Path:
        return self.state_dir / "store"

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    @property
    def results_dir(self) -> Path:
        return Path(self.results.dir) if self.results.dir else self.state_dir / "results"

    @property
    def tmp_dir(self) -> Path:
        return self.state_dir / "tmp"

    @classmethod
    def load(cls, path: str | Path | None = None, *, base: dict[str, Any] | None = None,
             base_source: str | Path = "") -> Config:
        """Load ``path``, else ``$OSBUILDD_CONFIG``, else /etc/osbuildd/osbuildd.toml if it exists,
        else the built-in defaults. ``base``: keys from elsewhere (osbuild-composer.toml, see
        osbuildd.composerconfig) that the file's own keys override."""
        if path is None and os.environ.get(ENV_VAR):
            path = os.environ[ENV_VAR]
        if path is None:
            if not DEFAULT_PATH.exists():
                return cls.from_dict(base or {}, source=f"<{base_source}>" if base else "<config>")
            path = DEFAULT_PATH
        path = Path(path)
        text = read_text(path)
        return cls.from_toml(text, source=path, base=base, base_source=base_source)

    @classmethod
    def from_toml(cls, text: str, source: str | Path = "<config>", *, base: dict[str, Any] | None = None,
                  base_source: str | Path = "") -> Config:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: syntax: {exc}") from None
        if not base:
            return cls.from_dict(data, source=source)
        config = cls.from_dict(_merged(base, data), source=f"{source} (with {base_source})")
        config.source = Path(source) if not str(source).startswith("<") else None
        return config

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | Path = "<config>") -> Config:
        config = _build(cls, data, str(source), "")
        config.source = Path(source) if not str(source).startswith("<") else None
        config._validate(str(source))
        return config

    @classmethod
    def embedded(cls, state_dir: str | Path, *, base: dict[str, Any] | None = None,
                 base_source: str | Path = "") -> Config:
        """The default for a local state folder (``osbuildd build``, ``make run``): everything under
        ``state_dir``, the Weldr socket at ``<state_dir>/api.socket``, no network listeners."""
        state = Path(state_dir).absolute()
        config = cls.from_dict(base, source=f"<{base_source}>") if base else cls()
        config.state_dir, config.weldr = state, WeldrConfig(socket=state / "api.socket")
        return config

    def _validate(self, src: str) -> None:
        def fail(key: str, message: str) -> None:
            raise ConfigError(f"{src}: {key}: {message}")

        if self.log_level not in LOG_LEVELS:
            fail("log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        if self.log_format not in LOG_FORMATS:
            fail("log_format", f"must be one of {', '.join(LOG_FORMATS)}, got {self.log_format!r}")
        if not self.state_dir.is_absolute():
            fail("state_dir", f"must be an absolute path, got {str(self.state_dir)!r}")
        if not self.weldr.socket.is_absolute():
            fail("weldr.socket", f"must be an absolute path, got {str(self.weldr.socket)!r}")
        if self.weldr.max_body_size <= 0:
            fail("weldr.max_body_size", "must be positive")
        for name in ("cloud", "image_builder", "worker_api", "web"):
            try:
                getattr(self, name).address  # noqa: B018 - parsing is the check
            except ValueError as exc:
                fail(f"{name}.listen", str(exc))
        self.cloud.validate(fail, "cloud")
        self.worker_api.validate(fail, "worker_api")
        self.image_builder.validate(fail, "image_builder")
        self.web.validate(fail, "web")
        if self.database.url and not self.database.is_postgresql:
            fail("database.url", "must be empty (SQLite in the state directory) or a postgresql:// URL")
        if self.database.pool_size < 1:
            fail("database.pool_size", "must be at least 1")
        if self.results.dir and not self.results.dir.startswith("/"):
            fail("results.dir", f"must be an absolute path, got {self.results.dir!r}")
        if self.builder.max_parallel < 1:
            fail("builder.max_parallel", "must be at least 1")
        if self.builder.stage_timeout < 0:
            fail("builder.stage_timeout", "must not be negative (0 = no timeout)")
        if self.builder.osbuild != "auto" and not self.builder.osbuild.startswith("/"):
            fail("builder.osbuild", f"must be \"auto\" or an absolute path, got {self.builder.osbuild!r}")
        for key in ("local_repo_dirs", "keyring_dirs"):
            if any(not d.startswith("/") for d in getattr(self.builder, key)):
                fail(f"builder.{key}", "must be absolute paths")
        try:
            self.builder.cache_max_bytes  # noqa: B018 - parsing is the check
        except ValueError as exc:
            fail("builder.cache_max_size", str(exc))


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over``'s keys win; tables merge key by key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


T = TypeVar("T", bound="DataclassInstance")

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", Path: "a path string"}


def _build(cls: type[T], data: object, src: str, prefix: str) -> T:
    """Instantiate dataclass ``cls`` from a TOML table, checking keys and types on the way."""
    where = prefix.rstrip(".") or "(top level)"
    if not isinstance(data, dict):
        raise ConfigError(f"{src}: {where}: must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    values: dict[str, Any] = {}
    for key, value in data.items():
        full = prefix + key
        if key not in fields:
            raise ConfigError(f"{src}: {full}: unknown key")
        hint = hints[key]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, src, full + ".")
        else:
            values[key] = _coerce(hint, value, src, full)
            factory = fields[key].default_factory
            if isinstance(values[key], dict) and not isinstance(factory, dataclasses._MISSING_TYPE):
                values[key] = {**factory(), **values[key]}   # merged onto the defaults (as upstream)
    return cls(**values)


def _coerce(hint: Any, value: Any, src: str, key: str) -> Any:
    if typing.get_origin(hint) is dict:   # a table of strings (e.g. [distros.aliases])
        if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            return dict(value)
        raise ConfigError(f"{src}: {key}: must be a table of strings, got {value!r}")
    if typing.get_origin(hint) is list:
        if isinstance(value, list) and all(isinstance(x, str) for x in value):
            return list(value)
        raise ConfigError(f"{src}: {key}: must be a list of strings, got {value!r}")
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for t in allowed:
        if t is bool and isinstance(value, bool):
            return value
        if isinstance(value, bool):
            continue  # TOML true is not an integer here
        if t is int and isinstance(value, int):
            return value
        if t is float and isinstance(value, int | float):
            return float(value)
        if t is str and isinstance(value, str):
            return value
        if t is Path and isinstance(value, str):
            return Path(value)
    names = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in allowed)
    if str in allowed and int in allowed:
        names = "a string or an integer"
    raise ConfigError(f"{src}: {key}: must be {names}, got {type(value).__name__} {value!r}")
