"""A real Debian 12 qcow2 composed through ``POST /api/v1/compose`` on the daemon's socket, watched to
FINISHED, then downloaded (image, logs, metadata, results) and checked.

The blueprint is ``examples/debian-qcow2.toml``, the one the compose tests build, on the run's shared
store: the bootstrap checkpoint (same package set) is built once per run.
"""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from pathlib import Path

import pytest

from .realdaemon import real_daemon, share_cache

pytestmark = pytest.mark.build


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared_state_dir, repo_root, require_root) -> dict:
    state = tmp_path_factory.mktemp("weldr-build") / "state"
    share_cache(state, shared_state_dir)
    out: dict = {"state": state, "seen": set(), "running_logs": []}

    async def run() -> None:
        async with real_daemon(state) as c:
            toml = (repo_root / "examples" / "debian-qcow2.toml").read_text()
            r = await c.request("POST", "/api/v1/blueprints/new", toml, "text/x-toml")
            assert r.status == 200, r.text
            r = await c.post_json("/api/v1/compose", {"blueprint_name": "debian-qcow2-example",
                                                      "compose_type": "qcow2", "branch": "master"})
            assert r.status == 200, r.text
            cid = out["id"] = r.json()["build_id"]
            async with asyncio.timeout(1800):
                while True:
                    entry = (await c.get(f"/api/v1/compose/status/{cid}")).json()["uuids"][0]
                    out["seen"].add(entry["queue_status"])
                    if entry["queue_status"] == "RUNNING":
                        log = await c.get(f"/api/v1/compose/log/{cid}")
                        out["running_logs"].append(log.text)
                    if entry["queue_status"] in ("FINISHED", "FAILED"):
                        break
                    await asyncio.sleep(2)
            out["entry"] = entry
            out["info"] = (await c.get(f"/api/v1/compose/info/{cid}")).json()
            image = await c.session.get(f"http://localhost/api/v1/compose/image/{cid}")
            out["image_headers"] = image.headers
            dest = state / "downloaded.qcow2"
            with dest.open("wb") as f:  # streamed, as composer-cli does
                async for chunk in image.content.iter_chunked(1 << 20):
                    f.write(chunk)
            out["image"] = dest
            for kind in ("logs", "metadata", "results"):
                out[kind] = await c.get(f"/api/v1/compose/{kind}/{cid}")
            out["log"] = await c.get(f"/api/v1/compose/log/{cid}")
            out["delete"] = (await c.delete(f"/api/v1/compose/delete/{cid}")).json()
            out["after_delete"] = (await c.get("/api/v1/compose/status/*")).json()

    asyncio.run(run())
    return out


def test_compose_finishes(built) -> None:
    assert built["entry"]["queue_status"] == "FINISHED", built["log"].text[-3000:] if "log" in built else ""
    assert "RUNNING" in built["seen"]
    entry = built["entry"]
    assert entry["blueprint"] == "debian-qcow2-example" and entry["version"] == "0.1.0"
    assert entry["job_finished"] >= entry["job_started"] >= entry["job_created"]
    deps = {p["name"] for p in built["info"]["deps"]["packages"]}
    assert {"openssh-server", "curl"} <= deps
    names = [p["name"] for p in built["info"]["deps"]["packages"]]
    assert names == sorted(names)


def test_running_log_is_streamed(built) -> None:
    assert built["running_logs"], "the compose was never seen running"
    assert all(t.startswith(f"Build {built['id']} is still running.\n") for t in built["running_logs"])
    assert any(len(t) > len(f"Build {built['id']} is still running.\n") for t in built["running_logs"])


def test_image_download(built) -> None:
    cid, h = built["id"], built["image_headers"]
    assert h["Content-Disposition"] == f"attachment; filename={cid}-disk.qcow2"
    assert h["Content-Type"] == "application/x-qemu-disk"
    data = built["image"].read_bytes()
    assert data[:4] == b"QFI\xfb" and int(h["Content-Length"]) == len(data)


def test_logs_metadata_results_tars(built) -> None:
    cid = built["id"]
    logs = built["logs"]
    assert logs.headers["Content-Disposition"] == f"attachment; filename={cid}-logs.tar"
    with tarfile.open(fileobj=io.BytesIO(logs.body)) as tar:
        m = tar.getmember("logs/osbuild.log")
        assert m.mode == 0o644 and m.size > 0
        osbuild_log = tar.extractfile(m).read().decode()
    assert osbuild_log == built["log"].text

    meta = built["metadata"]
    assert meta.headers["Content-Disposition"] == f"attachment; filename={cid}-metadata.tar"
    with tarfile.open(fileobj=io.BytesIO(meta.body)) as tar:
        m = tar.getmember(f"{cid}.json")
        assert m.mode == 0o600
        manifest = json.loads(tar.extractfile(m).read())
        # osbuildd's addition after upstream's member: the build's per-stage timings
        assert tar.getnames() == [f"{cid}.json", f"{cid}-timings.json"]
        timings = json.loads(tar.extractfile(f"{cid}-timings.json").read())
    assert manifest["version"] == "2" and manifest["pipelines"]
    ran = [st["type"] for st in timings["stages"]]
    assert "org.osbuild.qemu" in ran and timings["total"] > 0
    assert {p["name"] for p in timings["pipelines"]} <= {p["name"] for p in manifest["pipelines"]}

    res = built["results"]
    assert res.headers["Content-Disposition"] == f"attachment; filename={cid}.tar"
    with tarfile.open(fileobj=io.BytesIO(res.body)) as tar:
        assert tar.getnames() == [f"{cid}.json", "logs/osbuild.log", f"{cid}-disk.qcow2"]
        assert json.loads(tar.extractfile(f"{cid}.json").read()) == manifest
        image = tar.extractfile(f"{cid}-disk.qcow2").read()
    assert image == built["image"].read_bytes()


def test_delete_removes_everything(built) -> None:
    cid = built["id"]
    assert built["delete"] == {"uuids": [{"uuid": cid, "status": True}], "errors": []}
    assert built["after_delete"] == {"uuids": []}
    assert not (Path(built["state"]) / "results" / cid).exists()
