"""osbuild-composer's own ``osbuild-composer.toml``, read by ``osbuildd serve --composer-config``.

Mapping (etc/osbuildd.toml documents it too):
- ``[koji]``   → ``[cloud]``: allowed_domains, ca, enable_tls, enable_mtls, enable_jwt, jwt_keys_urls,
  jwt_ca_file, jwt_acl_file, jwt_tenant_provider_fields.
- ``[worker]`` → ``[worker_api]``: the same keys, and ``base_path``, ``enable_artifacts``,
  ``request_job_timeout`` and ``worker_heartbeat_timeout`` (Go durations such as ``"20s"``, ``"1h"``).
- ``[distro_aliases]`` → ``[distros] aliases``.
- ``cert`` / ``key`` / ``ca`` of both then default to upstream's fixed files under /etc/osbuild-composer/
  (``composer-crt.pem``, ``composer-key.pem``, ``ca-crt.pem``).
Every other key (``[worker] pg_*``, ``[weldr_api]``, ``dnf-json``,
``log_level``, ...) is not used; ``ignored`` lists their names (never their values), to be logged once.
Keys set in osbuildd.toml win over the ones mapped from here (``osbuildd.config.Config.load(base=)``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osbuildd.config import ConfigError, read_text

DEFAULT_PATH = Path("/etc/osbuild-composer/osbuild-composer.toml")
UPSTREAM_DIR = Path("/etc/osbuild-composer")
FIXED_FILES = {"cert": str(UPSTREAM_DIR / "composer-crt.pem"), "key": str(UPSTREAM_DIR / "composer-key.pem"),
               "ca": str(UPSTREAM_DIR / "ca-crt.pem")}

# upstream key -> the type it must have; the same in [koji] and [worker]
AUTH_KEYS: dict[str, type] = {
    "allowed_domains": list, "ca": str, "enable_tls": bool, "enable_mtls": bool, "enable_jwt": bool,
    "jwt_keys_urls": list, "jwt_ca_file": str, "jwt_acl_file": str, "jwt_tenant_provider_fields": list,
}
SECTIONS = {"koji": "cloud", "worker": "worker_api"}
# [worker]-only keys: name -> type (durations converted to seconds)
WORKER_KEYS: dict[str, type] = {"base_path": str, "enable_artifacts": bool, "request_job_timeout": float,
                                "worker_heartbeat_timeout": float}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float:
    """Seconds of a Go ``time.ParseDuration`` string (``"0"``, ``"20s"``, ``"1h30m"``); ValueError."""
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {text!r} (e.g. \"20s\", \"1h\")")
    return total


@dataclass
class ComposerConfig:
    path: Path
    table: dict[str, Any]                          # osbuildd config keys (Config.load's base)
    ignored: list[str] = field(default_factory=list)


def load(path: str | Path | None) -> ComposerConfig | None:
    """``path`` (``""``: none), else /etc/osbuild-composer/osbuild-composer.toml when it exists."""
    if path == "":
        return None
    if path is None:
        if not DEFAULT_PATH.exists():
            return None
        path = DEFAULT_PATH
    path = Path(path)
    text = read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: syntax: {exc}") from None
    return from_dict(data, path)


def from_dict(data: dict[str, Any], path: Path) -> ComposerConfig:
    out = ComposerConfig(path, {})
    for key, value in data.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: {key}: must be a table")
            out.table[SECTIONS[key]] = _auth_section(value, path, key, out.ignored)
        elif key == "distro_aliases":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ConfigError(f"{path}: distro_aliases: must be a table of strings")
            out.table["distros"] = {"aliases": dict(value)}
        else:
            out.ignored += _leaves(key, value)
    for section in SECTIONS.values():   # upstream's fixed files, also when its table is absent
        out.table.setdefault(section, dict(FIXED_FILES))
    return out


def _auth_section(table: dict[str, Any], path: Path, name: str, ignored: list[str]) -> dict[str, Any]:
    mapped: dict[str, Any] = dict(FIXED_FILES)
    for key, value in table.items():
        if name == "worker" and key in WORKER_KEYS:
            mapped[key] = _worker_key(path, key, value)
            continue
        want = AUTH_KEYS.get(key)
        if want is None:
            ignored += _leaves(f"{name}.{key}", value)
            continue
        ok = isinstance(value, want) and not (want is not bool and isinstance(value, bool))
        if ok and want is list:
            ok = all(isinstance(x, str) for x in value)
        if not ok:
            what = {list: "a list of strings", str: "a string", bool: "a boolean"}[want]
            raise ConfigError(f"{path}: {name}.{key}: must be {what}, got {type(value).__name__} {value!r}")
        mapped[key] = value
    return mapped


def _worker_key(path: Path, key: str, value: Any) -> Any:
    want = WORKER_KEYS[key]
    if want is float:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: worker.{key}: must be a duration string such as \"20s\", got {value!r}")
        try:
            return go_duration(value)
        except ValueError as exc:
            raise ConfigError(f"{path}: worker.{key}: {exc}") from None
    if not isinstance(value, want) or (want is str and isinstance(value, bool)):
        raise ConfigError(f"{path}: worker.{key}: must be a {'string' if want is str else 'boolean'}, got {value!r}")
    return value


def _leaves(prefix: str, value: Any) -> list[str]:
    if isinstance(value, dict) and value:
        return [leaf for k, v in value.items() for leaf in _leaves(f"{prefix}.{k}", v)]
    return [prefix]
