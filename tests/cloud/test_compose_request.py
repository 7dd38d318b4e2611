"""``POST /compose`` on the real daemon's Cloud API (unix listener, nothing runs: ``local_executor =
false``): the request's translation (each API image type onto the distributions' own, Debian and RPM;
customizations or blueprint into the stored blueprint; repositories; ``upload_options`` and
``upload_targets`` into the build's targets), upstream's refusal ids with nothing stored afterwards,
several images as one compose stored whole, and a failure's real reason (an unresolvable package
through the depsolve job; a failing stage through a replayed osbuild)."""

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
FEDORA_REPO = {"baseurl": "https://dl.fedoraproject.org/pub/fedora/linux/releases/43/Everything/x86_64/os/"}
LOCAL = [{"type": "local", "upload_options": {}}]


def request(image_type: str = "guest-image", distribution: str = "debian-12", **image: Any) -> dict[str, Any]:
    repo = DEBIAN_REPO if distribution.startswith("debian") else FEDORA_REPO
    ir = {"architecture": "x86_64", "image_type": image_type, "repositories": [repo], **image}
    if "upload_options" not in image and "upload_targets" not in image:
        if image_type == "gcp":   # upstream takes no local target for GCE images
            ir["upload_options"] = {"region": "eu"}
        else:
            ir["upload_targets"] = LOCAL
    return {"distribution": distribution, "image_request": ir, "customizations": {"packages": ["tmux"]}}


