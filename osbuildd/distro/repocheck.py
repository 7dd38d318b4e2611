"""Repository fields checked before apt or dnf sees them, and the apt line built from typed fields.

Every entry point (Weldr sources, compose requests, distro data, the apt/dnf depsolvers, the Debian
manifest) calls these checks, so a field can never carry a second line, an apt `[option]` or a file
outside the configured directories. `configure()` is called once from the config at start-up.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import unquote, urlsplit

from osbuildd.errors import ErrorKind, ServiceError

if TYPE_CHECKING:
    from osbuildd.distro import Repository

# what the checks read: a Repository, or a JSON object with the same field names (a Weldr source
# passes its fields this way, with ``url`` for ``baseurl``)
RepoLike: TypeAlias = "Repository | Mapping[str, object]"

DEFAULT_KEYRING_DIRS = ("/usr/share/keyrings", "/etc/apt/keyrings", "/etc/pki/rpm-gpg")
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

_local_repo_dirs: tuple[str, ...] = ()
_keyring_dirs: tuple[str, ...] = DEFAULT_KEYRING_DIRS

# RFC 3986 characters minus the ones apt's one-line format treats specially ([ ] " #) and no spaces.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?@!$&'()*+,;=%]+")
# Debian suites and components: archive path words (sources.list(5)); "/" only inside, no "..".
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~_/-]*")
_SUITE = re.compile(r"[A-Za-z0-9./][A-Za-z0-9.+~_/-]*")   # "./" = a flat repository
_ARMOR_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
_ARMOR_END = "-----END PGP PUBLIC KEY BLOCK-----"
_ARMOR_HEADER = re.compile(r"[A-Za-z][A-Za-z0-9-]*: [\x20-\x7e]*")
_B64_LINE = re.compile(r"[A-Za-z0-9+/=]+")


class RepoCheckError(ServiceError, ValueError):
    """A repository field that breaks the grammar; ``field`` names it, str() is the message."""

    kind = ErrorKind.INVALID
    error_id = "ProjectsError"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"'{field}' {message}", field=field)


def configure(local_repo_dirs: Iterable[str] = (), keyring_dirs: Iterable[str] = DEFAULT_KEYRING_DIRS) -> None:
    """Set the directories `file:` URLs and key paths may name ([builder] local_repo_dirs, keyring_dirs)."""
    global _local_repo_dirs, _keyring_dirs
    _local_repo_dirs = tuple(str(d) for d in local_repo_dirs)
    _keyring_dirs = tuple(str(d) for d in keyring_dirs)


def allow_local_dir(path: str) -> None:
    """Add a directory for `file:` URLs (a repository the operator named on the command line)."""
    global _local_repo_dirs
    if path.startswith("/") and ".." not in path.split("/") and path not in _local_repo_dirs:
        _local_repo_dirs = (*_local_repo_dirs, path)


def _no_controls(value: str, field: str) -> None:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise RepoCheckError(field, "must not contain newlines or control characters")


def _inside(path: str, dirs: Sequence[str], field: str, what: str) -> str:
    """The resolved path if it lies inside one of ``dirs`` (symlinks resolved), else an error."""
    if not path.startswith("/"):
        raise RepoCheckError(field, f"must be an absolute path, got {path!r}")
    if ".." in path.split("/"):
        raise RepoCheckError(field, f"must not contain '..', got {path!r}")
    if not dirs:
        raise RepoCheckError(field, f"names {path!r} but no {what} is configured")
    real = os.path.realpath(path)
    for d in dirs:
        base = os.path.realpath(d)
        if real == base or real.startswith(base.rstrip("/") + "/"):
            return real
    raise RepoCheckError(field, f"must be inside {', '.join(dirs)} ({what}), got {path!r}")


def _image_path(path: str, field: str) -> str:
    """A path inside the image being built: absolute, canonical, no `..` (never resolved on the host)."""
    if not path.startswith("/") or ".." in path.split("/") or any(ch.isspace() or ch in '[]"' for ch in path):
        raise RepoCheckError(field, f"must be an absolute path without '..', spaces or brackets, got {path!r}")
    return path


def check_url(value: object, field: str = "url", *, allow_file: bool = True, on_host: bool = True) -> str:
    """http(s) URL, or a `file:` URL under [builder] local_repo_dirs (``on_host=False``: a URL the
    built image uses, whose file: path names a file of the image)."""
    if not isinstance(value, str) or not value:
        raise RepoCheckError(field, "must be a non-empty string")
    _no_controls(value, field)
    parts = urlsplit(value)
    # brackets only as an IPv6 host literal
    rest = value.replace(parts.netloc, "", 1) if parts.netloc.startswith("[") else value
    if not _URL_CHARS.fullmatch(rest):
        raise RepoCheckError(field, f"contains characters not allowed in a repository URL: {value!r}")
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise RepoCheckError(field, f"has no host: {value!r}")
        return value
    if scheme == "file" and allow_file:
        if parts.netloc not in ("", "localhost"):
            raise RepoCheckError(field, f"file: URLs name no host, got {value!r}")
        path = unquote(parts.path)
        _no_controls(path, field)
        if on_host:
            _inside(path, _local_repo_dirs, field, "[builder] local_repo_dirs")
        else:
            _image_path(path, field)
        return value
    raise RepoCheckError(field, f"must be an http, https or file: URL, got {value!r}")


def check_suite(value: object, field: str = "suite") -> str:
    if not isinstance(value, str) or not value:
        raise RepoCheckError(field, "must be a non-empty string")
    _no_controls(value, field)
    if not _SUITE.fullmatch(value) or ".." in value.split("/") or len(value) > 128:
        raise RepoCheckError(field, f"is not a Debian suite name (letters, digits, . + ~ _ - /): {value!r}")
    return value


def check_components(value: object, suite: str = "", field: str = "components") -> list[str]:
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise RepoCheckError(field, "must be a list of strings")
    for c in value:
        _no_controls(c, field)
        if not _WORD.fullmatch(c) or ".." in c.split("/") or len(c) > 128:
            raise RepoCheckError(field, f"is not a Debian component name (one word each): {c!r}")
    if suite.endswith("/") and value:
        raise RepoCheckError(field, "must be empty for a flat repository (suite ending in '/')")
    return value


def is_armoured(text: str) -> bool:
    return text.lstrip().startswith("-----BEGIN PGP")


def check_armoured_key(text: str, field: str) -> str:
    """One or more ASCII-armoured OpenPGP public key blocks (RFC 4880 §6.2), nothing else between them."""
    blocks = re.findall(re.escape(_ARMOR_BEGIN) + r".*?" + re.escape(_ARMOR_END), text, re.DOTALL)
    rest = re.sub(re.escape(_ARMOR_BEGIN) + r".*?" + re.escape(_ARMOR_END), "", text, flags=re.DOTALL)
    if not blocks or rest.strip():
        raise RepoCheckError(field, "is not an ASCII-armoured OpenPGP public key block")
    for block in blocks:
        _check_block(block, field)
    return text


def _check_block(text: str, field: str) -> None:
    """One armoured block whose first packet is a public key (tag 6)."""
    lines = text.strip().replace("\r\n", "\n").split("\n")
    if len(lines) < 3 or lines[0].strip() != _ARMOR_BEGIN or lines[-1].strip() != _ARMOR_END:
        raise RepoCheckError(field, "is not an ASCII-armoured OpenPGP public key block")
    body = lines[1:-1]
    while body and _ARMOR_HEADER.fullmatch(body[0]):
        body = body[1:]
    if body and body[0].strip() == "":
        body = body[1:]
    if body and body[-1].startswith("=") and len(body[-1]) == 5:
        body = body[:-1]  # CRC-24 line
    if not body or not all(_B64_LINE.fullmatch(ln.strip()) for ln in body):
        raise RepoCheckError(field, "is not an ASCII-armoured OpenPGP public key block (bad base64 body)")
    try:
        data = base64.b64decode("".join(ln.strip() for ln in body), validate=True)
    except (binascii.Error, ValueError):
        raise RepoCheckError(field, "is not an ASCII-armoured OpenPGP public key block (bad base64)") from None
    # packet tag: old format bits 5..2, new format bits 5..0; 6 = public key
    if not data or not data[0] & 0x80:
        raise RepoCheckError(field, "does not hold an OpenPGP packet")
    tag = data[0] & 0x3F if data[0] & 0x40 else (data[0] >> 2) & 0x0F
    if tag != 6:
        raise RepoCheckError(field, "does not start with an OpenPGP public key packet")


def check_keyring_path(value: str, field: str = "signed_by", *, must_exist: bool = True) -> str:
    _no_controls(value, field)
    if any(ch.isspace() or ch in '[]"' for ch in value):
        raise RepoCheckError(field, f"must be a path without spaces or brackets, got {value!r}")
    real = _inside(value, _keyring_dirs, field, "[builder] keyring_dirs")
    if must_exist and not os.path.isfile(real):
        raise RepoCheckError(field, f"names no keyring file: {value!r}")
    return value


def check_signed_by(value: object, field: str = "signed_by", *, must_exist: bool = True) -> str:
    if not isinstance(value, str) or not value:
        raise RepoCheckError(field, "must be a non-empty string")
    if is_armoured(value):
        return check_armoured_key(value, field)
    return check_keyring_path(value, field, must_exist=must_exist)


def check_gpgkey(value: object, field: str = "gpgkeys") -> str:
    """RPM gpgkey: armoured key text, an http(s) URL, or a file: URL under the keyring/local repo dirs."""
    if not isinstance(value, str) or not value:
        raise RepoCheckError(field, "must be a non-empty string")
    if is_armoured(value):
        return check_armoured_key(value, field)
    if value.startswith("/"):
        return check_keyring_path(value, field)
    if urlsplit(value).scheme.lower() == "file":
        _no_controls(value, field)
        path = unquote(urlsplit(value).path)
        _inside(path, _keyring_dirs + _local_repo_dirs, field, "[builder] keyring_dirs or local_repo_dirs")
        return value
    return check_url(value, field, allow_file=False)


def check_id(value: object, field: str = "id") -> str:
    if not isinstance(value, str) or not value:
        raise RepoCheckError(field, "must be a non-empty string")
    _no_controls(value, field)
    if any(ch.isspace() or ch in "[]/" for ch in value) or ".." in value:
        raise RepoCheckError(field, f"must not contain spaces, brackets, '/' or '..': {value!r}")
    return value


def check_name(value: object, field: str = "name") -> str:
    if not isinstance(value, str):
        raise RepoCheckError(field, "must be a string")
    _no_controls(value, field)
    return value


def _get(repo: RepoLike, name: str, default: object = None) -> object:
    value = repo.get(name, default) if isinstance(repo, Mapping) else getattr(repo, name, default)
    return default if value is None else value


def _values(value: object, field: str) -> list[object]:
    """A field holding one string or a list of them, as a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    raise RepoCheckError(field, "must be a string or a list of strings")


