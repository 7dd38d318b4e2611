"""``/composes/{id}/metadata|logs|manifests|sboms|download`` on the real daemon (``osbuildd serve``, the
Cloud API on a unix listener), for composes made through its Weldr socket: upstream's test mode
(``?test=2`` finished, ``?test=1`` failed: depsolved on the Debian mirror, manifest generated, no
build), a queued one, and a queued one whose build a worker (a second connection to the job store)
takes and finishes with the result a build records (osbuild's ``--json`` output, the artifact in the
compose's results). Shapes and ids are compared with the real osbuild-composer's answers
(tests/data/cloud/recorded)."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from testdata import DATA

from osbuildd.queue import Database, JobStore

from .cloud_daemon import CLOUD, Daemon, cloud_daemon, conforms

BP = {"name": "cloud-artifacts", "version": "0.0.1", "packages": [{"name": "tmux"}]}
RECORDED = DATA / "cloud" / "recorded"


def recorded(name: str) -> dict[str, Any]:
    return json.loads((RECORDED / name).read_text())["response"]


@pytest.fixture
async def daemon(repo_root: Path, tmp_path: Path, shared_state_dir: Path):
    async with cloud_daemon(repo_root, tmp_path, shared_state_dir) as d:
        yield d


def assert_error(r: Any, status: int, error_id: int) -> dict[str, Any]:
    assert r.status == status, r.body
    body = r.json()
    conforms(body, "Error")
    assert body["kind"] == "Error" and body["id"] == str(error_id), body
    assert body["code"] == f"IMAGE-BUILDER-COMPOSER-{error_id}" and body["href"] == f"{CLOUD}/errors/{error_id}"
    return dict(body)


async def weldr_manifest(d: Daemon, cid: str) -> dict[str, Any]:
    r = await d.weldr.get(f"/api/v1/compose/metadata/{cid}")
    with tarfile.open(fileobj=io.BytesIO(r.body)) as tar:
        member = tar.extractfile(f"{cid}.json")
        assert member is not None
        return dict(json.loads(member.read()))


async def weldr_packages(d: Daemon, cid: str) -> list[dict[str, Any]]:
    return list((await d.weldr.get(f"/api/v1/compose/info/{cid}")).json()["deps"]["packages"])


def validate_spdx(doc: dict[str, Any]) -> None:
    messages = validate_full_spdx_document(JsonLikeDictParser().parse(doc))
    assert messages == [], messages[:3]


async def test_test_mode_composes(daemon: Daemon) -> None:
    d = daemon
    fin = await d.compose(BP, test="2")
    fail = await d.compose({**BP, "name": "cloud-artifacts-failed"}, test="1")

    # a finished job whose result has no osbuild log: upstream's 500 id 1012 (the cloudapi vector)
    body = assert_error(await d.cloud.get(f"{CLOUD}/composes/{fin}/metadata"), 500, 1012)
    assert body["reason"] == "OSBuildJobResult does not have expected fields set"
    # failed: 200, no packages
    r = await d.cloud.get(f"{CLOUD}/composes/{fail}/metadata")
    assert r.status == 200
    assert r.json() == {"href": f"{CLOUD}/composes/{fail}/metadata", "id": fail, "kind": "ComposeMetadata"}
    conforms(r.json(), "ComposeMetadata")

    r = await d.cloud.get(f"{CLOUD}/composes/{fin}/logs")
    assert r.status == 200
    logs = r.json()
    conforms(logs, "ComposeLogs")
    assert list(logs) == ["href", "id", "image_builds", "kind"] and logs["kind"] == "ComposeLogs"
    assert logs["href"] == f"{CLOUD}/composes/{fin}/logs"
    (build,) = logs["image_builds"]
    assert build["success"] is True and build["osbuild_output"] == {"success": True}
    assert {"upload_status", "host_os", "arch"} <= set(build)
    (build,) = (await d.cloud.get(f"{CLOUD}/composes/{fail}/logs")).json()["image_builds"]
    assert build["success"] is False and build["job_error"]["reason"] == "osbuild build failed"

    for cid in (fin, fail):
        r = await d.cloud.get(f"{CLOUD}/composes/{cid}/manifests")
        assert r.status == 200
        body = r.json()
        conforms(body, "ComposeManifests")
        assert list(body) == ["href", "id", "kind", "manifests"] and body["kind"] == "ComposeManifests"
        assert body["manifests"] == [await weldr_manifest(d, cid)]
        assert body["manifests"][0]["version"] == "2"

    r = await d.cloud.get(f"{CLOUD}/composes/{fin}/sboms")
    assert r.status == 200
    body = r.json()
    conforms(body, "ComposeSBOMs")
    assert list(body) == ["href", "id", "items", "kind"] and body["kind"] == "ComposeSBOMs"
    (image,) = body["items"]
    # Debian's build root is bootstrapped, not depsolved: one package set, "os", the image's content
    assert [(s["pipeline_name"], s["pipeline_purpose"], s["sbom_type"]) for s in image] == [("os", "image", "spdx")]
    doc = image[0]["sbom"]
    validate_spdx(doc)
    want = {(p["name"], p["arch"]) for p in await weldr_packages(d, fin)}
    assert {(p["name"], p["externalRefs"][0]["referenceLocator"].split("arch=")[1]) for p in doc["packages"]} == want
    assert "tmux" in {p["name"] for p in doc["packages"]}
    # the same document every time (namespace and creation time from the compose, not the clock)
    assert (await d.cloud.get(f"{CLOUD}/composes/{fin}/sboms")).json() == body

    r = await d.cloud.get(f"{CLOUD}/composes/{fin}/download")
    assert r.status == 200, r.body
    assert r.headers["Content-Disposition"] == f"attachment; filename={fin}-disk.qcow2"
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.body == b""   # test mode's placeholder image, as Weldr's compose/image serves it
    body = assert_error(await d.cloud.get(f"{CLOUD}/composes/{fail}/download"), 400, 1022)
    assert body["reason"] == "Artifact not found" and "failed" in body["details"]


async def test_unknown_and_malformed_ids(daemon: Daemon) -> None:
    missing = str(uuid.uuid4())
    for route in ("metadata", "logs", "manifests", "sboms", "download"):
        assert_error(await daemon.cloud.get(f"{CLOUD}/composes/{missing}/{route}"), 404, 15)
        assert_error(await daemon.cloud.get(f"{CLOUD}/composes/not-a-uuid/{route}"), 400, 14)


async def test_queued_compose_matches_recorded_shapes(daemon: Daemon) -> None:
    """A compose whose build has not run: the shapes upstream recorded (083, 087, 088), except that our
    manifest exists already (the manifest job ran in the request; upstream's host had no depsolver)."""
    d = daemon
    cid = await d.compose(BP)
    r = await d.cloud.get(f"{CLOUD}/composes/{cid}/metadata")
    assert r.status == recorded("083-cloud-compose-metadata.json")["status"] == 200
    body = r.json()
    assert set(body) - {"request"} == {"href", "id", "kind"} and "packages" not in body
    assert body["href"] == f"{CLOUD}/composes/{cid}/metadata"

    r = await d.cloud.get(f"{CLOUD}/composes/{cid}/logs")
    want = recorded("087-cloud-compose-logs.json")
    assert r.status == want["status"]
    assert {k: v for k, v in r.json().items() if k not in ("href", "id")} == \
        {k: v for k, v in want["body"].items() if k not in ("href", "id")}

    r = await d.cloud.get(f"{CLOUD}/composes/{cid}/manifests")
    want = recorded("088-cloud-compose-manifests.json")
    assert r.status == want["status"] and list(r.json()) == list(want["body"])
    (manifest,) = r.json()["manifests"]
    assert manifest["version"] == "2" and [p["name"] for p in manifest["pipelines"]][-1] == "qcow2"

    assert_error(await d.cloud.get(f"{CLOUD}/composes/{cid}/download"), 400, 1022)
    sboms = (await d.cloud.get(f"{CLOUD}/composes/{cid}/sboms")).json()
    validate_spdx(sboms["items"][0][0]["sbom"])   # the depsolve is done: its SBOM exists already


async def test_built_compose(daemon: Daemon) -> None:
    """A worker takes the build (running: logs show an empty result, metadata no packages), then
    finishes it with osbuild's output and the artifact: metadata lists the depsolved packages, the
    download streams the artifact."""
    d = daemon
    cid = await d.compose(BP)
    db = await Database.open(d.state / "osbuildd.db")
    try:
        jobs = JobStore(db)
        dq = await jobs.dequeue_by_id(cid, owner="artifacts-test-worker")
        # the manifest the build is handed is the one /manifests shows
        r = await d.cloud.get(f"{CLOUD}/composes/{cid}/manifests")
        assert r.json()["manifests"] == [dq.dynamic_args[0]["manifest"]]
        r = await d.cloud.get(f"{CLOUD}/composes/{cid}/metadata")
        assert r.status == 200 and "packages" not in r.json()
        (build,) = (await d.cloud.get(f"{CLOUD}/composes/{cid}/logs")).json()["image_builds"]
        assert build == {"success": False, "upload_status": "", "host_os": "", "arch": ""}

        image = d.state / "results" / cid / "disk.qcow2"
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(b"QFI\xfb" + bytes(range(256)) * 64)
        output = {"type": "result", "success": True, "metadata": {},
                  "log": {"os": [{"id": "abc", "type": "org.osbuild.debootstrap", "output": "ok"}]}}
        await jobs.finish(dq.token, {"success": True, "osbuild_output": output, "target_results": [],
                                     "upload_status": "success", "host_os": "debian-12", "arch": "x86_64",
                                     "pipeline_names": {"build": ["build"], "payload": ["os", "image"]}})
    finally:
        await db.close()

    r = await d.cloud.get(f"{CLOUD}/composes/{cid}/metadata")
    assert r.status == 200, r.body
    body = r.json()
    conforms(body, "ComposeMetadata")
    assert list(body)[:4] == ["href", "id", "kind", "packages"] and "ostree_commit" not in body
    want = {(p["name"], p["version"], p["release"], p["arch"]) for p in await weldr_packages(d, cid)}
    assert {(p["name"], p["version"], p["release"], p["arch"]) for p in body["packages"]} == want
    tmux = next(p for p in body["packages"] if p["name"] == "tmux")
    assert tmux["type"] == "deb" and tmux["checksum"].startswith("sha256:") and tmux["sigmd5"] == ""

    (build,) = (await d.cloud.get(f"{CLOUD}/composes/{cid}/logs")).json()["image_builds"]
    assert build["success"] is True and build["osbuild_output"] == output and build["host_os"] == "debian-12"
    assert "target_results" not in build   # empty: omitted, as upstream marshals it

    r = await d.cloud.get(f"{CLOUD}/composes/{cid}/download")
    assert r.status == 200 and r.body == image.read_bytes()
    assert r.headers["Content-Disposition"] == f"attachment; filename={cid}-disk.qcow2"


async def test_stage_metadata_is_upstreams_package_list(daemon: Daemon) -> None:
    """A build whose payload pipelines recorded ``org.osbuild.rpm`` / ``org.osbuild.ostree.commit``
    stage metadata (upstream osbuild on an RPM distro): metadata lists those packages (sigmd5 and
    signature included) and the commit, as upstream does, not the depsolve result; a build pipeline's
    metadata is not the image's."""
    d = daemon
    cid = await d.compose({**BP, "name": "cloud-artifacts-rpm-md"})
    rpm = {"name": "bash", "epoch": None, "version": "5.2.37", "release": "1.fc42", "arch": "x86_64",
           "sigmd5": "9d1e6bd33de8d5d6c4c9f1e2a8b7c6d5", "sigpgp": "89021c04...", "siggpg": None}
    other = {**rpm, "name": "dnf", "epoch": "1", "sigpgp": None, "siggpg": "8902..."}
    metadata = {"build": {"org.osbuild.rpm": {"packages": [{**rpm, "name": "rpm-build-only"}]}},
                "os": {"org.osbuild.rpm": {"packages": [rpm, other]},
                       "org.osbuild.ostree.commit": {"compose": {"ostree-commit": "abc123"}}}}
    db = await Database.open(d.state / "osbuildd.db")
    try:
        jobs = JobStore(db)
        dq = await jobs.dequeue_by_id(cid, owner="artifacts-test-worker")
        await jobs.finish(dq.token, {"success": True, "osbuild_output": {
            "success": True, "metadata": metadata, "log": {"os": [{"id": "1", "type": "org.osbuild.rpm"}]}},
            "pipeline_names": {"build": ["build"], "payload": ["os", "image", "qcow2"]}})
    finally:
        await db.close()
    r = await d.cloud.get(f"{CLOUD}/composes/{cid}/metadata")
    assert r.status == 200, r.body
    body = r.json()
    conforms(body, "ComposeMetadata")
    assert body["ostree_commit"] == "abc123"
    assert body["packages"] == [
        {"arch": "x86_64", "name": "bash", "release": "1.fc42", "signature": "89021c04...", "type": "rpm",
         "version": "5.2.37", "sigmd5": "9d1e6bd33de8d5d6c4c9f1e2a8b7c6d5"},
        {"arch": "x86_64", "epoch": "1", "name": "dnf", "release": "1.fc42", "signature": "8902...", "type": "rpm",
         "version": "5.2.37", "sigmd5": "9d1e6bd33de8d5d6c4c9f1e2a8b7c6d5"},
    ]
