"""Request validation against the image-builder spec (package data ``openapi.v1.yml``), as upstream's
kin-openapi ``ValidateRequest`` middleware answers it.

Each app compiles, once, one ``Operation`` per (method, route path) under both prefixes: validators
for its path and query parameters (query strings converted to the schema's integer type first) and its
JSON body. A violation is 400 with kin-openapi's wording, e.g. ``request body has an error: doesn't
match schema #/components/schemas/ComposeRequest: Error at "/image_requests": minimum number of items
is 1``; a path id that is not a UUID is 400 (upstream's parameter binder); a non-empty body that is
not ``application/json`` is 415 "request must be json-encoded" (upstream's binder). The parsed body is
kept in the request under ``BODY``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from osbuildd.api import openapi
from osbuildd.common.openapischema import deref, schema_validator

from .context import PREFIXES, ImageBuilderError

__all__ = ["BODY", "OPERATIONS", "body", "operations", "spec", "spec_json", "validate_request"]

SPEC_FILE = "openapi.v1.yml"
BODY = web.RequestKey("imagebuilder_body", object)
METHODS = ("get", "put", "post", "delete", "patch")
_TYPE_NAMES = {"string": "a string", "integer": "an integer", "number": "a number", "object": "an object",
               "array": "an array", "boolean": "a boolean"}


def spec() -> dict[str, Any]:
    """The served spec (parsed once per process; callers must not modify it)."""
    return openapi.load(__package__, SPEC_FILE)


def spec_json() -> bytes:
    return openapi.as_json(__package__, SPEC_FILE)


@dataclass(frozen=True)
class Param:
    name: str
    location: str       # "path" | "query"
    required: bool
    kind: str           # the schema's type ("array": items' type in item_kind)
    item_kind: str
    uuid: bool          # a path parameter of format uuid (checked by upstream's binder)
    validator: Validator


@dataclass(frozen=True)
class Operation:
    params: tuple[Param, ...] = ()
    body: Validator | None = None
    body_ref: str = ""
    body_required: bool = False


def _validator(schema: dict[str, Any], doc: dict[str, Any]) -> Validator:
    return schema_validator(schema, doc.get("components", {}))


def _param(raw: dict[str, Any], doc: dict[str, Any]) -> Param | None:
    p = deref(raw, doc)
    if p.get("in") not in ("path", "query"):
        return None
    schema = deref(p.get("schema", {}), doc)
    items = deref(schema.get("items", {}), doc)
    return Param(p["name"], p["in"], bool(p.get("required", p["in"] == "path")), schema.get("type", ""),
                 items.get("type", ""), p["in"] == "path" and schema.get("format") == "uuid",
                 _validator(dict(p.get("schema", {})), doc))


def _operation(item: dict[str, Any], op: dict[str, Any], doc: dict[str, Any]) -> Operation:
    params = [x for x in (_param(r, doc) for r in [*item.get("parameters", []), *op.get("parameters", [])]) if x]
    body, ref, required = None, "", False
    if "requestBody" in op:
        rb = deref(op["requestBody"], doc)
        schema = rb.get("content", {}).get("application/json", {}).get("schema")
        if schema is not None:
            body, ref, required = _validator(schema, doc), schema.get("$ref", ""), bool(rb.get("required"))
    return Operation(tuple(params), body, ref, required)


def operations(doc: dict[str, Any] | None = None) -> dict[tuple[str, str], Operation]:
    """(METHOD, route path under each prefix) -> Operation, for every spec operation."""
    doc = spec() if doc is None else doc
    table: dict[tuple[str, str], Operation] = {}
    for template, item in doc.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                op = _operation(item, item[method], doc)
                for prefix in PREFIXES:
                    table[(method.upper(), prefix + template)] = op
    return table


OPERATIONS = web.AppKey("imagebuilder_operations", dict)


# -- kin-openapi's wording ------------------------------------------------------------------------

def _reason(e: ValidationError) -> tuple[list[str], str]:
    """(path, reason) of one schema error, worded as kin-openapi words it."""
    path = [str(x) for x in e.absolute_path]
    v, inst = e.validator, e.instance
    value: Any = e.validator_value
    schema: Any = e.schema
    if v == "required":
        missing = next((k for k in value if isinstance(inst, dict) and k not in inst), "")
        return [*path, missing], f'property "{missing}" is missing'
    if v == "additionalProperties" and isinstance(inst, dict):
        known = set(schema.get("properties", {}) if isinstance(schema, dict) else {})
        extra = sorted(k for k in inst if k not in known)
        name = extra[0] if extra else ""
        return [*path, name], f'property "{name}" is unsupported'
    if v == "type":
        if inst is None:
            return path, "Value is not nullable"
        want = value if isinstance(value, str) else "/".join(value)
        return path, f"value must be {_TYPE_NAMES.get(want, want)}"
    simple = {
        "minItems": "minimum number of items is {}", "maxItems": "maximum number of items is {}",
        "minLength": "minimum string length is {}", "maxLength": "maximum string length is {}",
        "minimum": "number must be at least {}", "maximum": "number must be at most {}",
        "pattern": 'string doesn\'t match the regular expression "{}"',
        "format": 'string doesn\'t match the format "{}"',
        "minProperties": "there must be at least {} properties",
        "maxProperties": "there must be at most {} properties",
    }
    if v in simple:
        return path, simple[str(v)].format(value)
    if v == "uniqueItems":
        return path, "duplicate items found"
    if v == "enum":
        return path, f"value is not one of the allowed values {json.dumps(value)}"
    if v == "oneOf":
        if "is valid under each of" in e.message:
            return path, 'value matches more than one schema from "oneOf"'
        return path, 'value doesn\'t match any schema from "oneOf"'
    if v == "anyOf":
        return path, 'value doesn\'t match any schema from "anyOf"'
    return path, e.message


def schema_error(e: ValidationError) -> str:
    path, reason = _reason(e)
    return f'Error at "/{"/".join(path)}": {reason}' if path else reason


# -- the checks -----------------------------------------------------------------------------------

def _bad(text: str) -> ImageBuilderError:
    return ImageBuilderError(400, text)


def _convert(p: Param, raw: str, kind: str) -> Any:
    if kind == "integer":
        try:
            return int(raw, 10)
        except ValueError:
            raise _bad(f'parameter "{p.name}" in {p.location} has an error: value {raw}: '
                       "an invalid integer: invalid syntax") from None
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            raise _bad(f'parameter "{p.name}" in {p.location} has an error: value {raw}: '
                       "an invalid number: invalid syntax") from None
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise _bad(f'parameter "{p.name}" in {p.location} has an error: value {raw}: '
                       "an invalid boolean: invalid syntax")
        return raw == "true"
    return raw


def _check_params(request: web.Request, op: Operation) -> None:
    for p in op.params:
        value: Any
        if p.location == "path":
            raw = request.match_info.get(p.name)
            if raw is None:
                continue
            if p.uuid:
                try:
                    uuid.UUID(raw)
                except ValueError:
                    raise _bad(f"Invalid format for parameter {p.name}: {raw!r} is not a UUID") from None
                continue
            value = _convert(p, raw, p.kind)
        elif p.name not in request.query:
            if p.required:
                raise _bad(f'parameter "{p.name}" in query has an error: value is required but missing')
            continue
        elif p.kind == "array":
            value = [_convert(p, v, p.item_kind) for v in request.query.getall(p.name)]
        else:
            value = _convert(p, request.query[p.name], p.kind)
        err = openapi.first_error(p.validator, value)
        if err is not None:
            raise _bad(f'parameter "{p.name}" in {p.location} has an error: {schema_error(err)}')


async def _check_body(request: web.Request, op: Operation) -> None:
    assert op.body is not None
    raw = await request.read()
    if not raw:
        if op.body_required:
            raise _bad("request body has an error: value is required but missing")
        return
    if request.content_type != "application/json":
        raise ImageBuilderError(415, "request must be json-encoded")
    try:
        parsed = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _bad(f"request body has an error: failed to decode request body: {e}") from None
    err = openapi.first_error(op.body, parsed)
    if err is not None:
        where = f" {op.body_ref}" if op.body_ref else ""
        raise _bad(f"request body has an error: doesn't match schema{where}: {schema_error(err)}")
    request[BODY] = parsed


@web.middleware
async def validate_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check the request against its operation in the spec before the handler runs."""
    resource = request.match_info.route.resource
    if resource is not None:
        op = request.app[OPERATIONS].get((request.method, resource.canonical))
        if op is not None:
            if op.params:
                _check_params(request, op)
            if op.body is not None:
                await _check_body(request, op)
    return await handler(request)


def body(request: web.Request) -> Any:
    """The validated JSON body (None when the operation's body is optional and was not sent)."""
    return request.get(BODY)
