"""The OpenAPI documents the APIs ship beside their code: parsed once per process, served as JSON."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import yaml
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator


@functools.cache
def load(package: str, name: str) -> dict[str, Any]:
    """The document ``name`` of ``package`` (callers must not modify it)."""
    text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    assert isinstance(doc, dict)
    return doc


@functools.cache
def as_json(package: str, name: str) -> bytes:
    """The document as JSON (what ``GET <base>/openapi`` answers)."""
    return json.dumps(load(package, name)).encode()


def first_error(validator: Validator, value: Any) -> ValidationError | None:
    """The error a request is answered with: the first by path, then message (stable across runs)."""
    errors = sorted(validator.iter_errors(value), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return errors[0] if errors else None
