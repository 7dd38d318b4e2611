"""Manifest v2: the object model and the content ids of stages and pipelines.

Ids are computed the way upstream osbuild computes them, by ``osbuildd.common.stageids`` (which
the manifest generator uses too), so that a manifest gets the same stage and pipeline ids here as
with upstream osbuild and checkpoints, logs and monitor contexts line up between the two engines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from osbuildd.common import stageids


class ManifestError(ValueError):
    """A manifest that is structurally valid JSON but refers to things that do not exist."""

    def __init__(self, message: str, path: list[str | int]) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass
class Input:
    name: str
    type: str
    origin: str
    refs: dict[str, dict[str, Any]]  # id (checksum or pipeline id) -> options
    options: dict[str, Any]

    @property
    def id(self) -> str:
        return stageids.input_id(self.type, self.origin, self.refs, self.options)


@dataclass
class Device:
    name: str
    type: str
    options: dict[str, Any]
    parent: Device | None = None

    @property
    def id(self) -> str:
        return stageids.device_id(self.type, self.parent.id if self.parent else None, self.options)


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
        return stageids.mount_id(self.type, self.device.id if self.device else None, self.target,
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
        return stageids.stage_id(self.type, self.build, self.base, self.options, self.source_epoch,
                                 {n: i.id for n, i in self.inputs.items()},
                                 {n: d.id for n, d in self.devices.items()},
                                 [mnt.id for mnt in self.mounts])


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


def _find(pipelines: list[Pipeline], ref: str) -> Pipeline | None:
    """A pipeline defined before, by ``name:x``, by name or by id."""
    name = stageids.ref_name(ref)
    return next((p for p in pipelines if p.name == name), None) or next(
        (p for p in pipelines if p.id == name), None)


def _inputs(sdesc: dict[str, Any], pipelines: list[Pipeline], spath: list[str | int]) -> dict[str, Input]:
    inputs: dict[str, Input] = {}
    for iname, idesc in (sdesc.get("inputs") or {}).items():
        refs = stageids.normalize_refs(idesc.get("references"))
        if idesc.get("origin") == "org.osbuild.pipeline":
            resolved: dict[str, dict[str, Any]] = {}
            for ref, opts in refs.items():
                target = _find(pipelines, ref)
                if target is None or target.id is None:
                    raise ManifestError(f"input '{iname}' refers to unknown pipeline '{ref}'",
                                        spath + ["inputs", iname, "references"])
                resolved[target.id] = opts
            refs = resolved
        inputs[iname] = Input(iname, idesc["type"], idesc["origin"], refs, dict(idesc.get("options") or {}))
    return inputs


def _devices(sdesc: dict[str, Any], spath: list[str | int]) -> dict[str, Device]:
    devices: dict[str, Device] = {}
    raw_devs: dict[str, Any] = sdesc.get("devices") or {}
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
    return {n: devices[n] for n in raw_devs}  # keep manifest order


def _mounts(sdesc: dict[str, Any], devices: dict[str, Device], spath: list[str | int]) -> list[Mount]:
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
    return mounts


def _pipeline(pdesc: dict[str, Any], pipelines: list[Pipeline], path: list[str | int]) -> Pipeline:
    name = pdesc.get("name", "")
    build_ref = pdesc.get("build")
    build_name: str | None = None
    build_id: str | None = None
    if build_ref:
        bp = _find(pipelines, build_ref)
        if bp is None:
            raise ManifestError(f"build pipeline '{build_ref}' is not defined before '{name}'", path + ["build"])
        build_name, build_id = bp.name, bp.id
    epoch = pdesc.get("source-epoch")
    stages: list[Stage] = []
    base: str | None = None
    for si, sdesc in enumerate(pdesc.get("stages", [])):
        spath = path + ["stages", si]
        devices = _devices(sdesc, spath)
        stage = Stage(sdesc["type"], dict(sdesc.get("options") or {}), build_id, base, epoch,
                      _inputs(sdesc, pipelines, spath), devices, _mounts(sdesc, devices, spath))
        base = stage.id
        stages.append(stage)
    return Pipeline(name, build_name, build_id, pdesc.get("runner"), epoch, stages)


def load(raw: dict[str, Any]) -> Manifest:
    """Build the object model from a schema-valid manifest, resolving ``name:`` references."""
    pipelines: list[Pipeline] = []
    for pi, pdesc in enumerate(raw.get("pipelines", [])):
        p = _pipeline(pdesc, pipelines, ["pipelines", pi])
        if any(q.name == p.name for q in pipelines):
            raise ManifestError(f"duplicate pipeline name '{p.name}'", ["pipelines", pi, "name"])
        pipelines.append(p)
    return Manifest(raw, dict(raw.get("sources") or {}), pipelines)


def describe(manifest: Manifest) -> dict[str, Any]:
    """The manifest as given, with the ``id`` of every stage filled in (``--inspect``)."""
    out: dict[str, Any] = json.loads(json.dumps(manifest.raw))
    for pdesc, p in zip(out.get("pipelines", []), manifest.pipelines, strict=True):
        new_stages = []
        for sdesc, s in zip(pdesc.get("stages", []), p.stages, strict=True):
            d = {"type": sdesc["type"], "id": s.id}
            d.update({k: v for k, v in sdesc.items() if k != "type"})
            new_stages.append(d)
        if "stages" in pdesc:
            pdesc["stages"] = new_stages
    return out
