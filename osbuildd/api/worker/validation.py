"""Request bodies checked against the worker API's OpenAPI document (package data ``worker.openapi.yml``).

The spec is read once per process; each app compiles, once, one body validator per operation that
takes JSON (``POST /jobs``, ``PATCH /jobs/{token}``, ``POST /workers``), keyed by (method, route). As
upstream's binder: the ``Content-Type`` header must be exactly ``application/json`` (else 415 id 3),
a body that is not JSON, or not what the operation's schema says, is 400 id 10 with the reason in
``details``. The parsed body is kept in the request (``json_body``). Path parameters are checked by
the handlers (upstream's ids 7, 8 and 17).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from jsonschema.protocols import Validator
from openapi_schema_validator import OAS30WriteValidator

from osbuildd.api import openapi

from .errors import BODY_DECODING, UNSUPPORTED_MEDIA_TYPE, WorkerError

__all__ = ["BODIES", "body_validators", "json_body", "spec", "spec_json", "validate_request"]

BODY = web.RequestKey("worker_body", object)
BODIES = web.AppKey("worker_bodies", dict)   # create_app stores body_validators(base) here
METHODS = ("get", "put", "post", "delete", "patch")


def spec() -> dict[str, Any]:
    """The worker API's OpenAPI document (parsed once per process; callers must not modify it)."""
    return openapi.load(__package__, "worker.openapi.yml")


def spec_json() -> bytes:
    """The spec as JSON (what ``GET /openapi`` answers)."""
    return openapi.as_json(__package__, "worker.openapi.yml")


def body_validators(base: str) -> dict[tuple[str, str], Validator]:
    """(METHOD, base + path template) -> the validator of the operation's JSON body."""
    doc = spec()
    components = doc.get("components", {})
    out: dict[tuple[str, str], Validator] = {}
    for template, item in doc.get("paths", {}).items():
        for method in METHODS:
            schema = (((item.get(method) or {}).get("requestBody") or {}).get("content") or {}) \
                .get("application/json", {}).get("schema")
            if schema is not None:
                v: Validator = OAS30WriteValidator({**schema, "components": components})
                out[(method.upper(), base + template)] = v
    return out


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WorkerError(BODY_DECODING, f"the body is not JSON: {e}") from None


@web.middleware
async def validate_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check a JSON operation's content type and body before its handler runs."""
    resource = request.match_info.route.resource
    if resource is not None:
        v = request.app[BODIES].get((request.method, resource.canonical))
        if v is not None:
            types = request.headers.getall("Content-Type", [])
            if len(types) != 1 or types[0] != "application/json":
                raise WorkerError(UNSUPPORTED_MEDIA_TYPE, f"content type {', '.join(types) or '(none)'!s}"
                                  " is not application/json")
            body = _parse(await request.read())
            err = openapi.first_error(v, body)
            if err is not None:
                where = "/".join(str(x) for x in err.absolute_path) or "(root)"
                raise WorkerError(BODY_DECODING, f"the body does not match the schema: {where}: {err.message}")
            request[BODY] = body
    return await handler(request)


async def json_body(request: web.Request) -> Any:
    """The request's JSON body as validation parsed it."""
    if BODY in request:
        return request[BODY]
    body = _parse(await request.read())
    request[BODY] = body
    return body