def with_(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``body`` with ``a__b=value`` set (None: removed)."""
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


@pytest.fixture
async def daemon(repo_root: Path, tmp_path: Path, shared_state_dir: Path):
    async with cloud_daemon(repo_root, tmp_path, shared_state_dir) as d:
        yield d


def rows(state: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{state / 'osbuildd.db'}?mode=ro", uri=True) as db:
        return list(db.execute(sql, params).fetchall())


def build_args(state: Path, compose_id: str) -> dict[str, Any]:
    ((args,),) = rows(state, "SELECT args FROM jobs WHERE id = ?", compose_id)
    return dict(json.loads(args))


def stored(state: Path, compose_id: str) -> dict[str, Any]:
    """The compose's row: its request JSON (blueprint, targets, api_request) and columns."""
    ((request, distro, image_type),) = rows(state, "SELECT request, distro, image_type FROM composes WHERE id = ?",
                                            compose_id)
    return {"request": json.loads(request), "distro": distro, "image_type": image_type}


def counts(state: Path) -> tuple[int, ...]:
    return tuple(rows(state, "SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM composes),"
                             " (SELECT count(*) FROM compose_groups)")[0])


async def composes(d: Daemon) -> list[dict[str, Any]]:
    r = await d.cloud.get(f"{CLOUD}/composes/")
    assert r.status == 200, r.body
    return list(r.json())


async def post(d: Daemon, body: dict[str, Any]) -> str:
    r = await d.cloud.post(f"{CLOUD}/compose", body)
    assert r.status == 201, r.body
    conforms(r.json(), "ComposeId")
    assert r.json()["kind"] == "ComposeId" and r.json()["href"] == f"{CLOUD}/compose"
    return str(r.json()["id"])


async def test_compose_is_enqueued_and_pending(daemon: Daemon) -> None:
    d = daemon
    body = request(upload_targets=[{"type": "local", "upload_options": {}},
                                   {"type": "aws.s3", "upload_options": {"region": "us-east-1"}}])
    cid = await post(d, body)
    r = await d.cloud.get(f"{CLOUD}/composes/{cid}")
    assert r.status == 200, r.body
    status = r.json()
    conforms(status, "ComposeStatus")
    assert status == {"href": f"{CLOUD}/composes/{cid}", "id": cid, "kind": "ComposeStatus", "status": "pending",
                      "image_status": {"status": "pending"}}   # no target runs yet: no upload status (upstream)
    assert [c["id"] for c in await composes(d)] == [cid]
    # the graph is stored pending: the depsolve and manifest are jobs the executor runs, not the request's
    jobs = rows(d.state, "SELECT type, status FROM jobs ORDER BY seq")
    assert jobs == [("depsolve", "pending"), ("manifest-id-only", "pending"), ("osbuild:x86_64", "pending")], jobs
    # the build's targets in the request's order, as upstream names them
    targets = build_args(d.state, cid)["targets"]
    assert [t["name"] for t in targets] == ["org.osbuild.worker.server", "org.osbuild.aws.s3"]
    assert targets[0]["image_name"] == "disk.qcow2"
    assert targets[1]["options"]["region"] == "us-east-1" and targets[1]["image_name"].startswith("composer-api-")
    assert targets[1]["osbuild_artifact"] == {"export_filename": "disk.qcow2", "export_name": "qcow2"}
    # the request as sent is the metadata's request; the blueprint is upstream's "empty blueprint"
    r = await d.cloud.get(f"{CLOUD}/composes/{cid}/metadata")
    assert r.status == 200 and r.json()["request"] == body, r.body
    row = stored(d.state, cid)
    assert row["request"]["origin"] == "cloud" and row["request"]["channel"] == ""
    bp = row["request"]["blueprint"]
    assert (bp["name"], bp["version"], bp["packages"]) == ("empty blueprint", "0.0.0", [{"name": "tmux"}])
    # Weldr sees the same compose, as a qcow2 waiting
    info = (await d.weldr.get(f"/api/v1/compose/info/{cid}")).json()
    assert info["compose_type"] == "qcow2" and info["queue_status"] == "WAITING", info


# (distribution, API image type, osbuildd image type): every API type a distribution has
MAPPINGS = [
    ("debian-12", "aws", "ami"), ("debian-12", "gcp", "gce"), ("debian-12", "azure", "vhd"),
    ("debian-12", "guest-image", "qcow2"), ("debian-12", "vsphere", "vmdk"),
    ("debian-12", "minimal-raw", "raw"),   # Debian's raw image answers to upstream's name
    ("debian-13", "guest-image", "qcow2"),
    ("fedora-43", "aws", "ami"), ("fedora-43", "gcp", "gce"), ("fedora-43", "azure", "vhd"),
    ("fedora-43", "guest-image", "qcow2"), ("fedora-43", "minimal-raw", "minimal-raw"),
    ("centos-9", "guest-image", "qcow2"), ("rhel-9", "guest-image", "qcow2"),   # rhel-9: upstream's alias
]


async def test_image_types_map_as_upstream(daemon: Daemon) -> None:
    for distribution, api, internal in MAPPINGS:
        cid = await post(daemon, request(api, distribution))
        row = stored(daemon.state, cid)
        assert row["image_type"] == internal, (distribution, api, row)
        assert row["distro"] == {"rhel-9": "rhel-9.6"}.get(distribution, distribution)
        info = (await daemon.weldr.get(f"/api/v1/compose/info/{cid}")).json()
        assert info["compose_type"] == internal


async def test_upload_options_and_targets_are_the_builds_targets(daemon: Daemon) -> None:
    d = daemon
    # aws: upload_options is the aws target (upstream's options and key, snapshot name as image name)
    cid = await post(d, request("aws", upload_options={"region": "eu-west-1", "share_with_accounts": ["123456789012"],
                                                        "snapshot_name": "snap"},
                                upload_targets=LOCAL))
    local, aws = build_args(d.state, cid)["targets"]
    assert local["name"] == "org.osbuild.worker.server"
    assert local["image_name"] == local["osbuild_artifact"]["export_filename"] == aws["osbuild_artifact"]["export_filename"]
    assert aws["name"] == "org.osbuild.aws" and aws["image_name"] == "snap"
    assert aws["options"]["region"] == "eu-west-1" and aws["options"]["shareWithAccounts"] == ["123456789012"]
    assert aws["options"]["bootMode"] in ("uefi-preferred", "uefi", "legacy-bios")
    # gcp: the object is a .tar.gz, the OS is the distribution's, a bucket when given
    cid = await post(d, request("gcp", upload_options={"region": "eu", "bucket": "b", "image_name": "img",
                                                        "share_with_accounts": ["user:a@example.com"]}))
    (gcp,) = build_args(d.state, cid)["targets"]
    assert gcp["name"] == "org.osbuild.gcp" and gcp["image_name"] == "img"
    assert gcp["options"]["object"].endswith(".tar.gz") and gcp["options"]["os"] == "debian-12"
    assert (gcp["options"]["bucket"], gcp["options"]["region"]) == ("b", "eu")
    # azure: the image target with its resource group, location and Hyper-V generation
    opts = {"tenant_id": "t", "subscription_id": "s", "resource_group": "rg", "location": "westeurope",
            "hyper_v_generation": "V2"}
    cid = await post(d, request("azure", upload_options=opts))
    (azure,) = build_args(d.state, cid)["targets"]
    assert azure["name"] == "org.osbuild.azure.image" and azure["image_name"].startswith("composer-api-")
    assert azure["options"] == {"tenant_id": "t", "subscription_id": "s", "resource_group": "rg",
                                "location": "westeurope", "hyperv_generation": "V2"}
    # two targets of one kind, and upload_options {} (the spec's LocalUploadOptions) as the local target
    cid = await post(d, request(upload_options={}, upload_targets=[
        {"type": "aws.s3", "upload_options": {"region": "us-east-1", "public": True}},
        {"type": "aws.s3", "upload_options": {"region": "eu-west-1"}}]))
    targets = build_args(d.state, cid)["targets"]
    assert [(t["name"], t["options"].get("region"), t["options"].get("public")) for t in targets] == [
        ("org.osbuild.aws.s3", "us-east-1", True), ("org.osbuild.aws.s3", "eu-west-1", False),
        ("org.osbuild.worker.server", None, None)]


async def test_customizations_become_the_blueprint(daemon: Daemon) -> None:
    d = daemon
    cust = {
        "packages": ["tmux"], "hostname": "box", "kernel": {"append": "console=ttyS0"},
        "users": [{"name": "admin", "password": "secret-pw", "groups": ["sudo"], "key": "ssh-ed25519 AAAA x"}],
        "groups": [{"name": "ops", "gid": 2000}],
        "services": {"enabled": ["ssh"]}, "timezone": {"timezone": "Europe/Berlin"},
        "locale": {"languages": ["en_US.UTF-8"], "keyboard": "us"},
        "filesystem": [{"mountpoint": "/var", "min_size": 2147483648}],
        "files": [{"path": "/etc/motd", "data": "hi\n"}], "directories": [{"path": "/srv/data"}],
        "custom_repositories": [{"id": "extra", "name": "Extra", "baseurl": ["http://example.com/debian"]}],
    }
    body = with_(request(), customizations=cust)
    cid = await post(d, body)
    bp = stored(d.state, cid)["request"]["blueprint"]
    c = bp["customizations"]
    assert (c["hostname"], c["kernel"], c["services"]) == ("box", {"append": "console=ttyS0"}, {"enabled": ["ssh"]})
    assert c["filesystem"] == [{"mountpoint": "/var", "minsize": 2147483648}]
    assert c["group"] == [{"name": "ops", "gid": 2000}]
    assert c["repositories"] == [{"id": "extra", "baseurls": ["http://example.com/debian"], "name": "Extra"}]
    user = c["user"][0]
    assert user["name"] == "admin" and user["groups"] == ["sudo"] and user["password"].startswith("$6$")
    # the password is never kept in clear: not in the row, not in the job arguments, not in /metadata
    dump = json.dumps(rows(d.state, "SELECT request FROM composes")) + json.dumps(rows(d.state, "SELECT args FROM jobs"))
    assert "secret-pw" not in dump
    r = await d.cloud.get(f"{CLOUD}/composes/{cid}/metadata")
    assert r.json()["request"]["customizations"]["users"][0]["password"] == user["password"]


async def test_blueprint_request(daemon: Daemon) -> None:
    """``blueprint`` instead of customizations: its distro overrides the request's (upstream), its
    containers' tls_verify is the blueprint's tls-verify."""
    d = daemon
    bp = {"name": "web", "version": "1.2.3", "distro": "debian-13", "packages": [{"name": "nginx"}],
          "customizations": {"hostname": "web", "user": [{"name": "u", "password": "pw2"}]}}
    cid = await post(d, with_(request(), customizations=None, blueprint=bp))
    row = stored(d.state, cid)
    assert row["distro"] == "debian-13"
    assert (row["request"]["blueprint"]["name"], row["request"]["blueprint"]["version"]) == ("web", "1.2.3")
    assert row["request"]["blueprint"]["customizations"]["user"][0]["password"].startswith("$6$")


def rpm(body: dict[str, Any]) -> dict[str, Any]:
    return with_(body, distribution="fedora-43")


REFUSALS = [
    ("both", with_(request(), blueprint={"name": "x"}), 39),
    ("distribution", with_(request(), distribution="debian-99"), 4),
    ("no distribution", with_(request(), distribution=None), 4),
    ("architecture", with_(request(), image_request__architecture="s390x"), 5),
    ("image type", request("edge-commit"), 6),
    ("image type of another distribution", request("vsphere", "fedora-43"), 6),
    ("repository", with_(request(), image_request__repositories=[{"rhsm": False}]), 7),
    ("check_gpg without gpgkey", rpm(with_(request(distribution="fedora-43"), image_request__repositories=[
        {"baseurl": FEDORA_REPO["baseurl"], "check_gpg": True}])), 29),
    ("no image", with_(request(), image_request=None), 25),
    ("17 images", with_(request(), image_request=None, image_requests=[request()["image_request"]] * 17), 25),
    ("image_request and image_requests", with_(request(), image_requests=[request()["image_request"]]), 25),
    ("second image bad", with_(request(), image_request=None, image_requests=[
        request()["image_request"], with_(request(), image_request__architecture="s390x")["image_request"]]), 5),
    ("koji", with_(request(), koji={"server": "https://koji.example", "task_id": 1, "name": "n",
                                    "version": "1", "release": "1"}), 42),
    ("bootc", with_(request(), distribution=None, bootc={"reference": "quay.io/centos-bootc/centos-bootc:stream9"}), 42),
    ("bootc image type", request("bootable-container-iso"), 6),
    ("blueprint_id", with_(request(), blueprint_id="6f9524ca-d09a-479c-a92e-0875cd303803"), 42),
    ("nowhere to put the image", with_(request(), image_request__upload_targets=None), 42),
    ("container target", request(upload_targets=[{"type": "container", "upload_options": {}}]), 38),
    ("aws target for a qcow2", request(upload_targets=[{"type": "aws", "upload_options": {
        "region": "eu-west-1", "share_with_accounts": ["123456789012"]}}]), 38),
    ("local target for gcp", with_(request("gcp"), image_request__upload_options=None,
                                   image_request__upload_targets=LOCAL), 38),
    ("aws target without region", request("aws", upload_targets=[{"type": "aws", "upload_options": {}}]), 30),
    ("local_save", request(upload_options={"local_save": True}), 36),
    ("payload without baseurl", with_(request(), customizations={"payload_repositories": [{"metalink": "http://x/m"}]}), 24),
    ("subscription", with_(request(), customizations={"subscription": {
        "organization": "o", "activation_key": "k", "server_url": "s", "base_url": "b", "insights": False}}), 35),
    ("customization the image type cannot take", with_(request(), customizations={"installation_device": "/dev/sda"}), 35),
    ("blueprint version", with_(request(), customizations=None, blueprint={"name": "x", "version": "one"}), 35),
]


@pytest.mark.parametrize(("what", "body", "error_id"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_refusals_store_nothing(daemon: Daemon, what: str, body: dict[str, Any], error_id: int) -> None:
    r = await daemon.cloud.post(f"{CLOUD}/compose", body)
    err = r.json()
    conforms(err, "Error")
    # the spec's validator may refuse first (30) where upstream's own check would
    assert (r.status, err["id"]) in ((400, str(error_id)), (400, "30")), (what, r.body)
    assert err["details"], err
    assert err["code"] == f"IMAGE-BUILDER-COMPOSER-{err['id']}" and err["href"] == f"{CLOUD}/errors/{err['id']}"
    assert await composes(daemon) == []
    assert counts(daemon.state) == (0, 0, 0)


async def test_refusal_texts_are_upstreams(daemon: Daemon) -> None:
    """The reasons of the ids POST /compose answers, as upstream's table words them (39 is the
    validator's 30 first: the spec says ``not: {required: [customizations, blueprint]}``)."""
    want = {4: "Unsupported distribution",
            5: "Unsupported architecture", 6: "Unsupported image type", 7: "Must specify baseurl, mirrorlist, or metalink",
            24: "BaseURL must be specified for payload repositories",
            25: "Compose request has unsupported number of image builds",
            29: "Invalid repository, when check_gpg is set, gpgkey must be specified",
            35: "Invalid image customization", 38: "Invalid upload target for image type",
            42: "Invalid request, see details for more information"}
    seen = set()
    for _what, body, _error_id in REFUSALS:
        err = (await daemon.cloud.post(f"{CLOUD}/compose", body)).json()
        if int(err["id"]) in want:
            assert err["reason"] == want[int(err["id"])], err
            seen.add(int(err["id"]))
    assert seen == set(want), set(want) - seen


async def test_several_images_are_one_compose(daemon: Daemon) -> None:
    """An addition to upstream (which builds several images only for Koji): one compose id, one
    image status per image request, each image with its own targets, stored in one transaction."""
    d = daemon
    first = request("guest-image", upload_targets=LOCAL)["image_request"]
    second = request("aws", upload_options={"region": "eu-west-1", "share_with_accounts": ["123456789012"]})["image_request"]
    body = with_(request(), image_request=None, image_requests=[first, second])
    cid = await post(d, body)
    status = (await d.cloud.get(f"{CLOUD}/composes/{cid}")).json()
    conforms(status, "ComposeStatus")
    assert status["status"] == "pending" and [i["status"] for i in status["image_statuses"]] == ["pending"] * 2
    assert status["image_status"] == status["image_statuses"][0]
    listed = await composes(d)
    assert [c["id"] for c in listed] == [cid] and len(listed[0]["image_statuses"]) == 2
    # two builds behind it, each with its image type and targets (Weldr sees both), one group
    groups = rows(d.state, "SELECT id, position, compose_id FROM compose_groups ORDER BY position")
    assert [g[:2] for g in groups] == [(cid, 0), (cid, 1)] and groups[0][2] == cid
    other = groups[1][2]
    assert [t["name"] for t in build_args(d.state, cid)["targets"]] == ["org.osbuild.worker.server"]
    assert [t["name"] for t in build_args(d.state, other)["targets"]] == ["org.osbuild.aws"]
    assert stored(d.state, other)["image_type"] == "ami"
    # one manifest seed for the images of one request (upstream: the same ids in every image)
    seeds = {stored(d.state, i)["request"]["seed"] for i in (cid, other)}
    assert len(seeds) == 1
    weldr = (await d.weldr.get("/api/v1/compose/queue")).json()
    assert sorted(c["id"] for c in weldr["new"] + weldr["run"]) == sorted([cid, other])
    # the later image is reachable on its own, and not listed on its own
    r = await d.cloud.get(f"{CLOUD}/composes/{other}")
    assert r.status == 200 and "image_statuses" not in r.json()
    # the artifact routes answer per image; the request is kept once
    r = await d.cloud.get(f"{CLOUD}/composes/{cid}/metadata")
    assert r.status == 200 and r.json()["request"] == body, r.body
    # deleted whole or not at all: both still wait
    r = await d.cloud.request("DELETE", f"{CLOUD}/composes/{cid}")
    assert r.status == 400 and r.json()["id"] == "31", r.body
    assert "Cannot delete job before job is finished" in r.json()["details"]
    assert counts(d.state) == (6, 2, 2)


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
    """As upstream: 201 at once, then the depsolve job fails and the status says why, as upstream's
    chain: 9 (manifest dependency) <- 5 (depsolve dependency, a bad package set) <- the solver's error."""
    async with cloud_daemon(repo_root, tmp_path, shared_state_dir, builder="local_executor = true") as d:
        body = with_(request(), customizations={"packages": ["no-such-package-osbuildd"]})
        cid = await post(d, body)
        final = (await until_settled(d, cid))[-1]
        assert final["status"] == "failure" and final["image_status"]["status"] == "failure", final
        err = final["image_status"]["error"]
        assert (err["id"], err["reason"]) == (9, "Manifest dependency failed"), err
        (dep,) = err["details"]
        assert (dep["id"], dep["reason"]) == (5, "Error in depsolve job dependency input, bad package set requested")
        (solver,) = dep["details"]
        assert solver["id"] == 20 and "no-such-package-osbuildd" in solver["reason"], solver
        assert "upload_status" not in final["image_status"]   # no target ran
        # a settled compose can be deleted; then it is gone
        r = await d.cloud.request("DELETE", f"{CLOUD}/composes/{cid}")
        assert r.status == 200 and r.json() == {"href": f"{CLOUD}/composes/delete/{cid}", "id": cid,
                                                "kind": "ComposeDeleteStatus"}, r.body
        conforms(r.json(), "ComposeDeleteStatus")
        assert (await d.cloud.get(f"{CLOUD}/composes/{cid}")).json()["id"] == "15"
        assert counts(d.state) == (0, 0, 0)


async def test_failing_stage_has_its_reason(repo_root: Path, tmp_path: Path, shared_state_dir: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The build replayed by the fake osbuild (osbuild's recorded output of a failing stage)."""
    monkeypatch.setenv("FAKE_OSBUILD_NOTES", str(OSBUILD))
    monkeypatch.setenv("FAKE_OSBUILD_MODE", "failure")
    builder = f'local_executor = true\nosbuild = "{FAKE_OSBUILD}"'
    async with cloud_daemon(repo_root, tmp_path, shared_state_dir, builder=builder) as d:
        cid = await post(d, request())
        seen = await until_settled(d, cid)
        final = seen[-1]
        assert final["status"] == "failure", final
        err = final["image_status"]["error"]
        assert err["id"] == 10 and "org.osbuild.error" in json.dumps(err), err
        states = [s["image_status"]["status"] for s in seen]
        assert set(states) <= {"pending", "building", "failure"}, states
