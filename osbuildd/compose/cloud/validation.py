"""A request body checked against the Cloud API's OpenAPI document, as the Cloud API's validation
middleware checks it before any handler runs (upstream's ``ValidateRequest``): the first violation
(by path, then message) is 400 id 30 naming the field's path.

The document ships beside the Cloud API's handlers (``osbuildd/api/cloud/openapi.v2.yml``, served by
its ``GET /openapi``); it is read here as a file, once per process and off the event loop, so this
package needs nothing of the API.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import yaml
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from osbuildd.common.openapischema import deref, schema_validator

from .errors import VALIDATION, CloudRequestError

SPEC = Path(__file__).resolve().parents[2] / "api" / "cloud" / "openapi.v2.yml"


@functools.cache
def _spec() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc = yaml.load(SPEC.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
    assert isinstance(doc, dict)
    return doc


@functools.cache
def _body_validator(template: str, method: str) -> Validator:
    doc = _spec()
    body = deref(doc["paths"][template][method]["requestBody"], doc)
    return schema_validator(body["content"]["application/json"]["schema"], doc.get("components", {}))


_MADE: dict[tuple[str, str], Validator] = {}


async def body_validator(template: str, method: str = "post") -> Validator:
    """The validator of the JSON body of operation ``method template`` (``template`` as the spec's
    paths name it: ``/compose``), made once; the first call reads the spec in a thread."""
    found = _MADE.get((template, method))
    if found is None:
        found = _MADE[(template, method)] = await asyncio.to_thread(_body_validator, template, method)
    return found


def _where(e: ValidationError) -> str:
    return "/".join(str(x) for x in e.absolute_path)


def check_body(validator: Validator, body: Any) -> None:
    """CloudRequestError 30 naming the first violation of ``body``, as the Cloud API answers it."""
    errors = sorted(validator.iter_errors(body), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        err = errors[0]
        raise CloudRequestError(VALIDATION, f"request body has an error: doesn't match schema: "
                                            f"{_where(err) or '(root)'}: {err.message}")
