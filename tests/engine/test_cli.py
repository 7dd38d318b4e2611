"""Command line contract: version, --inspect ids, validation errors and exit codes (no build)."""

from __future__ import annotations

import json

from testdata import data_file

from .helpers import MANIFESTS, engine, result_json, tiny

# ids upstream osbuild 191 printed for tiny-tar.manifest.json (notes/osbuild-result-sample.json)
UPSTREAM_IDS = {
    "org.osbuild.mkdir": "84eb44ef6f0bce41daf1402639915cad2ba3433a41fc5df023978b2a504c3970",
    "org.osbuild.copy": "7d13a24aca0224c79345b1c74ada13bc2058b20fbd5841dcd7e56336a454feb7",
    "org.osbuild.hostname": "1e25e746b8874e468ca7bd5e3e7e724286183f5a6abc0e3a8d77b404c7b4b7c6",
    "org.osbuild.tar": "cc3ec8e4cc255c19214dab28478d02a0fb506e56fe03fc568d9f29985a4f7565",
}


def test_version() -> None:
    proc, _ = engine("--version")
    assert proc.returncode == 0
    assert proc.stdout.decode() == "osbuildd-engine 0.1.0\n"


def test_inspect_ids_match_upstream() -> None:
    path = data_file("osbuild", "tiny-tar.manifest.json")
    proc, _ = engine("--inspect", str(path))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    ids = {s["type"]: s["id"] for p in out["pipelines"] for s in p["stages"]}
    assert ids == UPSTREAM_IDS
    # stable: the same manifest from stdin gives the same ids
    proc2, _ = engine("--inspect", "-", stdin=path.read_bytes())
    assert json.loads(proc2.stdout) == out


def test_inspect_id_changes_with_options() -> None:
    m = tiny()
    m["pipelines"][0]["stages"][2]["options"]["hostname"] = "other"
    proc, _ = engine("--inspect", "-", stdin=json.dumps(m).encode())
    ids = {s["type"]: s["id"] for p in json.loads(proc.stdout)["pipelines"] for s in p["stages"]}
    assert ids["org.osbuild.mkdir"] == UPSTREAM_IDS["org.osbuild.mkdir"]
    assert ids["org.osbuild.hostname"] != UPSTREAM_IDS["org.osbuild.hostname"]
    assert ids["org.osbuild.tar"] != UPSTREAM_IDS["org.osbuild.tar"]  # its input tree changed


def test_validation_error_json_names_the_field() -> None:
    m = tiny()
    m["pipelines"][0]["stages"][0]["options"]["paths"][0]["bogus"] = 1
    proc, _ = engine("--json", "-", stdin=json.dumps(m).encode())
    assert proc.returncode == 2
    out = result_json(proc)
    assert out["type"] == "https://osbuild.org/validation-error"
    assert out["title"] == "JSON Schema validation failed"
    assert out["success"] is False
    assert ["pipelines", 0, "stages", 0, "options", "paths", 0] in [e["path"] for e in out["errors"]]
    assert all(set(e) == {"message", "path"} for e in out["errors"])


def test_validation_of_inputs_devices_sources_and_unknown_stage() -> None:
    m = tiny()
    m["pipelines"][1]["stages"][0]["inputs"]["tree"]["references"] = ["name:tree", "name:extra"]
    m["pipelines"][0]["stages"].append({"type": "org.example.nope"})
    m["sources"]["org.osbuild.inline"]["items"]["sha256:" + "0" * 64] = {"encoding": "rot13", "data": ""}
    proc, _ = engine("--inspect", "-", stdin=json.dumps(m).encode())
    assert proc.returncode == 2
    paths = [e["path"] for e in result_json(proc)["errors"]]
    assert ["pipelines", 1, "stages", 0, "inputs", "tree", "references"] in paths
    assert ["pipelines", 0, "stages", 3, "type"] in paths
    assert any(p[:2] == ["sources", "org.osbuild.inline"] for p in paths)


def test_device_options_validated() -> None:
    m = json.loads((MANIFESTS / "disk.json").read_text())
    del m["pipelines"][1]["stages"][2]["devices"]["device"]["options"]["filename"]
    proc, _ = engine("--inspect", "-", stdin=json.dumps(m).encode())
    assert proc.returncode == 2
    paths = [e["path"] for e in result_json(proc)["errors"]]
    assert ["pipelines", 1, "stages", 2, "devices", "device", "options"] in paths


def test_bad_version_and_bad_json_exit_2() -> None:
    proc, _ = engine("--json", "-", stdin=b'{"version": "1"}')
    assert proc.returncode == 2
    assert result_json(proc)["errors"][0]["path"] == ["version"]
    proc, _ = engine("-", stdin=b"{not json")
    assert proc.returncode == 2
    assert b"cannot read manifest" in proc.stderr


def test_unknown_build_reference_is_invalid() -> None:
    m = tiny()
    m["pipelines"][1]["build"] = "name:nowhere"
    proc, _ = engine("--json", "-", stdin=json.dumps(m).encode())
    assert proc.returncode == 2
    assert result_json(proc)["errors"][0]["path"] == ["pipelines", 1, "build"]


def test_exit_1_cases(tmp_path) -> None:
    data = json.dumps(tiny()).encode()
    store = ["--store", str(tmp_path / "store")]
    proc, _ = engine(*store, "--export", "archive", "-", stdin=data)
    assert proc.returncode == 1 and b"--output-directory" in proc.stderr
    proc, _ = engine(*store, "--export", "nope", "--output-directory", str(tmp_path / "o"), "-", stdin=data)
    assert proc.returncode == 1 and b"nope" in proc.stderr
    proc, _ = engine(*store, "--checkpoint", "nothing*", "-", stdin=data)
    assert proc.returncode == 1 and b"nothing*" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_bad_cache_size_and_monitor_exit_2(tmp_path) -> None:
    proc, _ = engine("--cache-max-size", "lots", "-", stdin=b"{}")
    assert proc.returncode == 2 and b"--cache-max-size" in proc.stderr
    proc, _ = engine("--monitor", "FancyMonitor", "-", stdin=b"{}")
    assert proc.returncode == 2 and b"FancyMonitor" in proc.stderr
