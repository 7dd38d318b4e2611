"""Compose routes against the real compose service (no build: ``?test=1|2`` and a queued compose that is
cancelled), on the real daemon's socket. Compose start depsolves in the request (real Debian mirror,
the run's shared apt cache), as upstream."""

from __future__ import annotations

import io
import sqlite3
import tarfile
from pathlib import Path

import pytest

from .realdaemon import real_daemon, share_cache

BP = {"name": "real-compose", "version": "1.0.0", "packages": [{"name": "curl"}]}
AWS = {"provider": "aws", "image_name": "my-ami",
       "settings": {"region": "eu-central-1", "accessKeyID": "AKIDSECRETID", "secretAccessKey": "very-secret-key",
                    "bucket": "images", "key": "obj"}}


@pytest.fixture
async def daemon(tmp_path: Path, shared_state_dir: Path):
    share_cache(tmp_path / "state", shared_state_dir)
    async with real_daemon(tmp_path / "state", builder={"local_executor": False}) as client:
        yield client, tmp_path / "state"


async def test_fake_composes_through_the_service(daemon) -> None:
    c, state = daemon
    assert (await c.post_json("/api/v1/blueprints/new", BP)).status == 200
    body = {"blueprint_name": "real-compose", "compose_type": "qcow2", "branch": "master"}
    ok = (await c.post_json("/api/v1/compose?test=2", body)).json()
    bad = (await c.post_json("/api/v1/compose?test=1", body)).json()
    assert ok["status"] is True and bad["status"] is True
    fin, fail = ok["build_id"], bad["build_id"]

    assert [e["id"] for e in (await c.get("/api/v1/compose/finished")).json()["finished"]] == [fin]
    assert [e["id"] for e in (await c.get("/api/v1/compose/failed")).json()["failed"]] == [fail]
    entry = (await c.get(f"/api/v1/compose/status/{fin}")).json()["uuids"][0]
    assert entry["blueprint"] == "real-compose" and entry["version"] == "1.0.0" and entry["compose_type"] == "qcow2"
    assert entry["queue_status"] == "FINISHED" and entry["image_size"] > 0

    r = await c.get(f"/api/v1/compose/image/{fin}")
    assert r.status == 200
    assert r.headers["Content-Disposition"] == f"attachment; filename={fin}-disk.qcow2"
    assert r.headers["Content-Type"] == "application/x-qemu-disk"
    r = await c.get(f"/api/v1/compose/results/{fin}")
    assert r.headers["Content-Disposition"] == f"attachment; filename={fin}.tar"
    with tarfile.open(fileobj=io.BytesIO(r.body)) as tar:
        assert tar.getnames() == [f"{fin}.json", "logs/osbuild.log", f"{fin}-disk.qcow2"]
        assert tar.getmember(f"{fin}.json").mode == 0o644
    r = await c.get(f"/api/v1/compose/metadata/{fail}")
    with tarfile.open(fileobj=io.BytesIO(r.body)) as tar:
        assert tar.getnames() == [f"{fail}.json"] and tar.getmember(f"{fail}.json").mode == 0o600
    r = await c.get(f"/api/v1/compose/image/{fail}")
    assert r.status == 400 and r.json()["errors"][0]["msg"] == f"Build {fail} is in wrong state: FAILED"

    r = (await c.delete(f"/api/v1/compose/delete/{fin},{fail}")).json()
    assert r == {"uuids": [{"uuid": fin, "status": True}, {"uuid": fail, "status": True}], "errors": []}
    assert not (state / "results" / fin).exists()
    assert (await c.get("/api/v1/compose/status/*")).json() == {"uuids": []}


