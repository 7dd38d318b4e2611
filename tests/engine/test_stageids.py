"""``osbuildd.common.stageids`` computes, from a raw manifest, the ids the engine's loader gives."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from testdata import IMAGES, data_file

from osbuildd.common import stageids
from osbuildd.engine import manifest as engine_manifest

from .helpers import MANIFESTS
from .test_cli import UPSTREAM_IDS


def _reference_manifests() -> list[tuple[str, dict[str, Any]]]:
    paths = sorted(Path(MANIFESTS).glob("*.json")) + [data_file("osbuild", "tiny-tar.manifest.json")]
    images = sorted((IMAGES / "manifests").glob("*.json"))
    assert images, "osbuild/images reference manifests missing (see tests/data/README.md)"
    paths += images
    out = []
    for path in paths:
        doc = json.loads(path.read_text())
        out.append((path.name, doc.get("manifest", doc)))
    return out


def _synthetic() -> dict[str, Any]:
    """Build chains by name and by id, pipeline inputs by id, a device listed before its parent,
    mounts on devices and without, a source epoch: every path of the loader's references."""
    m: dict[str, Any] = {"version": "2", "pipelines": [
        {"name": "build", "source-epoch": 7, "stages": [{"type": "org.osbuild.noop", "options": {"a": 1}}]},
        {"name": "tree", "build": "name:build", "stages": [
            {"type": "org.osbuild.mkdir", "options": {"paths": [{"path": "/x"}]}},
            {"type": "org.osbuild.noop"}]},
        {"name": "image", "build": "name:build", "stages": [{
            "type": "org.osbuild.copy",
            "inputs": {"root": {"type": "org.osbuild.tree", "origin": "org.osbuild.pipeline",
                                "references": ["name:tree"]},
                       "f": {"type": "org.osbuild.files", "origin": "org.osbuild.source",
                             "references": [{"id": "sha256:00", "options": {"o": 1}}, "sha256:11"]}},
            "devices": {"part": {"type": "org.osbuild.loopback", "parent": "disk", "options": {"start": 2}},
                        "disk": {"type": "org.osbuild.loopback", "options": {"filename": "d.img"}}},
            "mounts": [{"name": "root", "type": "org.osbuild.ext4", "source": "part", "target": "/"},
                       {"name": "boot", "type": "org.osbuild.fat", "source": "disk", "target": "/boot",
                        "partition": 1},
                       {"name": "tmp", "type": "org.osbuild.noop"}]}]},
        {"name": "empty", "stages": []},
    ]}
    # a build reference by pipeline id (the id of "build" is its last stage's id)
    build_id = engine_manifest.load(m).pipelines[0].id
    m["pipelines"].append({"name": "byid", "build": build_id, "stages": [{"type": "org.osbuild.noop"}]})
    return m


CASES = [*_reference_manifests(), ("synthetic", _synthetic())]


@pytest.mark.parametrize("raw", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_stage_ids_equal_the_loaders_ids(raw: dict[str, Any]) -> None:
    loaded = engine_manifest.load(copy.deepcopy(raw))
    assert loaded.pipelines
    for p in loaded.pipelines:
        assert stageids.stage_ids(raw, p.name) == [s.id for s in p.stages], p.name
    assert stageids.pipeline_ids(raw) == {p.name: [s.id for s in p.stages] for p in loaded.pipelines}


def test_stage_ids_match_upstream_osbuild() -> None:
    raw = json.loads(data_file("osbuild", "tiny-tar.manifest.json").read_text())
    got = {}
    for p in raw["pipelines"]:
        for s, sid in zip(p["stages"], stageids.stage_ids(raw, p["name"]), strict=True):
            got[s["type"]] = sid
    assert {k: got[k] for k in UPSTREAM_IDS} == UPSTREAM_IDS


def test_options_change_the_id_and_unknown_references_are_errors() -> None:
    raw = _synthetic()
    before = stageids.stage_ids(raw, "image")
    raw["pipelines"][1]["stages"][0]["options"]["paths"][0]["path"] = "/y"  # an input's pipeline changes
    assert stageids.stage_ids(raw, "image") != before
    with pytest.raises(KeyError):
        stageids.stage_ids(raw, "nope")
    raw["pipelines"][2]["stages"][0]["mounts"][0]["source"] = "missing"
    with pytest.raises(stageids.UnresolvedReference) as e:
        stageids.stage_ids(raw, "image")
    assert e.value.path == ["pipelines", 2, "stages", 0, "mounts", 0, "source"]
    raw = _synthetic()
    raw["pipelines"][2]["stages"][0]["devices"]["disk"]["parent"] = "part"
    with pytest.raises(stageids.UnresolvedReference, match="cycle"):
        stageids.stage_ids(raw, "image")