def check_deb(repo: RepoLike, *, prefix: str = "", url_field: str = "baseurl", must_exist: bool = True) -> None:
    """A Debian repository (Repository, dict, or Weldr SourceConfig with ``url_field="url"``)."""
    check_id(_get(repo, "id", "x"), prefix + "id")
    check_name(_get(repo, "name", ""), prefix + "name")
    for u in _values(_get(repo, url_field, []), prefix + url_field):
        check_url(u, prefix + url_field)
    suite = check_suite(_get(repo, "suite", ""), prefix + "suite")
    check_components(_get(repo, "components", []), suite, prefix + "components")
    if _get(repo, "signed_by", ""):
        check_signed_by(_get(repo, "signed_by"), prefix + "signed_by", must_exist=must_exist)
    for key in _values(_get(repo, "gpgkeys", []), prefix + "gpgkeys"):
        check_signed_by(key, prefix + "gpgkeys", must_exist=must_exist)


def check_rpm(repo: RepoLike, *, prefix: str = "") -> None:
    check_id(_get(repo, "id", "x"), prefix + "id")
    check_name(_get(repo, "name", ""), prefix + "name")
    for u in _values(_get(repo, "baseurl", []), prefix + "baseurl"):
        check_url(u, prefix + "baseurl")
    for name in ("metalink", "mirrorlist"):
        if _get(repo, name, ""):
            check_url(_get(repo, name), prefix + name)
    for key in _values(_get(repo, "gpgkeys", []), prefix + "gpgkeys"):
        check_gpgkey(key, prefix + "gpgkeys")


