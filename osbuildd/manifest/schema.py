"""Validate a manifest v2 as osbuild does: the top schema plus each module's schema from `<module>.meta.json`.

Upstream stages, inputs, devices, mounts and sources are looked up in osbuild's schemas: `schemas`
is a directory laid out as upstream's `schemas/` (`osbuild2.json`, `<kind>/<name>.meta.json`) or a
function mapping such a relative path to a file (the tests' copy of upstream's schemas is spread over
tests/data and the engine's own upstream-identical files); `org.osbuildd.*` stages in our engine's
`osbuildd/engine/stages/`. A module with only a v1 `schema` uses it for its options (stages, devices)
or for the whole object (inputs, sources), which is how osbuild reads such modules.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

OWN_STAGES = Path(__file__).resolve().parent.parent / "engine" / "stages"
Schemas = Path | Callable[[str], Path]


@cache
def _meta(path: str) -> dict[str, Any] | None:
    p = Path(path)
    return json.loads(p.read_text()) if p.is_file() else None


class Validator:
    def __init__(self, schemas: Schemas, own_stages: Path = OWN_STAGES) -> None:
        self.path: Callable[[str], Path]
        if not callable(schemas):     # a directory (Path or str)
            root = Path(schemas)
            self.path = lambda rel: root / rel
        else:
            self.path = schemas
        self.own = Path(own_stages)
        self.errors: list[str] = []

    def _module(self, kind: str, name: str) -> dict[str, Any] | None:
        if kind == "stages" and name.startswith("org.osbuildd."):
            return _meta(str(self.own / f"{name}.meta.json"))
        return _meta(str(self.path(f"{kind}/{name}.meta.json")))

    def _check(self, schema: dict[str, Any] | None, value: Any, where: str) -> None:   # a JSON value
        if schema is None:
            return
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft4Validator)
        for err in cls(schema).iter_errors(value):
            path = "/".join(str(p) for p in err.absolute_path)
            self.errors.append(f"{where}{'/' + path if path else ''}: {err.message}")

    def validate(self, manifest: dict[str, Any]) -> list[str]:
        self.errors = []
        self._check(json.loads(self.path("osbuild2.json").read_text()), manifest, "manifest")
        for name, src in (manifest.get("sources") or {}).items():
            meta = self._module("sources", name)
            if meta is None:
                self.errors.append(f"sources/{name}: unknown source")
                continue
            self._check(meta.get("schema_2") or meta.get("schema"), src, f"sources/{name}")
        for p in manifest.get("pipelines") or []:
            for i, stage in enumerate(p.get("stages") or []):
                self._stage(stage, f"pipelines/{p.get('name')}/stages/{i}({stage.get('type')})")
        return self.errors

    def _stage(self, stage: dict[str, Any], where: str) -> None:
        meta = self._module("stages", stage["type"])
        if meta is None:
            self.errors.append(f"{where}: unknown stage")
            return
        s2 = meta.get("schema_2")
        if s2:
            for key in ("options", "inputs", "devices", "mounts"):
                if key in s2:
                    default: list[Any] | dict[str, Any] = [] if key == "mounts" else {}
                    sub = {**s2[key], **({"type": "object"} if key == "options" else {})}
                    if "definitions" in s2:   # refs point at the module's top-level definitions
                        sub["definitions"] = s2["definitions"]
                    self._check(sub, stage.get(key, default), f"{where}/{key}")
        else:
            self._check({**(meta.get("schema") or {}), "type": "object"}, stage.get("options", {}),
                        f"{where}/options")
        for name, inp in (stage.get("inputs") or {}).items():
            m = self._module("inputs", inp.get("type", ""))
            if m is None:
                self.errors.append(f"{where}/inputs/{name}: unknown input {inp.get('type')}")
            else:
                self._check(m.get("schema_2") or m.get("schema"), inp, f"{where}/inputs/{name}")
        for name, dev in (stage.get("devices") or {}).items():
            m = self._module("devices", dev.get("type", ""))
            if m is None:
                self.errors.append(f"{where}/devices/{name}: unknown device {dev.get('type')}")
            else:
                s2d = m.get("schema_2") or {}
                schema = {**s2d["options"], "definitions": s2d.get("definitions", {})} if "options" in s2d \
                    else m.get("schema")
                self._check(schema, dev.get("options", {}), f"{where}/devices/{name}")
        for mount in stage.get("mounts") or []:
            m = self._module("mounts", mount.get("type", ""))
            if m is None:
                self.errors.append(f"{where}/mounts: unknown mount {mount.get('type')}")
            elif m.get("schema_2"):
                self._check(m["schema_2"], mount, f"{where}/mounts/{mount.get('name')}")


def validate(manifest: dict[str, Any], schemas: Schemas, own_stages: Path = OWN_STAGES) -> list[str]:
    """Every schema violation as "where: message" ([] = valid)."""
    return Validator(schemas, own_stages).validate(manifest)
