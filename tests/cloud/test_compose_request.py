"""``POST /compose``, ``GET /composes/{id}``, ``GET /composes/`` and ``DELETE /composes/{id}`` on the real
daemon's Cloud API (unix listener): the request's translation (image types, repositories, targets),
upstream's refusal ids with nothing stored, the status state machine, and a failure's real reason
(an unresolvable package through the depsolve job; a failing stage through a replayed osbuild)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from testdata import OSBUILD

from .cloud_daemon import CLOUD, Daemon, cloud_daemon, conforms

FAKE_OSBUILD = Path(__file__).resolve().parents[1] / "runner" / "fake_osbuild.py"
DEBIAN_REPO = {"baseurl": "http://deb.debian.org/debian"}


def request(image_type: str = "guest-image", **image: Any) -> dict[str, Any]:
    ir = {"architecture": "x86_64", "image_type": image_type, "repositories": [DEBIAN_REPO], **image}
    return {"distribution": "debian-12", "image_request": ir, "customizations": {"packages": ["tmux"]}}


@pytest.fixture
async def daemon(repo_root: Path, tmp_path: Path, shared_state_dir: Path):
    async with cloud_daemon(repo_root, tmp_path, shared_state_dir) as d:
        yield d


def build_args(state: Path, compose_id: str) -> dict[str, Any]:
    with sqlite3.connect(f"file:{state / 'osbuildd.db'}?mode=ro", uri=True) as db:
        (args,) = db.execute("SELECT args FROM jobs WHERE id = ?", (compose_id,)).fetchone()
    return dict(json.loads(args))


async def composes(d: Daemon) -> list[dict[str, Any]]:
    r = await d.cloud.get(f"{CLOUD}/composes/")
    assert r.status == 200, r.body
    return list(r.json())


async def test_compose_is_enqueued_and_pending(daemon: Daemon) -> None:
    d = daemon
    body = request(upload_targets=[{"type": "local", "upload_options": {}},
                                   {"type": "aws.s3", "upload_options": {"region": "us-east-1"}}])
    r = await d.cloud.post(f"{CLOUD}/compose", body)
    assert r.status == 201, r.body
    conforms(r.json(), "ComposeId")
    cid = r.json()["id"]
    assert r.json()["kind"] == "ComposeId"
    r = await d.cloud.get(f"{CLOUD}/composes/{cid}")
    assert r.status == 200, r.body
    status = r.json()
    conforms(status, "ComposeStatus")
    assert (status["status"], status["image_status"]["status"]) == ("pending", "pending"), status
    assert "upload_statuses" not in status["image_status"], status   # none has a result yet (upstream)
    assert [c["id"] for c in await composes(d)] == [cid]
    # the build's targets, as upstream names them
    targets = build_args(d.state, cid)["targets"]
    assert [t["name"] for t in targets] == ["org.osbuild.worker.server", "org.osbuild.aws.s3"]
    s3 = targets[1]["options"]
    # the object key ("key", secret-looking) is sealed in the database like every credential
    assert s3["region"] == "us-east-1" and targets[1]["image_name"].startswith("composer-api-")
    # the request as sent is the metadata's request; Weldr sees the same compose as qcow2
    r = await d.cloud.get(f"{CLOUD}/composes/{cid}/metadata")
    assert r.status == 200 and r.json()["request"] == body, r.body
    info = (await d.weldr.get(f"/api/v1/compose/info/{cid}")).json()
    assert info["compose_type"] == "qcow2" and info["queue_status"] == "WAITING", info
    # a waiting compose cannot be deleted (31); the listing still has it
    r = await d.cloud.request("DELETE", f"{CLOUD}/composes/{cid}")
    assert r.status == 400 and r.json()["id"] == "31", r.body
    assert len(await composes(d)) == 1


@pytest.mark.parametrize(("api", "internal"), [
    ("aws", "ami"), ("gcp", "gce"), ("azure", "vhd"), ("guest-image", "qcow2"), ("vsphere", "vmdk")])
async def test_image_types_map_as_upstream(daemon: Daemon, api: str, internal: str) -> None:
    r = await daemon.cloud.post(f"{CLOUD}/compose", request(api))
    assert r.status == 201, r.body
    info = (await daemon.weldr.get(f"/api/v1/compose/info/{r.json()['id']}")).json()
    assert info["compose_type"] == internal


def with_(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    for path, value in changes.items():
        where = out
        keys = path.split("__")
        for k in keys[:-1]:
            where = where[k]
        if value is None:
            where.pop(keys[-1], None)
        else:
            where[keys[-1]] = value
    return out


REFUSALS = [
    ("both", with_(request(), blueprint={"name": "x"}), 39),
    ("distribution", with_(request(), distribution="debian-99"), 4),
    ("architecture", with_(request(), image_request__architecture="s390x"), 5),
    ("image type", request("edge-commit"), 6),
    ("repository", with_(request(), image_request__repositories=[{"rhsm": False}]), 7),
    ("17 images", with_(request(), image_request=None, image_requests=[request()["image_request"]] * 17), 25),
    ("second image bad", with_(request(), image_request=None, image_requests=[
        request()["image_request"], with_(request(), image_request__architecture="s390x")["image_request"]]), 5),
    ("blueprint distro", with_(request(), customizations=None,
                               blueprint={"name": "x", "distro": "debian-13"}), 40),
    ("blueprint arch", with_(request(), customizations=None,
                             blueprint={"name": "x", "architecture": "aarch64"}), 41),
    ("koji", with_(request(), koji={"server": "https://koji.example", "task_id": 1, "name": "n",
                                    "version": "1", "release": "1"}), 42),
    ("container target", request(upload_targets=[{"type": "container", "upload_options": {}}]), 38),
    ("payload without baseurl", with_(request(), customizations={"payload_repositories": [{"metalink": "http://x/m"}]}), 24),
    ("subscription", with_(request(), customizations={"subscription": {
        "organization": "o", "activation_key": "k", "server_url": "s", "base_url": "b", "insights": False}}), 35),
]


@pytest.mark.parametrize(("what", "body", "error_id"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_refusals_store_nothing(daemon: Daemon, what: str, body: dict[str, Any], error_id: int) -> None:
    r = await daemon.cloud.post(f"{CLOUD}/compose", body)
    err = r.json()
    conforms(err, "Error")
    # the spec's validator may refuse first (30) where upstream's enum check would
    assert (r.status, err["id"]) in ((400, str(error_id)), (400, "30")), (what, r.body)
    assert err["details"], err
    assert await composes(daemon) == []


async def until_settled(d: Daemon, cid: str, limit: float = 300) -> list[dict[str, Any]]:
    seen = []
    async with asyncio.timeout(limit):
        while True:
            r = await d.cloud.get(f"{CLOUD}/composes/{cid}")
            assert r.status == 200, r.body
            conforms(r.json(), "ComposeStatus")
            seen.append(r.json())
            if r.json()["status"] != "pending":
                return seen
            await asyncio.sleep(0.2)


async def test_unresolvable_package_fails_with_its_reason(repo_root: Path, tmp_path: Path,
                                                          shared_state_dir: Path) -> None:
    async with cloud_daemon(repo_root, tmp_path, shared_state_dir, builder="local_executor = true") as d:
        body = with_(request(), customizations={"packages": ["no-such-package-osbuildd"]})
        r = await d.cloud.post(f"{CLOUD}/compose", body)
        assert r.status == 201, r.body   # as upstream: the depsolve is a job, its failure the compose's
        cid = r.json()["id"]
        final = (await until_settled(d, cid))[-1]
        assert final["status"] == "failure" and final["image_status"]["status"] == "failure", final
        err = final["image_status"]["error"]
        assert "no-such-package-osbuildd" in json.dumps(err), err
        assert err["reason"], err
        # a settled compose can be deleted; then it is gone
        r = await d.cloud.request("DELETE", f"{CLOUD}/composes/{cid}")
        assert r.status == 200 and r.json() == {"href": f"{CLOUD}/composes/{cid}", "id": cid,
                                                "kind": "ComposeDeleteStatus"}, r.body
        assert (await d.cloud.get(f"{CLOUD}/composes/{cid}")).json()["id"] == "15"


async def test_failing_stage_has_its_reason(repo_root: Path, tmp_path: Path, shared_state_dir: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The build replayed by the fake osbuild (osbuild's recorded output of a failing stage)."""
    monkeypatch.setenv("FAKE_OSBUILD_NOTES", str(OSBUILD))
    monkeypatch.setenv("FAKE_OSBUILD_MODE", "failure")
    builder = f'local_executor = true\nosbuild = "{FAKE_OSBUILD}"'
    async with cloud_daemon(repo_root, tmp_path, shared_state_dir, builder=builder) as d:
        r = await d.cloud.post(f"{CLOUD}/compose", request())
        assert r.status == 201, r.body
        seen = await until_settled(d, r.json()["id"])
        final = seen[-1]
        assert final["status"] == "failure", final
        err = final["image_status"]["error"]
        assert err["id"] == 10 and "org.osbuild.error" in json.dumps(err), err
        states = [s["image_status"]["status"] for s in seen]
        assert set(states) <= {"pending", "building", "failure"}, states


