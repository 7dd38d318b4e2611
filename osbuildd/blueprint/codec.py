"""Generic dataclass <-> JSON/TOML codec that follows Go's encoding rules as upstream uses them.

Every model field carries its wire key and whether it is ``omitempty`` (see :func:`fld`). Decoding
ignores unknown keys as Go does (they are collected so that ``validate()`` can warn about typos),
matches keys case-insensitively as Go does, and turns type mismatches into :class:`BlueprintError`
naming the field. Encoding keeps the struct order and drops empty ``omitempty`` fields; a field typed
``X | None`` is a Go pointer, so only ``None`` counts as empty there (``fips = false`` is kept).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import MISSING, field, fields, is_dataclass
from functools import cache
from typing import Any, TypeVar

from osbuildd.common import datasizes

from .errors import BlueprintError

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# field declaration


def fld(key: str, *, omit: bool = True, default: Any = MISSING, factory: Any = MISSING,
        size: bool = False) -> Any:
    """A model field with its wire ``key``; ``omit`` = Go ``omitempty``; ``size`` = a data size that
    is read from an integer (bytes) or a string such as ``"2 GiB"`` and written as an integer."""
    md = {"key": key, "omitempty": omit, "size": size}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=md)
    if default is MISSING:
        default = None
    return field(default=default, metadata=md)


@dataclasses.dataclass
class DecodeContext:
    fmt: str                      # "json" | "toml": chooses the wording of type errors
    unknown: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class _FieldInfo:
    name: str
    key: str
    omitempty: bool
    size: bool
    tp: Any
    optional: bool               # declared ``X | None``: a Go pointer


@cache
def _field_infos(cls: type) -> tuple[_FieldInfo, ...]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        if "key" not in f.metadata:
            continue
        tp, optional = _strip_optional(hints[f.name])
        out.append(_FieldInfo(f.name, f.metadata["key"], f.metadata["omitempty"], f.metadata["size"],
                              tp, optional))
    return tuple(out)


@cache
def _key_index(cls: type) -> tuple[dict[str, _FieldInfo], dict[str, _FieldInfo]]:
    infos = _field_infos(cls)
    return {i.key: i for i in infos}, {i.key.lower(): i for i in infos}


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    if _is_union(tp):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) != len(typing.get_args(tp))
        if len(args) == 1:
            return args[0], optional
        return typing.Union[tuple(args)], optional  # noqa: UP007 - a runtime union of the rest
    return tp, False


def _is_union(tp: object) -> bool:
    return isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union


# ---------------------------------------------------------------------------------------------
# data sizes ("2 GiB", "500MiB", 1024) as osbuild/images datasizes parses them

def parse_size(text: str) -> int:
    """Bytes of a size string (upstream's datasizes units, see ``osbuildd.common.datasizes``)."""
    return datasizes.parse(text)


# ---------------------------------------------------------------------------------------------
# decoding


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _go_type(tp: object, size: bool = False) -> str:
    if size:
        return "uint64"
    if tp is str:
        return "string"
    if tp is bool:
        return "bool"
    if tp is int:
        return "int"
    if tp is float:
        return "float64"
    if typing.get_origin(tp) is list:
        (inner,) = typing.get_args(tp)
        return "[]" + _go_type(inner)
    if isinstance(tp, type) and is_dataclass(tp):
        return "blueprint." + tp.__name__
    return "interface {}"


def _json_kind(v: object) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _toml_kind(v: object) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "table"
    return "datetime"


def type_error(ctx: DecodeContext, owner: type, path: str, v: object, tp: object, size: bool = False) -> BlueprintError:
    """Go's wording for a value of the wrong type (json.UnmarshalTypeError / BurntSushi's)."""
    gotype = _go_type(tp, size)
    dotted = re.sub(r"\[\d+\]", "", path)
    if ctx.fmt == "json":
        msg = f"json: cannot unmarshal {_json_kind(v)} into Go struct field {owner.__name__}.{dotted} of type {gotype}"
    else:
        msg = (f"toml: (last key {dotted!r}): incompatible types: TOML value has type {_toml_kind(v)};"
               f" destination has type {gotype}")
    return BlueprintError(path, msg)


def decode(cls: type[T], data: object, path: str, ctx: DecodeContext) -> T:
    """Build ``cls`` (a model dataclass) from parsed JSON/TOML ``data``."""
    if not isinstance(data, dict):
        raise type_error(ctx, cls, path or cls.__name__, data, cls)
    raw: dict[str, Any] = data
    pre = getattr(cls, "_pre_decode", None)
    if pre is not None:
        raw = pre(raw, path, ctx)
    model: type = cls   # the plain ``type`` the cached helpers are keyed by
    exact, folded = _key_index(model)
    kwargs: dict[str, Any] = {}
    for k, v in raw.items():
        info = exact.get(k) or folded.get(k.lower())
        if info is None:
            ctx.unknown.append(join(path, k))
            continue
        if v is None:  # JSON null leaves the zero value, as in Go
            continue
        kwargs[info.name] = _decode_value(info.tp, v, join(path, info.key), ctx, cls, info.size)
    obj = cls(**kwargs)
    post = getattr(obj, "_post_decode", None)
    if post is not None:
        post(raw, path, ctx)
    return obj


def _decode_value(tp: Any, v: Any, path: str, ctx: DecodeContext, owner: type, size: bool = False) -> Any:
    if size:
        if isinstance(v, bool):
            raise type_error(ctx, owner, path, v, tp, size)
        if isinstance(v, float) and v.is_integer() and 0 <= v < 2**64:
            return int(v)
        if isinstance(v, int) and 0 <= v < 2**64:
            return v
        if isinstance(v, str):
            try:
                return parse_size(v)
            except ValueError as e:
                raise BlueprintError(path, f"{path} is not a valid size: {e}") from None
        raise type_error(ctx, owner, path, v, tp, size)
    if tp is Any:
        return v
    if tp is str:
        if not isinstance(v, str):
            raise type_error(ctx, owner, path, v, tp)
        return v
    if tp is bool:
        if not isinstance(v, bool):
            raise type_error(ctx, owner, path, v, tp)
        return v
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int) or not -(2**63) <= v < 2**63:
            raise type_error(ctx, owner, path, v, tp)
        return v
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise type_error(ctx, owner, path, v, tp)
        return float(v)
    if typing.get_origin(tp) is list:
        if not isinstance(v, list):
            raise type_error(ctx, owner, path, v, tp)
        (inner,) = typing.get_args(tp)
        return [_decode_value(inner, item, f"{path}[{i}]", ctx, owner) for i, item in enumerate(v)]
    if isinstance(tp, type) and is_dataclass(tp):
        return decode(tp, v, path, ctx)
    if _is_union(tp):  # scalar unions such as owner = user name or uid
        for alt in typing.get_args(tp):
            if alt is int and isinstance(v, int) and not isinstance(v, bool):
                return v
            if alt is str and isinstance(v, str):
                return v
            if alt is bool and isinstance(v, bool):
                return v
        raise type_error(ctx, owner, path, v, tp)
    raise TypeError(f"unsupported model type {tp!r} at {path}")  # a bug in the model, not input