def check(repo: Repository) -> None:
    """A compose's repository, Debian (it has a suite) or RPM."""
    if repo.suite is not None:
        check_deb(repo)
    else:
        check_rpm(repo)


def deb_keyring(repo: RepoLike) -> str:
    """What apt verifies the repository with: signed_by, else the first key, else Debian's archive
    keyring when check_gpg is set; "" = an explicitly unsigned repository (check_gpg false)."""
    signed_by = _get(repo, "signed_by", "")
    if signed_by:
        return str(signed_by)
    keys = _values(_get(repo, "gpgkeys", []), "gpgkeys")
    if keys:
        return str(keys[0])
    return DEBIAN_KEYRING if _get(repo, "check_gpg", False) else ""


def apt_line(url: str, suite: str, components: Sequence[str], keyring_path: str) -> str:
    """One sources.list line from checked fields; ``keyring_path`` "" gives ``[trusted=yes]``."""
    check_url(url, "baseurl")
    check_suite(suite)
    check_components(list(components), suite)
    if keyring_path:
        _no_controls(keyring_path, "signed_by")
        bad = any(ch.isspace() or ch in '[]"' for ch in keyring_path) or ".." in keyring_path.split("/")
        if bad or not keyring_path.startswith("/"):
            raise RepoCheckError("signed_by", f"cannot be written into an apt line: {keyring_path!r}")
        opts = f"signed-by={keyring_path}"
    else:
        opts = "trusted=yes"
    return " ".join(["deb", f"[{opts}]", url, suite, *components])