async def test_queued_compose_with_upload_then_cancel(daemon) -> None:
    c, _ = daemon
    assert (await c.post_json("/api/v1/blueprints/new", BP)).status == 200
    body = {"blueprint_name": "real-compose", "compose_type": "qcow2", "branch": "master", "upload": AWS}
    r = await c.post_json("/api/v1/compose", body)
    assert r.status == 200, r.text
    cid = r.json()["build_id"]
    queue = (await c.get("/api/v1/compose/queue")).json()
    assert [e["id"] for e in queue["new"]] == [cid] and queue["run"] == []
    for path in ("/api/v1/compose/queue", f"/api/v1/compose/status/{cid}", f"/api/v1/compose/info/{cid}"):
        text = (await c.get(path)).text
        assert "very-secret-key" not in text and "AKIDSECRETID" not in text, path
    info = (await c.get(f"/api/v1/compose/info/{cid}")).json()
    assert info["queue_status"] == "WAITING" and info["blueprint"]["name"] == "real-compose"
    assert info["uploads"][0]["provider_name"] == "aws" and info["uploads"][0]["image_name"] == "my-ami"
    settings = info["uploads"][0]["settings"]
    # the non-secret settings (the compose service may also redact the object key when storing the request)
    assert {"region": "eu-central-1", "bucket": "images"}.items() <= settings.items()
    assert set(settings) <= {"region", "bucket", "key"} and "***" not in settings.values()
    assert "uploads" not in (await c.get(f"/api/v0/compose/info/{cid}")).json()
    log = await c.get(f"/api/v1/compose/log/{cid}")
    assert log.status == 200 and log.json()["errors"][0]["id"] == "BuildInWrongState"

    r = await c.delete(f"/api/v1/compose/cancel/{cid}")
    assert r.json() == {"uuid": cid, "status": True}
    entry = (await c.get(f"/api/v1/compose/status/{cid}")).json()["uuids"][0]
    assert entry["queue_status"] == "FAILED"
    r = await c.delete(f"/api/v1/compose/cancel/{cid}")
    assert r.status == 400 and r.json()["errors"][0]["id"] == "BuildInWrongState"

    # errors with upstream's ids for the real distro data
    r = await c.post_json("/api/v1/compose", {**body, "compose_type": "nope"})
    assert r.status == 400 and r.json()["errors"][0]["id"] == "ComposeError"
    r = await c.post_json("/api/v1/compose", {**body, "blueprint_name": "nope"})
    assert r.status == 400 and r.json()["errors"][0] == {"id": "UnknownBlueprint", "msg": "Unknown blueprint name: nope"}


def _rows(state: Path) -> dict[str, int]:
    with sqlite3.connect(state / "osbuildd.db") as db:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("jobs", "composes")}


async def test_unresolvable_package_fails_at_start(daemon) -> None:
    """Upstream's answer (DepsolveError, status false, HTTP 500; composer-cli exits 1) with the solver's
    reason naming the package, and nothing queued or stored, for a real and a test compose."""
    c, state = daemon
    bp = {"name": "unresolvable", "version": "0.0.1",
          "packages": [{"name": "tmux"}, {"name": "no-such-package-xyz", "version": "*"}]}
    assert (await c.post_json("/api/v1/blueprints/new", bp)).status == 200
    failed = (await c.get("/api/v1/compose/failed")).json()
    for path in ("/api/v1/compose", "/api/v1/compose?test=1", "/api/v1/compose?test=2", "/api/v0/compose"):
        r = await c.post_json(path, {"blueprint_name": "unresolvable", "compose_type": "qcow2", "branch": "master"})
        assert r.status == 500, (path, r.text)
        body = r.json()
        assert body["status"] is False and len(body["errors"]) == 1, body
        assert body["errors"][0]["id"] == "DepsolveError"
        assert "no-such-package-xyz" in body["errors"][0]["msg"] and "not found" in body["errors"][0]["msg"]
    assert (await c.get("/api/v1/compose/queue")).json() == {"new": [], "run": []}
    assert (await c.get("/api/v1/compose/failed")).json() == failed
    assert (await c.get("/api/v1/compose/status/*")).json() == {"uuids": []}
    assert _rows(state) == {"jobs": 0, "composes": 0}


async def test_test_compose_lists_its_packages(daemon) -> None:
    """?test=2 depsolves first (as upstream): compose/info lists the image's packages, blueprint ones among them."""
    c, _ = daemon
    assert (await c.post_json("/api/v1/blueprints/new", BP)).status == 200
    r = await c.post_json("/api/v1/compose?test=2", {"blueprint_name": "real-compose", "compose_type": "qcow2"})
    assert r.status == 200, r.text
    info = (await c.get(f"/api/v1/compose/info/{r.json()['build_id']}")).json()
    names = [p["name"] for p in info["deps"]["packages"]]
    assert info["queue_status"] == "FINISHED" and names == sorted(names)
    assert {"curl", "systemd", "linux-image-amd64"} <= set(names)
    curl = next(p for p in info["deps"]["packages"] if p["name"] == "curl")
    assert curl["version"] and curl["arch"] == "amd64"