# ---------------------------------------------------------------------------------------------
# encoding


@cache
def _encode_plan(cls: type) -> tuple[tuple[str, str, bool, bool, int, Any], ...]:
    """Per class: (attribute, key, omitempty, pointer, kind, zero) with kind 0 scalar, 1 struct,
    2 list of structs, 3 list of scalars, 4 free-form (Any)."""
    plan = []
    for info in _field_infos(cls):
        tp = info.tp
        is_list = typing.get_origin(tp) is list
        if is_dataclass(tp):
            kind = 1
        elif is_list and is_dataclass(typing.get_args(tp)[0]):
            kind = 2
        elif is_list:
            kind = 3
        elif tp is Any or _is_union(tp):
            kind = 4
        else:
            kind = 0
        zero = [] if is_list else _zero(tp)
        plan.append((info.name, info.key, info.omitempty, info.optional, kind, zero))
    return tuple(plan)


def encode(obj: object) -> dict[str, Any]:
    """Upstream's JSON object for a model dataclass: struct order, Go ``omitempty``; a pointer
    (``X | None``) is empty only when None."""
    out: dict[str, Any] = {}
    model: type = type(obj)
    for name, key, omitempty, optional, kind, zero in _encode_plan(model):
        v = getattr(obj, name)
        if v is None:
            if omitempty or optional:
                continue
            v = zero
        elif omitempty and not optional and not v:
            continue  # Go's empty value: false, 0, "", empty list (a struct is never empty here)
        if kind == 1:
            v = encode(v)
        elif kind == 2:
            v = [encode(x) for x in v]
        elif kind == 3:
            v = list(v)
        elif kind == 4:
            v = _encode_value(v)
        out[key] = v
    return out


def _zero(tp: Any) -> Any:
    return {str: "", int: 0, bool: False, float: 0.0}.get(tp)


def _encode_value(v: Any) -> Any:
    """A free-form value: copied so that callers never share it with the model."""
    if is_dataclass(v) and not isinstance(v, type):
        return encode(v)
    if isinstance(v, list):
        return [_encode_value(x) for x in v]
    if isinstance(v, dict):
        return {k: _encode_value(x) for k, x in v.items()}
    return v


# ---------------------------------------------------------------------------------------------
# TOML writer: BurntSushi/toml's layout with Indent="" (what upstream's API returns)

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


def _toml_key(k: str) -> str:
    return k if _BARE_KEY.match(k) else _toml_str(k)


def _toml_str(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_scalar(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if v == v and v not in (float("inf"), float("-inf")) else "nan"
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_scalar(x) for x in v) + "]"
    if isinstance(v, dict):  # a table inside an inline array
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_scalar(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _is_table_array(v: object) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(isinstance(x, dict) for x in v)


def dumps_toml(doc: dict[str, Any]) -> str:
    lines: list[str] = []
    _write_table(lines, [], doc, header=None)
    return "\n".join(lines) + ("\n" if lines else "")


def _write_table(lines: list[str], path: list[str], table: dict[str, Any], header: str | None,
                 blank: bool = False) -> None:
    if header is not None:
        # BurntSushi puts a blank line before top-level tables and before every [[array]] entry,
        # but not before nested [a.b] tables
        if blank and lines:
            lines.append("")
        lines.append(header)
    # plain keys first, then sub-tables and arrays of tables, each group in struct order
    for k, v in table.items():
        if v is None or isinstance(v, dict) or _is_table_array(v):
            continue
        lines.append(f"{_toml_key(k)} = {_toml_scalar(v)}")
    for k, v in table.items():
        sub = path + [_toml_key(k)]
        if isinstance(v, dict):
            _write_table(lines, sub, v, "[" + ".".join(sub) + "]", blank=len(sub) == 1)
        elif _is_table_array(v):
            for item in v:
                _write_table(lines, sub, item, "[[" + ".".join(sub) + "]]", blank=True)
