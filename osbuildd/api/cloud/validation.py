"""Request validation against the Cloud API's OpenAPI document (upstream's ``ValidateRequest``).

The spec (package data ``openapi.v2.yml``) is read once per process; each app compiles, once, one
``Operation`` per (method, path template) with validators for its path and query parameters and its
JSON body. The middleware looks the matched route's operation up in a dict: a route outside the spec
(``/status``) or an operation with nothing to check costs one lookup. A violation is 400 id 30 with the
validator's message and the field's path in ``details``; a body that is not JSON is id 30 as well (what
upstream's validator answers before any handler could report id 20); a body that is not
``application/json`` is 415 id 3. The parsed body is kept in the request under ``BODY``; handlers read
it with ``json_body``.

The ``{id}`` path parameters are not format-checked here: ``context.compose_id`` answers a non-UUID
with id 14, as upstream's handlers do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from osbuildd.api import openapi
from osbuildd.common.openapischema import deref, schema_validator
from osbuildd.compose.cloud.validation import check_body

from .errors import BASE, UNSUPPORTED_MEDIA_TYPE, VALIDATION, CloudError

__all__ = ["BODY", "OPERATIONS", "json_body", "operations", "spec", "spec_json", "validate_request"]

BODY = web.RequestKey("cloud_body", object)
_NO_BODY = object()
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
UNCHECKED_FORMAT = frozenset({"id"})   # path params whose format a handler checks (id 14)


def spec() -> dict[str, Any]:
    """The Cloud API's OpenAPI document (parsed once per process; callers must not modify it)."""
    return openapi.load(__package__, "openapi.v2.yml")


def spec_json() -> bytes:
    """The spec as JSON (what ``GET /openapi`` answers)."""
    return openapi.as_json(__package__, "openapi.v2.yml")


@dataclass(frozen=True)
class Param:
    name: str
    location: str       # "path" | "query"
    required: bool
    array: bool
    validator: Validator


@dataclass(frozen=True)
class Operation:
    method: str
    template: str       # spec path, e.g. "/composes/{id}"
    params: tuple[Param, ...] = ()
    body: Validator | None = None
    body_required: bool = False
    trivial: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "trivial", not self.params and self.body is None)


def _param(raw: dict[str, Any], doc: dict[str, Any]) -> Param | None:
    p = deref(raw, doc)
    if p.get("in") not in ("path", "query"):
        return None
    schema = dict(deref(p.get("schema", {}), doc))
    if p["in"] == "path" and p["name"] in UNCHECKED_FORMAT:
        schema.pop("format", None)
    return Param(p["name"], p["in"], bool(p.get("required", p["in"] == "path")), schema.get("type") == "array",
                 schema_validator(schema, doc.get("components", {})))


def _operation(method: str, template: str, path_item: dict[str, Any], op: dict[str, Any],
               doc: dict[str, Any]) -> Operation:
    params = [x for x in (_param(r, doc) for r in [*path_item.get("parameters", []), *op.get("parameters", [])]) if x]
    body, required = None, False
    if "requestBody" in op:
        rb = deref(op["requestBody"], doc)
        schema = rb.get("content", {}).get("application/json", {}).get("schema")
        if schema is not None:
            body, required = schema_validator(schema, doc.get("components", {})), bool(rb.get("required"))
    # a path parameter whose schema a string always satisfies needs no check at all
    params = [p for p in params if not (p.location == "path" and p.validator.is_valid(""))]
    return Operation(method.upper(), template, tuple(params), body, required)


def operations(doc: dict[str, Any] | None = None) -> dict[tuple[str, str], Operation]:
    """(METHOD, full route path as aiohttp's canonical form) → Operation, for every spec operation."""
    doc = spec() if doc is None else doc
    table: dict[tuple[str, str], Operation] = {}
    for template, item in doc.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                op = _operation(method, template, item, item[method], doc)
                table[(op.method, BASE + template)] = op
                if op.method == "GET":
                    table[("HEAD", BASE + template)] = op
    return table


OPERATIONS = web.AppKey("cloud_operations", dict)   # create_app stores operations() here


def _where(e: ValidationError) -> str:
    return "/".join(str(x) for x in e.absolute_path)


def _check_params(request: web.Request, op: Operation) -> None:
    for p in op.params:
        value: Any
        if p.location == "path":
            present, value = p.name in request.match_info, request.match_info.get(p.name)
        else:
            present = p.name in request.query
            value = request.query.getall(p.name) if p.array and present else request.query.get(p.name)
        if not present:
            if p.required:
                raise CloudError(VALIDATION, f"parameter {p.name!r} in {p.location} is required")
            continue
        err = openapi.first_error(p.validator, value)
        if err is not None:
            where = f"{p.name}/{_where(err)}" if _where(err) else p.name
            raise CloudError(VALIDATION, f"parameter {p.name!r} in {p.location} has an error: {where}: {err.message}")


async def _check_body(request: web.Request, op: Operation) -> None:
    assert op.body is not None
    raw = await request.read()
    if not raw:
        if op.body_required:
            raise CloudError(VALIDATION, "request body has an error: value is required but missing")
        return
    if request.content_type != "application/json":
        raise CloudError(UNSUPPORTED_MEDIA_TYPE, f"content type {request.content_type!r} is not application/json")
    body = _parse(raw)
    check_body(op.body, body)   # the message the in-process composer gives as well
    request[BODY] = body


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CloudError(VALIDATION, f"request body has an error: failed to decode request body: {e}") from None


@web.middleware
async def validate_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check the request against its operation in the spec before the handler runs."""
    route = request.match_info.route
    resource = route.resource
    if resource is not None:
        op = request.app[OPERATIONS].get((request.method, resource.canonical))
        if op is not None and not op.trivial:
            if op.params:
                _check_params(request, op)
            if op.body is not None:
                await _check_body(request, op)
    return await handler(request)


async def json_body(request: web.Request) -> Any:
    """The request's JSON body: the one validation parsed, else parsed now (id 30 if it is not JSON)."""
    body = request.get(BODY, _NO_BODY)
    if body is not _NO_BODY:
        return body
    body = _parse(await request.read())
    request[BODY] = body
    return body
