"""The blueprint model: upstream's ``pkg/blueprint`` Blueprint with TOML/JSON parsing and writing,
``Initialize`` (defaults, semver, password hashing, package names) and compose-time validation."""

from __future__ import annotations

import json
import pickle
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from .codec import DecodeContext, decode, dumps_toml, encode, fld
from .customizations import Customizations
from .errors import BlueprintError
from .validation import (
    bump_patch,
    check_name,
    crypt_password,
    password_is_crypted,
    semver_error,
    validate_customizations,
)


@dataclass
class Package:
    name: str = fld("name", omit=False, default="")
    version: str = fld("version", default="")

    def name_version(self) -> str:
        """``name`` or ``name-version``; ``*`` and "" mean any version (upstream's ToNameVersion)."""
        if self.version in ("", "*"):
            return self.name
        return f"{self.name}-{self.version}"


@dataclass
class EnabledModule:
    name: str = fld("name", omit=False, default="")
    stream: str = fld("stream", default="")


@dataclass
class Group:
    name: str = fld("name", omit=False, default="")


@dataclass
class Container:
    source: str = fld("source", default="")
    name: str = fld("name", default="")
    tls_verify: bool | None = fld("tls-verify")
    local_storage: bool = fld("local-storage", default=False)


@dataclass
class Blueprint:
    name: str = fld("name", omit=False, default="")
    description: str = fld("description", default="")
    version: str = fld("version", default="")
    packages: list[Package] = fld("packages", omit=False, factory=list)
    modules: list[Package] = fld("modules", omit=False, factory=list)
    enabled_modules: list[EnabledModule] = fld("enabled_modules", omit=False, factory=list)
    groups: list[Group] = fld("groups", omit=False, factory=list)
    containers: list[Container] = fld("containers", factory=list)
    customizations: Customizations | None = fld("customizations")
    distro: str = fld("distro", default="")
    arch: str = fld("architecture", default="")
    minimal: bool = fld("minimal", default=False)   # upstream: experimental
    # keys that were not part of the schema (Go ignores them; validate() warns about them)
    unknown_keys: list[str] | None = field(default=None, compare=False, repr=False)

    # ------------------------------------------------------------------ parsing

    @classmethod
    def from_dict(cls, data: dict[str, Any], fmt: str = "json") -> Blueprint:
        ctx = DecodeContext(fmt)
        bp = decode(cls, data, "", ctx)
        bp.unknown_keys = ctx.unknown
        return bp

    @classmethod
    def from_json(cls, data: str | bytes | dict[str, Any]) -> Blueprint:
        """Parse upstream's JSON blueprint. Syntax errors carry Go's wording where it is known."""
        if isinstance(data, dict):
            return cls.from_dict(data, "json")
        try:
            parsed = json.loads(data)
        except json.JSONDecodeError as e:
            raise BlueprintError("", _json_syntax_message(e)) from None
        except UnicodeDecodeError:
            raise BlueprintError("", "invalid character in JSON: not UTF-8") from None
        except RecursionError:
            raise BlueprintError("", "exceeded max depth") from None
        if not isinstance(parsed, dict):
            kind = {list: "array", str: "string", bool: "bool"}.get(type(parsed), "number")
            raise BlueprintError("", f"json: cannot unmarshal {kind} into Go value of type blueprint.Blueprint")
        return cls.from_dict(parsed, "json")

    @classmethod
    def from_toml(cls, text: str | bytes) -> Blueprint:
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise BlueprintError("", "toml: invalid UTF-8") from None
        try:
            parsed = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise BlueprintError("", _toml_syntax_message(text, e)) from None
        except RecursionError:
            raise BlueprintError("", "toml: exceeded max depth") from None
        return cls.from_dict(parsed, "toml")

    # ------------------------------------------------------------------ writing

    def to_dict(self) -> dict[str, Any]:
        """Upstream's JSON object: struct order, omitempty as upstream."""
        return encode(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    def to_toml(self) -> str:
        """TOML as upstream's API writes it (BurntSushi encoder, no indentation, ``packages = []``)."""
        return dumps_toml(self.to_dict())

    def copy(self) -> Blueprint:
        """A deep copy (pickle round trip: plain data, and faster than copy.deepcopy)."""
        copied: Blueprint = pickle.loads(pickle.dumps(self, pickle.HIGHEST_PROTOCOL))
        return copied

    # ------------------------------------------------------------------ upstream Initialize()

    def initialize(self) -> None:
        """Defaults, semver check, password hashing, package names — upstream's ``Initialize``."""
        if not self.name:
            raise BlueprintError("name", "empty blueprint name not allowed")
        if self.version == "":
            self.version = "0.0.0"
        err = semver_error(self.version)
        if err is not None:
            raise BlueprintError("version", f"Invalid 'version', must use Semantic Versioning: {err}")
        if self.customizations is not None:
            for i, user in enumerate(self.customizations.user):
                if user.password is None:
                    continue
                if user.password == "":  # an empty password is "no password", not a hash of ""
                    user.password = None
                elif not password_is_crypted(user.password):
                    try:
                        user.password = crypt_password(user.password)
                    except Exception as e:  # noqa: BLE001 - reported as upstream does
                        raise BlueprintError(f"customizations.user[{i}].password",
                                             f"Error hashing passwords: {e}") from None
        for i, pkg in enumerate(self.packages):
            if pkg.name == "":
                if pkg.version == "":
                    detail = f"Entry #{i + 1} has no name."
                else:
                    detail = f"Entry #{i + 1} has version '{pkg.version}' but no name."
                raise BlueprintError(f"packages[{i}].name",
                                     f"All package entries need to contain the name of the package. {detail}")

    def check_name(self) -> None:
        """The name rule of the Weldr API (``^[a-zA-Z0-9._-]+$``); upstream answers InvalidChars."""
        check_name(self.name)

    def bump_version(self, old: str) -> None:
        """Upstream's BumpVersion: ``old`` with patch + 1; an old version that is not semver keeps ours."""
        bumped = bump_patch(old)
        if bumped is not None:
            self.version = bumped

    # ------------------------------------------------------------------ validation at compose time

    def validate(self) -> list[str]:
        """Raise BlueprintError for customizations upstream rejects when a manifest is made
        (repositories, disk, ignition, installer, ISO, CA certificates, firewall ports, users ...).
        Returns warnings: keys that are not part of the schema (likely typos, ignored as upstream)."""
        if self.customizations is not None:
            validate_customizations(self.customizations)
        return [f"unknown key {k!r} ignored" for k in (self.unknown_keys or [])]

    # ------------------------------------------------------------------ depsolve helpers

    def package_specs(self) -> list[str]:
        """What to depsolve, as upstream's GetPackagesEx(bootable=False): packages and modules as
        ``name`` / ``name-version`` (globs kept), groups as ``@group``. The kernel is the image type's
        business: see :meth:`kernel_name`."""
        specs = [p.name_version() for p in self.packages]
        specs += [m.name_version() for m in self.modules]
        specs += ["@" + g.name for g in self.groups]
        return specs

    def kernel_name(self) -> str | None:
        """``customizations.kernel.name`` when the blueprint picks a kernel package, else None."""
        c = self.customizations
        if c is not None and c.kernel is not None and c.kernel.name:
            return c.kernel.name
        return None

    def enabled_module_specs(self) -> list[str]:
        return [f"{m.name}:{m.stream}" for m in self.enabled_modules]

    def __repr__(self) -> str:
        return f"Blueprint(name={self.name!r}, version={self.version!r}, distro={self.distro!r})"


_TOML_POS = re.compile(r"^(?P<msg>.*) \((?:at line (?P<line>\d+), column \d+|at end of document)\)$")
_LAST_KEY = re.compile(r"^\s*([A-Za-z0-9_.\"-]+)\s*=")


def _toml_syntax_message(text: str, e: tomllib.TOMLDecodeError) -> str:
    """BurntSushi's layout: ``toml: line N (last key "k"): <what>``."""
    m = _TOML_POS.match(str(e))
    if not m:
        return f"toml: {e}"
    msg = m.group("msg")
    lines = text.splitlines() or [""]
    lineno = int(m.group("line")) if m.group("line") else len(lines)
    at_end = m.group("line") is None
    key = _LAST_KEY.match(lines[min(lineno, len(lines)) - 1])
    where = f"line {lineno}" + (f' (last key "{key.group(1)}")' if key else "")
    if at_end and msg == "Invalid value":
        return f"toml: {where}: unexpected EOF; expected value"
    return f"toml: {where}: {msg[:1].lower()}{msg[1:]}"


def _json_syntax_message(e: json.JSONDecodeError) -> str:
    # Go's decoder says "unexpected EOF" for a truncated document; keep that wording (API tests use it)
    if e.pos >= len(e.doc.rstrip()) or "Unterminated string" in e.msg:
        return "unexpected EOF"
    ch = e.doc[e.pos] if e.pos < len(e.doc) else ""
    return f"invalid character {ch!r} {_json_context(e)} (line {e.lineno} column {e.colno})"


def _json_context(e: json.JSONDecodeError) -> str:
    if "Expecting property name" in e.msg:
        return "looking for beginning of object key string"
    if "Expecting ',' delimiter" in e.msg:
        return "after object key:value pair"
    if "Expecting ':' delimiter" in e.msg:
        return "after object key"
    if "Extra data" in e.msg:
        return "after top-level value"
    return "looking for beginning of value"