def check_image_repo(r: dict[str, Any], family: str, prefix: str) -> None:
    """A blueprint `customizations.repositories` entry, written into the image's apt/yum config."""
    check_id(r.get("id") or "", prefix + "id")
    check_name(r.get("name") or "", prefix + "name")
    if r.get("filename"):
        check_id(r["filename"], prefix + "filename")
    for u in r.get("baseurls") or []:
        check_url(u, prefix + "baseurls", on_host=False)
    for key in ("metalink", "mirrorlist"):
        if r.get(key):
            check_url(r[key], prefix + key, allow_file=False)
    for k in r.get("gpgkeys") or []:
        if not isinstance(k, str) or not k:
            raise RepoCheckError(prefix + "gpgkeys", "must be a non-empty string")
        if is_armoured(k):
            check_armoured_key(k, prefix + "gpgkeys")
        elif family == "debian" or k.startswith("/"):
            _no_controls(k, prefix + "gpgkeys")
            _image_path(k, prefix + "gpgkeys")
        else:
            check_url(k, prefix + "gpgkeys", on_host=False)


def keyring_dirs() -> tuple[str, ...]:
    return _keyring_dirs


def local_repo_dirs() -> tuple[str, ...]:
    return _local_repo_dirs


__all__ = ["DEBIAN_KEYRING", "DEFAULT_KEYRING_DIRS", "RepoCheckError", "apt_line", "check_armoured_key",
           "check_components", "check_deb", "check_gpgkey", "check_id", "check_name", "check_rpm",
           "check_signed_by", "check_suite", "check_url", "configure", "deb_keyring"]
