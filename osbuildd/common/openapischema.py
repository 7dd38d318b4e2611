"""The pieces of an OpenAPI 3.0 document every validator of ours needs: following a ``$ref`` and
compiling a schema with the document's components (so its own ``$ref``s resolve). Here, below every
API and the Cloud API's pure logic alike, so each uses one copy."""

from __future__ import annotations

from typing import Any

from jsonschema.protocols import Validator
from openapi_schema_validator import OAS30WriteValidator


def deref(obj: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with its ``$ref`` (and the ``$ref`` of what that names, ...) followed inside ``doc``."""
    while "$ref" in obj:
        node: Any = doc
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def schema_validator(schema: dict[str, Any], components: dict[str, Any]) -> Validator:
    """The validator of one of the document's schemas (``components`` for its ``$ref``s)."""
    v: Validator = OAS30WriteValidator({**schema, "components": components})
    return v
