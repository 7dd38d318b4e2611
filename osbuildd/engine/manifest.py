"""Manifest v2: the object model and the content ids of stages and pipelines.

Ids are computed the way upstream osbuild computes them (sha256 over a sequence of sort-keyed JSON
dumps), so that a manifest gets the same stage and pipeline ids here as with upstream osbuild and
checkpoints, logs and monitor contexts line up between the two engines.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


class ManifestError(ValueError):
    """A manifest that is structurally valid JSON but refers to things that do not exist."""

    def __init__(self, message: str, path: list[str | int]) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def _digest(*parts: Any) -> str:
    m = hashlib.sha256()
    for part in parts:
        m.update(json.dumps(part, sort_keys=True).encode())
    return m.hexdigest()


@dataclass
class Input:
    name: str
    type: str
    origin: str
    refs: dict[str, dict[str, Any]]  # id (checksum or pipeline id) -> options
    options: dict[str, Any]

    @property
    def id(self) -> str:
        return _digest(self.type, self.origin, self.refs, self.options)


@dataclass
class Device:
    name: str
    type: str
    options: dict[str, Any]
    parent: Device | None = None

    @property
    def id(self) -> str:
        return _digest(self.type, self.parent.id if self.parent else "", self.options)


@dataclass
class Mount:
    name: str
    type: str
    device: Device | None
    target: str
    partition: int | None
    options: dict[str, Any]

    @property
    def id(self) -> str:
        return _digest(self.type, self.device.id if self.device else None, self.target,
                       self.partition, self.options)


@dataclass
class Stage:
    type: str
    options: dict[str, Any]
    build: str | None  # id of the build pipeline (None = host)
    base: str | None  # id of the previous stage in the pipeline
    source_epoch: int | None
    inputs: dict[str, Input] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)

    @property
    def id(self) -> str:
        m = hashlib.sha256()
        for part in (self.type, self.build, self.base, self.options):
            m.update(json.dumps(part, sort_keys=True).encode())
        if self.source_epoch is not None:
            m.update(json.dumps(self.source_epoch, sort_keys=True).encode())
        if self.inputs:
            m.update(json.dumps({n: i.id for n, i in self.inputs.items()}, sort_keys=True).encode())
        if self.devices:
            m.update(json.dumps({n: d.id for n, d in self.devices.items()}, sort_keys=True).encode())
        if self.mounts:
            m.update(json.dumps([mnt.id for mnt in self.mounts]).encode())
        return m.hexdigest()


@dataclass
class Pipeline:
    name: str
    build: str | None  # name of the build pipeline
    build_id: str | None
    runner: str | None
    source_epoch: int | None
    stages: list[Stage]

    @property
    def id(self) -> str | None:
        return self.stages[-1].id if self.stages else None


@dataclass
class Manifest:
    raw: dict[str, Any]
    sources: dict[str, dict[str, Any]]  # source type -> {"items": {...}, "options": {...}}
    pipelines: list[Pipeline]

    def pipeline(self, name_or_id: str) -> Pipeline | None:
        for p in self.pipelines:
            if name_or_id in (p.name, p.id):
                return p
        return None

    def by_id(self, pid: str) -> Pipeline | None:
        for p in self.pipelines:
            if p.id == pid:
                return p
        return None


def _normalize_refs(refs: Any) -> dict[str, dict[str, Any]]:
    """references may be a list of ids, an object id -> options, or a list of {id, options}."""
    if isinstance(refs, dict):
        return {k: dict(v or {}) for k, v in refs.items()}
    out: dict[str, dict[str, Any]] = {}
    for r in refs or []:
        if isinstance(r, str):
            out[r] = {}
        else:
            out[r["id"]] = dict(r.get("options") or {})
    return out


def load(raw: dict[str, Any]) -> Manifest:
    """Build the object model from a schema-valid manifest, resolving ``name:`` references."""
    by_name: dict[str, Pipeline] = {}
    pipelines: list[Pipeline] = []
    for pi, pdesc in enumerate(raw.get("pipelines", [])):
        path: list[str | int] = ["pipelines", pi]
        name = pdesc.get("name", "")
        build_ref = pdesc.get("build")
        build_name: str | None = None
        build_id: str | None = None
        if build_ref:
            build_name = build_ref[5:] if build_ref.startswith("name:") else build_ref
            bp = by_name.get(build_name) or next((p for p in pipelines if p.id == build_name), None)
            if bp is None:
                raise ManifestError(f"build pipeline '{build_ref}' is not defined before '{name}'", path + ["build"])
            build_name, build_id = bp.name, bp.id
        epoch = pdesc.get("source-epoch")
        stages: list[Stage] = []
        base: str | None = None
        for si, sdesc in enumerate(pdesc.get("stages", [])):
            spath = path + ["stages", si]
            inputs: dict[str, Input] = {}
            for iname, idesc in (sdesc.get("inputs") or {}).items():
                refs = _normalize_refs(idesc.get("references"))
                if idesc.get("origin") == "org.osbuild.pipeline":
                    resolved: dict[str, dict[str, Any]] = {}
                    for ref, opts in refs.items():
                        pname = ref[5:] if ref.startswith("name:") else ref
                        target = by_name.get(pname) or next((p for p in pipelines if p.id == pname), None)
                        if target is None or target.id is None:
                            raise ManifestError(f"input '{iname}' refers to unknown pipeline '{ref}'",
                                                spath + ["inputs", iname, "references"])
                        resolved[target.id] = opts
                    refs = resolved
                inputs[iname] = Input(iname, idesc["type"], idesc["origin"], refs, dict(idesc.get("options") or {}))
            devices: dict[str, Device] = {}
            raw_devs = sdesc.get("devices") or {}
            pending = dict(raw_devs)
            # parents may be listed after their children; resolve until nothing moves
            while pending:
                progressed = False
                for dname, ddesc in list(pending.items()):
                    parent_name = ddesc.get("parent")
                    if parent_name and parent_name not in devices:
                        if parent_name not in raw_devs:
                            raise ManifestError(f"device '{dname}' has unknown parent '{parent_name}'",
                                                spath + ["devices", dname, "parent"])
                        continue
                    devices[dname] = Device(dname, ddesc["type"], dict(ddesc.get("options") or {}),
                                            devices.get(parent_name) if parent_name else None)
                    del pending[dname]
                    progressed = True
                if not progressed:
                    raise ManifestError("device parents form a cycle", spath + ["devices"])
            devices = {n: devices[n] for n in raw_devs}  # keep manifest order
            mounts: list[Mount] = []
            for mi, mdesc in enumerate(sdesc.get("mounts") or []):
                src = mdesc.get("source")
                dev = None
                if src is not None:
                    dev = devices.get(src)
                    if dev is None:
                        raise ManifestError(f"mount '{mdesc['name']}' uses unknown device '{src}'",
                                            spath + ["mounts", mi, "source"])
                mounts.append(Mount(mdesc["name"], mdesc["type"], dev, mdesc.get("target", "/"),
                                    mdesc.get("partition"), dict(mdesc.get("options") or {})))
            stage = Stage(sdesc["type"], dict(sdesc.get("options") or {}), build_id, base, epoch,
                          inputs, devices, mounts)
            base = stage.id
            stages.append(stage)
        p = Pipeline(name, build_name, build_id, pdesc.get("runner"), epoch, stages)
        if name in by_name:
            raise ManifestError(f"duplicate pipeline name '{name}'", path + ["name"])
        by_name[name] = p
        pipelines.append(p)
    return Manifest(raw, dict(raw.get("sources") or {}), pipelines)


def describe(manifest: Manifest) -> dict[str, Any]:
    """The manifest as given, with the ``id`` of every stage filled in (``--inspect``)."""
    out = json.loads(json.dumps(manifest.raw))
    for pdesc, p in zip(out.get("pipelines", []), manifest.pipelines, strict=True):
        new_stages = []
        for sdesc, s in zip(pdesc.get("stages", []), p.stages, strict=True):
            d = {"type": sdesc["type"], "id": s.id}
            d.update({k: v for k, v in sdesc.items() if k != "type"})
            new_stages.append(d)
        if "stages" in pdesc:
            pdesc["stages"] = new_stages
    return out
