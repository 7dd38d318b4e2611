"""osbuild content ids of stages, inputs, devices and mounts, from a raw manifest v2.

An id is the sha256 over a sequence of sort-keyed JSON dumps, the way upstream osbuild computes it,
so checkpoints, logs and monitor contexts line up between the bundled engine and upstream osbuild.
The engine's manifest loader computes its ids with these functions, and the manifest generator
calls :func:`stage_ids` on the dict it generates: both agree by construction, and the generator
does not need the engine. Stdlib only, imports nothing else of osbuildd.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any


class UnresolvedReference(ValueError):
    """A reference in the manifest that does not resolve; ``path`` is where in the manifest."""

    def __init__(self, message: str, path: list[str | int]) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


# a pipeline reference (``name:x``, a name or an id) -> (name, id) of a pipeline defined before it
Resolver = Callable[[str], tuple[str, str | None] | None]


def digest(*parts: object) -> str:
    m = hashlib.sha256()
    for part in parts:
        m.update(json.dumps(part, sort_keys=True).encode())
    return m.hexdigest()


def input_id(itype: str, origin: str, refs: Mapping[str, Mapping[str, Any]], options: Mapping[str, Any]) -> str:
    return digest(itype, origin, refs, options)


def device_id(dtype: str, parent_id: str | None, options: Mapping[str, Any]) -> str:
    return digest(dtype, parent_id or "", options)


def mount_id(mtype: str, dev_id: str | None, target: str, partition: int | None,
             options: Mapping[str, Any]) -> str:
    return digest(mtype, dev_id, target, partition, options)


def stage_id(stype: str, build: str | None, base: str | None, options: Mapping[str, Any],
             source_epoch: int | None, inputs: Mapping[str, str], devices: Mapping[str, str],
             mounts: Sequence[str]) -> str:
    """``inputs``/``devices`` map names to their ids, ``mounts`` lists mount ids in manifest order."""
    m = hashlib.sha256()
    for part in (stype, build, base, options):
        m.update(json.dumps(part, sort_keys=True).encode())
    if source_epoch is not None:
        m.update(json.dumps(source_epoch, sort_keys=True).encode())
    if inputs:
        m.update(json.dumps(dict(inputs), sort_keys=True).encode())
    if devices:
        m.update(json.dumps(dict(devices), sort_keys=True).encode())
    if mounts:
        m.update(json.dumps(list(mounts)).encode())
    return m.hexdigest()


def normalize_refs(refs: object) -> dict[str, dict[str, Any]]:
    """references may be a list of ids, an object id -> options, or a list of {id, options}."""
    if isinstance(refs, dict):
        return {k: dict(v or {}) for k, v in refs.items()}
    out: dict[str, dict[str, Any]] = {}
    for r in refs if isinstance(refs, list) else []:
        if isinstance(r, str):
            out[r] = {}
        else:
            out[r["id"]] = dict(r.get("options") or {})
    return out


def ref_name(ref: str) -> str:
    """A pipeline reference without its ``name:`` prefix (a name or a pipeline id)."""
    return ref[5:] if ref.startswith("name:") else ref


def pipeline_ids(manifest: Mapping[str, Any]) -> dict[str, list[str]]:
    """The stage ids of every pipeline (name -> ids in stage order) of a schema-valid manifest v2."""
    out: dict[str, list[str]] = {}
    last: dict[str, str | None] = {}  # pipeline name -> pipeline id (its last stage's id)

    def resolve(ref: str) -> tuple[str, str | None] | None:
        # a reference names a pipeline defined before, by name or by id (as the engine's loader)
        name = ref_name(ref)
        if name in last:
            return name, last[name]
        return next(((n, i) for n, i in last.items() if i == name), None)

    for pi, pdesc in enumerate(manifest.get("pipelines", [])):
        path: list[str | int] = ["pipelines", pi]
        build_id: str | None = None
        if pdesc.get("build"):
            found = resolve(pdesc["build"])
            if found is None:
                raise UnresolvedReference(f"build pipeline '{pdesc['build']}' is not defined before "
                                      f"'{pdesc.get('name', '')}'", path + ["build"])
            build_id = found[1]
        ids: list[str] = []
        base: str | None = None
        for si, sdesc in enumerate(pdesc.get("stages", [])):
            base = _stage_id(sdesc, build_id, base, pdesc.get("source-epoch"), resolve,
                             path + ["stages", si])
            ids.append(base)
        out[pdesc.get("name", "")] = ids
        last[pdesc.get("name", "")] = base
    return out


def stage_ids(manifest: Mapping[str, Any], pipeline: str) -> list[str]:
    """The ids of the stages of pipeline ``pipeline`` (by name) of a raw manifest v2: what the
    engine's ``load(manifest).pipeline(pipeline).stages[i].id`` gives."""
    ids = pipeline_ids(manifest)
    if pipeline not in ids:
        raise KeyError(pipeline)
    return ids[pipeline]


def _stage_id(sdesc: Mapping[str, Any], build_id: str | None, base: str | None, epoch: int | None,
              resolve: Resolver, path: list[str | int]) -> str:
    inputs: dict[str, str] = {}
    for iname, idesc in (sdesc.get("inputs") or {}).items():
        refs = normalize_refs(idesc.get("references"))
        if idesc.get("origin") == "org.osbuild.pipeline":
            resolved: dict[str, dict[str, Any]] = {}
            for ref, opts in refs.items():
                found = resolve(ref)
                if found is None or found[1] is None:
                    raise UnresolvedReference(f"input '{iname}' refers to unknown pipeline '{ref}'",
                                          path + ["inputs", iname, "references"])
                resolved[found[1]] = opts
            refs = resolved
        inputs[iname] = input_id(idesc["type"], idesc["origin"], refs, dict(idesc.get("options") or {}))
    raw_devs: dict[str, Any] = dict(sdesc.get("devices") or {})
    devices: dict[str, str] = {}

    def dev(name: str, seen: tuple[str, ...]) -> str:
        if name not in devices:
            ddesc = raw_devs[name]
            parent = ddesc.get("parent")
            if parent and parent not in raw_devs:
                raise UnresolvedReference(f"device '{name}' has unknown parent '{parent}'",
                                      path + ["devices", name, "parent"])
            if parent in seen:
                raise UnresolvedReference("device parents form a cycle", path + ["devices"])
            pid = dev(parent, (*seen, name)) if parent else None
            devices[name] = device_id(ddesc["type"], pid, dict(ddesc.get("options") or {}))
        return devices[name]

    for dname in raw_devs:
        dev(dname, ())
    mounts: list[str] = []
    for mi, mdesc in enumerate(sdesc.get("mounts") or []):
        src = mdesc.get("source")
        if src is not None and src not in devices:
            raise UnresolvedReference(f"mount '{mdesc['name']}' uses unknown device '{src}'",
                                  path + ["mounts", mi, "source"])
        mounts.append(mount_id(mdesc["type"], devices[src] if src is not None else None,
                               mdesc.get("target", "/"), mdesc.get("partition"),
                               dict(mdesc.get("options") or {})))
    return stage_id(sdesc["type"], build_id, base, dict(sdesc.get("options") or {}), epoch, inputs,
                    {n: devices[n] for n in raw_devs}, mounts)