async def test_several_images_are_one_compose(daemon: Daemon) -> None:
    """An addition to upstream (which builds several images only for Koji): one compose id, one
    image status per image request, each image with its own targets."""
    d = daemon
    first = request("guest-image", upload_targets=[{"type": "local", "upload_options": {}}])["image_request"]
    second = request("aws", upload_options={"region": "eu-west-1", "share_with_accounts": ["123456789012"]})["image_request"]
    body = with_(request(), image_request=None, image_requests=[first, second])
    r = await d.cloud.post(f"{CLOUD}/compose", body)
    assert r.status == 201, r.body
    cid = r.json()["id"]
    status = (await d.cloud.get(f"{CLOUD}/composes/{cid}")).json()
    conforms(status, "ComposeStatus")
    assert status["status"] == "pending" and [i["status"] for i in status["image_statuses"]] == ["pending"] * 2
    assert status["image_status"] == status["image_statuses"][0]
    listed = await composes(d)
    assert [c["id"] for c in listed] == [cid] and len(listed[0]["image_statuses"]) == 2
    # two builds behind it, each with its image type and targets (Weldr sees both)
    weldr = (await d.weldr.get("/api/v1/compose/queue")).json()
    builds = [c["id"] for c in weldr["new"] + weldr["run"]]
    assert len(builds) == 2 and cid in builds
    other = next(b for b in builds if b != cid)
    assert [t["name"] for t in build_args(d.state, cid)["targets"]] == ["org.osbuild.worker.server"]
    assert [t["name"] for t in build_args(d.state, other)["targets"]] == ["org.osbuild.aws"]
    info = (await d.weldr.get(f"/api/v1/compose/info/{other}")).json()
    assert info["compose_type"] == "ami"
    # the artifact routes answer per image
    r = await d.cloud.get(f"{CLOUD}/composes/{cid}/manifests")
    assert r.status == 200 and len(r.json()["manifests"]) == 2, r.body
    r = await d.cloud.get(f"{CLOUD}/composes/{cid}/metadata")
    assert r.status == 200 and r.json()["request"] == body, r.body
    # deleted whole or not at all: both still wait
    r = await d.cloud.request("DELETE", f"{CLOUD}/composes/{cid}")
    assert r.status == 400 and r.json()["id"] == "31", r.body
    assert len((await d.weldr.get("/api/v1/compose/queue")).json()["new"]) == 2
