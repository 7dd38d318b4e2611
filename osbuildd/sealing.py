"""Upload credentials sealed at rest.

A compose's upload targets carry credentials in their options (AWS access keys and session tokens,
Azure storage keys, GCP service-account JSON, ...). Before the build job is stored, every target's
options that hold a secret-looking key are moved into one Fernet token under ``args["sealed"]``;
the row keeps only the non-secret options. The executor unseals them in memory where the upload
runs. When a job ends (finished, failed, canceled, or failed as "interrupted" by crash recovery) the
database drops ``args.sealed`` in the same statement (trigger of migration 0005): a settled job
holds no credential at all.

The key is ``<state_dir>/secrets.key`` (0600), made once, atomically. Remote workers and a second
daemon on the same database need the same key file (the worker API unseals before it hands a job
out).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from osbuildd.common.redact import is_secret_key
from osbuildd.errors import ErrorKind, ServiceError

KEY_NAME = "secrets.key"
SEALED = "sealed"   # the job args key of the token; removed by the database when the job ends


class SealError(ServiceError):
    """The key file is unusable, or a token was sealed with another key: a fault of this daemon's
    state, not of the request."""

    kind = ErrorKind.FAILED
    error_id = "SealError"


def _read_key(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as f:
        if os.fstat(f.fileno()).st_mode & 0o077:
            os.fchmod(f.fileno(), 0o600)   # an older copy left readable
        return f.read().strip()


def _create_key(path: Path) -> None:
    """Write a fresh key beside ``path`` and link it into place: another process that made one
    first wins, and nobody ever reads a half-written key."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, Fernet.generate_key() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class Sealer:
    """Seals and unseals JSON values with the state dir's key."""

    def __init__(self, key: bytes, path: Path) -> None:
        self.path = path
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise SealError(f"{path}: not a Fernet key") from None

    @classmethod
    def open(cls, state_dir: Path) -> Sealer:
        """The state dir's sealer, creating its key on first use. Blocking: use ``asyncio.to_thread``."""
        path = Path(state_dir) / KEY_NAME
        key = _read_key(path)
        if key is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            _create_key(path)
            key = _read_key(path)
        if not key:
            raise SealError(f"{path}: empty key file")
        return cls(key, path)

    def seal(self, value: object) -> str:
        """``value`` (a JSON value) as a token."""
        return self._fernet.encrypt(json.dumps(value).encode()).decode("ascii")

    def unseal(self, token: str) -> object:
        """The JSON value sealed in ``token``; raises SealError."""
        try:
            return json.loads(self._fernet.decrypt(token.encode("ascii")))
        except (InvalidToken, ValueError, AttributeError):
            raise SealError(f"sealed job data cannot be opened with {self.path} "
                            "(the key file was replaced?)") from None


# -- upload targets -----------------------------------------------------------------------------

def has_secret(value: object) -> bool:
    """Whether ``value`` (options, at any depth) holds a non-empty value under a secret-looking key."""
    if isinstance(value, dict):
        return any((isinstance(k, str) and is_secret_key(k) and v not in (None, "")) or has_secret(v)
                   for k, v in value.items())
    if isinstance(value, list):
        return any(has_secret(v) for v in value)
    return False


def strip_secrets(value: object) -> object:
    """``value`` without the secret-looking keys (dropped, not masked: nothing can mistake a mask
    for a credential)."""
    if isinstance(value, dict):
        return {k: strip_secrets(v) for k, v in value.items() if not (isinstance(k, str) and is_secret_key(k))}
    if isinstance(value, list):
        return [strip_secrets(v) for v in value]
    return value


def seal_targets(args: dict[str, Any], sealer: Sealer) -> dict[str, Any]:
    """Move the options of ``args["targets"]`` that hold secrets into ``args["sealed"]`` (in place)."""
    sealed: dict[str, Any] = {}
    for i, target in enumerate(args.get("targets") or []):
        options = target.get("options")
        if has_secret(options):
            sealed[str(i)] = options
            target["options"] = strip_secrets(options)
    if sealed:
        args[SEALED] = sealer.seal({"targets": sealed})
    return args


def unseal_targets(args: dict[str, Any], sealer_for: Callable[[], Sealer]) -> list[dict[str, Any]]:
    """The targets of ``args`` with their whole options back (a copy; ``args`` is left as it is).

    ``sealer_for()`` gives the Sealer (called only when something is sealed). Raises SealError.
    """
    targets: list[dict[str, Any]] = copy.deepcopy(args.get("targets") or [])
    token = args.get(SEALED)
    if not token:
        return targets
    sealed = sealer_for().unseal(token)
    # seal_targets sealed an object (and Fernet tokens cannot be forged): anything else is empty
    opened = (sealed.get("targets") if isinstance(sealed, dict) else None) or {}
    for key, options in opened.items():
        with contextlib.suppress(ValueError, IndexError):
            targets[int(key)]["options"] = options
    return targets
