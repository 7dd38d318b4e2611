"""Schema validation of v2 manifests: the top-level schema plus every module's own schema.

Module schemas are upstream's ``<type>.meta.json`` files: stages beside their code in ``stages/``,
sources, inputs, devices and mounts under ``schemas/<kind>/``. Errors carry the absolute path of the
offending value in the manifest, as upstream's ``ValidationResult`` does.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, TypedDict

import jsonschema

ENGINE_DIR = Path(__file__).resolve().parent
STAGES_DIR = ENGINE_DIR / "stages"
SCHEMAS_DIR = ENGINE_DIR / "schemas"
KINDS = ("stages", "sources", "inputs", "devices", "mounts")


class SchemaError(TypedDict):
    """One problem, upstream's shape: ``path`` leads to the offending value in the manifest."""

    message: str
    path: list[str | int]


class ValidationFailed(Exception):
    def __init__(self, errors: list[SchemaError]) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self.errors = errors

    def as_json(self) -> dict[str, Any]:
        return {"type": "https://osbuild.org/validation-error", "title": "JSON Schema validation failed",
                "success": False, "errors": self.errors}


def meta_path(kind: str, name: str) -> Path:
    if kind == "stages":
        return STAGES_DIR / f"{name}.meta.json"
    return SCHEMAS_DIR / kind / f"{name}.meta.json"


@functools.cache
def load_meta(kind: str, name: str) -> dict[str, Any] | None:
    """The module's meta.json, or None when the engine has no such module."""
    if "/" in name or name.startswith("."):
        return None
    path = meta_path(kind, name)
    if kind == "stages":
        code = STAGES_DIR / (name.replace(".", "_").replace("-", "_") + ".py")
        if not code.is_file():
            return None
    try:
        meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return meta


@functools.cache
def _validator(kind: str, name: str) -> jsonschema.Draft4Validator | None:
    meta = load_meta(kind, name)
    if meta is None:
        return None
    if kind == "stages":
        spec = meta.get("schema_2")
        if spec is None:  # v1-only stage: its schema describes the options
            spec = {"options": meta.get("schema", {})}
        spec = dict(spec)
        definitions = dict(spec.pop("definitions", None) or {})
        # some upstream schemas keep "definitions" inside "options" but refer to them as
        # "#/definitions/...": hoist them to the root of the composed schema
        for key, sub in list(spec.items()):
            if isinstance(sub, dict) and "definitions" in sub:
                sub = dict(sub)
                definitions.update(sub.pop("definitions"))
                spec[key] = sub
        props: dict[str, Any] = {"type": {"enum": [name]}}
        props["options"] = {"type": "object", "additionalProperties": False}
        props.update(spec)
        schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "required": ["type"],
                                  "properties": props}
        if definitions:
            schema["definitions"] = definitions
    elif kind == "mounts":
        schema = meta.get("schema_2") or meta.get("schema") or {}
    else:
        schema = meta.get("schema") or meta.get("schema_2") or {}
    return jsonschema.Draft4Validator(schema)


@functools.cache
def _top_validator() -> jsonschema.Draft4Validator:
    schema = json.loads((SCHEMAS_DIR / "osbuild2.json").read_text(encoding="utf-8"))
    return jsonschema.Draft4Validator(schema)


def _errors(validator: jsonschema.Draft4Validator, instance: object, prefix: list[str | int]) -> list[SchemaError]:
    out: list[SchemaError] = []
    try:
        found = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    except Exception as exc:  # a broken module schema: report it at the module, never crash
        return [{"message": f"schema error: {exc}", "path": prefix}]
    for e in found:
        out.append({"message": e.message, "path": prefix + list(e.absolute_path)})
    return out


def _module(kind: str, name: object, instance: object, prefix: list[str | int], what: str) -> list[SchemaError]:
    if not isinstance(name, str):
        return []  # the top-level schema already reports it
    v = _validator(kind, name)
    if v is None:
        return [{"message": f"unknown {what} type '{name}'", "path": prefix + ["type"]}]
    return _errors(v, instance, prefix)


def validate(raw: object) -> dict[str, Any]:
    """The manifest, once it is valid; else raise ValidationFailed listing every problem in it."""
    if not isinstance(raw, dict) or raw.get("version") != "2":
        version = raw.get("version") if isinstance(raw, dict) else None
        raise ValidationFailed([{"message": f"unsupported manifest format (version {version!r}); "
                                            "only version \"2\" manifests are supported", "path": ["version"]}])
    errors = _errors(_top_validator(), raw, [])
    if errors:
        raise ValidationFailed(errors)
    for stype, sdesc in (raw.get("sources") or {}).items():
        v = _validator("sources", stype)
        if v is None:
            errors.append({"message": f"unknown source type '{stype}'", "path": ["sources", stype]})
        else:
            errors += _errors(v, sdesc, ["sources", stype])
    for pi, p in enumerate(raw.get("pipelines") or []):
        for si, s in enumerate(p.get("stages") or []):
            prefix: list[str | int] = ["pipelines", pi, "stages", si]
            errors += _module("stages", s.get("type"), s, prefix, "stage")
            for iname, idesc in (s.get("inputs") or {}).items():
                errors += _module("inputs", idesc.get("type"), idesc, prefix + ["inputs", iname], "input")
            for dname, ddesc in (s.get("devices") or {}).items():
                dprefix = prefix + ["devices", dname]
                if _validator("devices", ddesc.get("type")) is None:
                    errors.append({"message": f"unknown device type '{ddesc.get('type')}'", "path": dprefix + ["type"]})
                else:
                    errors += _module("devices", ddesc.get("type"), ddesc.get("options", {}), dprefix + ["options"], "device")
            for mi, mdesc in enumerate(s.get("mounts") or []):
                errors += _module("mounts", mdesc.get("type"), mdesc, prefix + ["mounts", mi], "mount")
    if errors:
        raise ValidationFailed(errors)
    return raw
