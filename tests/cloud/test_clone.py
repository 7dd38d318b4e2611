"""POST /composes/{id}/clone and GET /clones/{id} against moto's EC2.

The AMI composes are real composes of the compose service (depsolved on the Debian mirror, manifest
made) whose build job was then taken and finished through the job store's worker-side API with the
result a build that uploaded to EC2 records (``target_results``: ``org.osbuild.aws`` {ami, region}),
pointing at an AMI registered in moto from a real snapshot. No image is built.

The daemon test runs ``osbuildd serve`` (the Cloud API on a unix socket, the local executor running
the aws-ec2-copy / aws-ec2-share jobs against moto); the tenant test serves the same Cloud API
application in-process with a stand-in for JWT authentication (it sets the caller's identity from a
header), on a real unix socket and a real database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from foundation.daemon_helpers import NotifySocket, daemon_env

from osbuildd.api import cloud, identity
from osbuildd.blueprint import Blueprint
from osbuildd.compose import ComposeRequest, UploadTarget
from osbuildd.config import Config
from osbuildd.queue import JobError
from osbuildd.services import Services
from osbuildd.upload.awsclient import create_client

BASE = "/api/image-builder-composer/v2"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
SOURCE, TARGET = "us-east-1", "eu-west-1"
TARGET_SHARE, REQUEST_SHARE = "111122223333", "210987654321"
DONE_LIMIT = 120.0   # a hang guard, not a timing assertion


def ec2(moto_url: str, region: str) -> Any:
    return create_client("ec2", region=region, endpoint=moto_url, creds=KEYS)


async def register_ami(moto_url: str, region: str = SOURCE) -> tuple[str, str]:
    """(ami, snapshot): an AMI registered in moto from a snapshot of a fresh volume."""
    async with ec2(moto_url, region) as e:
        vol = await e.create_volume(Size=1, AvailabilityZone=f"{region}a")
        snap = await e.create_snapshot(VolumeId=vol["VolumeId"], Description="osbuildd clone test")
        img = await e.register_image(
            Name=f"osbuildd-test-{uuid.uuid4().hex[:8]}", Architecture="x86_64", RootDeviceName="/dev/sda1",
            VirtualizationType="hvm", EnaSupport=True,
            BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snap["SnapshotId"]}}])
        # the snapshot the image lists (moto registers its own in place of the one given)
        image = (await e.describe_images(ImageIds=[img["ImageId"]]))["Images"][0]
        return img["ImageId"], image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]


def _request(target: UploadTarget, channel: str = "") -> ComposeRequest:
    bp = Blueprint.from_json({"name": "clone-test", "version": "0.0.1"})
    bp.initialize()
    return ComposeRequest(distro="debian-12", arch="x86_64", image_type="ami", blueprint=bp,
                          targets=[target], channel=channel)


def aws_target(shares: list[str] | None = None) -> UploadTarget:
    opts: dict[str, Any] = {"region": SOURCE, "bucket": "osbuildd-clone", "key": "image.raw"}
    if shares:
        opts["shareWithAccounts"] = shares
    return UploadTarget("org.osbuild.aws", "clone-test-image", opts)


async def seed(services: Services, target: UploadTarget, outcome: dict[str, Any] | None, *,
               failed: bool = False, channel: str = "") -> str:
    """A compose whose build job a worker took and finished with ``outcome`` as its target result
    (``failed``: the build failed); ``outcome`` None leaves the build waiting."""
    cid = await services.compose.start(_request(target, channel))
    if outcome is None and not failed:
        return cid
    dq = await services.jobs.dequeue_by_id(cid, owner="clone-test-worker")
    if failed:
        err = JobError(10, "osbuild build failed")
        await services.jobs.finish(dq.token, {"success": False, "target_results": [], "job_error": err.to_dict()}, err)
    else:
        await services.jobs.finish(dq.token, {"success": True, "osbuild_output": {"success": True},
                                              "target_results": [outcome], "upload_status": "success"})
    return cid


def _state_dir(state: Path, warm: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    if not (state / "cache").exists():
        os.symlink(warm / "cache", state / "cache")   # the run's warm apt cache


async def open_services(state: Path, warm: Path) -> Services:
    await asyncio.to_thread(_state_dir, state, warm)
    return await Services.open(Config.embedded(state))


class Cloud:
    """A client of the Cloud API on a unix socket."""

    def __init__(self, sock: Path) -> None:
        self.session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock)))

    async def call(self, method: str, path: str, *, body: Any = None, data: bytes | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        kw: dict[str, Any] = {"headers": headers or {}}
        if data is not None:
            kw["data"], kw["headers"]["Content-Type"] = data, "application/json"
        elif body is not None:
            kw["json"] = body
        async with self.session.request(method, f"http://cloud{BASE}{path}", **kw) as r:
            return r.status, await r.json(content_type=None)

    async def until_done(self, clone_id: str) -> dict[str, Any]:
        async with asyncio.timeout(DONE_LIMIT):
            while True:
                status, body = await self.call("GET", f"/clones/{clone_id}")
                assert status == 200, body
                if body["status"] in ("success", "failure"):
                    return body
                assert body["status"] in ("pending", "running"), body
                await asyncio.sleep(0.2)

    async def close(self) -> None:
        await self.session.close()


def assert_error(status: int, body: Any, http: int, error_id: int) -> None:
    assert (status, body.get("kind"), body.get("id")) == (http, "Error", str(error_id)), body
    assert body["code"] == f"IMAGE-BUILDER-COMPOSER-{error_id}" and body["operation_id"], body


# -- through the daemon -------------------------------------------------------------------------

@pytest.fixture
async def daemon(tmp_path: Path, repo_root: Path, shared_state_dir: Path, moto_url: str) -> AsyncIterator[dict[str, Any]]:
    """Composes seeded into a state dir, then ``osbuildd serve`` on it with the Cloud API on a unix
    socket and the [aws] config (credentials file; EC2 endpoint moto, through the SDK's
    AWS_ENDPOINT_URL_EC2)."""
    ami, snapshot = await register_ami(moto_url)
    state = tmp_path / "state"
    services = await open_services(state, shared_state_dir)
    try:
        seeded = {
            "ami": ami, "snapshot": snapshot,
            "aws": await seed(services, aws_target([TARGET_SHARE]),
                              {"name": "org.osbuild.aws", "options": {"ami": ami, "region": SOURCE}}),
            "missing": await seed(services, aws_target(),   # its AMI is not (any more) in EC2
                                  {"name": "org.osbuild.aws", "options": {"ami": "ami-0123456789abcdef0",
                                                                          "region": SOURCE}}),
            "failed": await seed(services, aws_target(), None, failed=True),
            "s3": await seed(services, UploadTarget("org.osbuild.aws.s3", "x", {"region": SOURCE, "bucket": "b"}),
                             {"name": "org.osbuild.aws.s3", "options": {"url": "https://example.invalid/x"}}),
        }
    finally:
        await services.close()
    creds = tmp_path / "aws-credentials"
    creds.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = clone-Secret-do-not-log\n")
    sock = tmp_path / "cloud.sock"
    config = tmp_path / "osbuildd.toml"
    config.write_text(f'state_dir = "{state}"\n[weldr]\nsocket = "{tmp_path}/weldr.sock"\n'
                      f'[cloud]\nlisten = "unix:{sock}"\n[builder]\nprefetch = false\n'
                      f'[aws]\ncredentials = "{creds}"\nregion = "{SOURCE}"\n')
    notify = NotifySocket(tmp_path / "notify.sock")
    log = tmp_path / "daemon.log"
    env = daemon_env(repo_root, notify, AWS_ENDPOINT_URL_EC2=moto_url)
    with await asyncio.to_thread(open, log, "wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(config),
            cwd=repo_root, env=env, stdout=err, stderr=err)
    client = Cloud(sock)
    try:
        await notify.wait_for("READY=1", proc)
        yield {**seeded, "client": client, "log": log}
    finally:
        await client.close()
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            rc = await proc.wait()
        notify.close()
    text = log.read_text()
    assert rc == 0, text
    assert "Traceback" not in text, text
    assert "clone-Secret-do-not-log" not in text


async def test_clone_copies_to_a_region_and_shares(daemon: dict[str, Any], moto_url: str) -> None:
    api: Cloud = daemon["client"]
    cid = daemon["aws"]
    status, body = await api.call("POST", f"/composes/{cid}/clone",
                                  body={"region": TARGET, "share_with_accounts": [REQUEST_SHARE]})
    assert status == 201, body
    assert body["kind"] == "CloneComposeId" and body["href"] == f"{BASE}/composes/{cid}/clone"
    clone_id = body["id"]
    assert clone_id != cid and str(uuid.UUID(clone_id)) == clone_id
    done = await api.until_done(clone_id)
    assert done["status"] == "success", done
    assert (done["kind"], done["id"], done["href"], done["type"]) == (
        "CloneComposeStatus", clone_id, f"{BASE}/clones/{clone_id}", "aws")
    copy = done["options"]["ami"]
    assert done["options"]["region"] == TARGET and copy.startswith("ami-") and copy != daemon["ami"]
    accounts = {TARGET_SHARE, REQUEST_SHARE}   # the compose's aws target's accounts and the request's
    async with ec2(moto_url, TARGET) as e:
        image = (await e.describe_images(ImageIds=[copy]))["Images"][0]
        assert image["State"] == "available"
        assert {"Key": "Name", "Value": image["Name"]} in image["Tags"] and image["Name"].startswith("composer-api-")
        perms = await e.describe_image_attribute(ImageId=copy, Attribute="launchPermission")
        assert {p.get("UserId") for p in perms["LaunchPermissions"]} >= accounts
        snaps = [b["Ebs"]["SnapshotId"] for b in image["BlockDeviceMappings"]]
        assert snaps and daemon["snapshot"] not in snaps   # the copy's own snapshot, in the target region
        for snap in (await e.describe_snapshots(SnapshotIds=snaps))["Snapshots"]:
            assert {"Key": "Name", "Value": image["Name"]} in snap["Tags"]
        for snap in snaps:
            attr = await e.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
            assert {p.get("UserId") for p in attr["CreateVolumePermissions"]} >= accounts
    async with ec2(moto_url, SOURCE) as e:   # the source AMI was left alone
        perms = await e.describe_image_attribute(ImageId=daemon["ami"], Attribute="launchPermission")
        assert not perms["LaunchPermissions"]

    # a second clone into the same region reuses the finished copy: only a share job, on the copy
    status, again = await api.call("POST", f"/composes/{cid}/clone",
                                   body={"region": TARGET, "share_with_accounts": ["333344445555"]})
    assert status == 201, again
    done = await api.until_done(again["id"])
    assert (done["status"], done["options"]) == ("success", {"ami": copy, "region": TARGET}), done
    async with ec2(moto_url, TARGET) as e:
        perms = await e.describe_image_attribute(ImageId=copy, Attribute="launchPermission")
        assert "333344445555" in {p.get("UserId") for p in perms["LaunchPermissions"]}


async def test_clone_in_the_same_region_only_shares(daemon: dict[str, Any], moto_url: str) -> None:
    api: Cloud = daemon["client"]
    status, body = await api.call("POST", f"/composes/{daemon['aws']}/clone",
                                  body={"region": SOURCE, "share_with_accounts": [REQUEST_SHARE]})
    assert status == 201, body
    done = await api.until_done(body["id"])
    assert (done["status"], done["options"]) == ("success", {"ami": daemon["ami"], "region": SOURCE}), done
    async with ec2(moto_url, SOURCE) as e:
        perms = await e.describe_image_attribute(ImageId=daemon["ami"], Attribute="launchPermission")
        assert {p.get("UserId") for p in perms["LaunchPermissions"]} == {TARGET_SHARE, REQUEST_SHARE}
        attr = await e.describe_snapshot_attribute(SnapshotId=daemon["snapshot"], Attribute="createVolumePermission")
        assert {p.get("UserId") for p in attr["CreateVolumePermissions"]} == {TARGET_SHARE, REQUEST_SHARE}


async def test_clone_failures_carry_the_reason(daemon: dict[str, Any]) -> None:
    api: Cloud = daemon["client"]
    # the compose's AMI is gone: the copy fails (upstream's 3, "Source ami ... not found") ...
    status, body = await api.call("POST", f"/composes/{daemon['missing']}/clone", body={"region": TARGET})
    assert status == 201, body
    done = await api.until_done(body["id"])
    assert done["status"] == "failure" and done["error"]["id"] == 3, done
    assert done["error"]["reason"] == "Source ami 'ami-0123456789abcdef0' not found", done
    assert "InvalidAMIID.NotFound" in done["error"]["details"]["error"], done
    # ... and a share that depends on a failed copy fails as its dependent (26)
    status, body = await api.call("POST", f"/composes/{daemon['missing']}/clone",
                                  body={"region": TARGET, "share_with_accounts": [REQUEST_SHARE]})
    assert status == 201, body
    done = await api.until_done(body["id"])
    assert done["status"] == "failure" and done["error"]["id"] == 26, done


async def test_clone_refusals(daemon: dict[str, Any]) -> None:
    api: Cloud = daemon["client"]
    ok = {"region": TARGET}
    status, body = await api.call("POST", f"/composes/{daemon['failed']}/clone", body=ok)
    assert_error(status, body, 400, 31)
    assert body["reason"] == "Compose is running or has failed"
    status, body = await api.call("POST", f"/composes/{daemon['s3']}/clone", body=ok)
    assert_error(status, body, 400, 32)
    status, body = await api.call("POST", f"/composes/{uuid.uuid4()}/clone", body=ok)
    assert_error(status, body, 404, 15)
    status, body = await api.call("GET", f"/clones/{uuid.uuid4()}")
    assert_error(status, body, 404, 15)
    status, body = await api.call("POST", "/composes/not-a-uuid/clone", body=ok)
    assert_error(status, body, 400, 14)
    # a compose id is not a clone id, and a clone job is not a compose
    status, body = await api.call("GET", f"/clones/{daemon['aws']}")
    assert_error(status, body, 404, 26)
    for bad in ({}, {"region": 7}, {"region": TARGET, "share_with_accounts": "123"},
                {"region": TARGET, "colour": "blue"}, ["eu-west-1"]):
        status, body = await api.call("POST", f"/composes/{daemon['aws']}/clone", body=bad)
        assert_error(status, body, 400, 30)
    status, body = await api.call("POST", f"/composes/{daemon['aws']}/clone", data=b"{not json")
    assert status == 400 and body["id"] in ("20", "30"), body


# -- tenants (in-process app, identity from a stand-in for JWT) -----------------------------------

TENANT_HEADER = "X-Test-Tenant"


@web.middleware
async def _tenant_from_header(request: web.Request, handler: Any) -> web.StreamResponse:
    tenant = request.headers.get(TENANT_HEADER)
    if tenant:
        request[identity.IDENTITY] = identity.Identity("jwt", tenant=tenant)
    return await handler(request)


@pytest.fixture
async def tenants(tmp_path: Path, shared_state_dir: Path, moto_url: str) -> AsyncIterator[dict[str, Any]]:
    services = await open_services(tmp_path / "state", shared_state_dir)
    ami, _ = await register_ami(moto_url)
    result = {"name": "org.osbuild.aws", "options": {"ami": ami, "region": SOURCE}}
    a = await seed(services, aws_target(), result, channel="org-a")
    waiting = await seed(services, aws_target(), None, channel="org-a")
    app = cloud.create_app(services)
    app.middlewares.append(_tenant_from_header)   # innermost: after auth set the unix socket's identity
    runner = web.AppRunner(app)
    await runner.setup()
    sock = tmp_path / "cloud.sock"
    await web.UnixSite(runner, str(sock)).start()
    client = Cloud(sock)
    try:
        yield {"client": client, "services": services, "a": a, "waiting": waiting}
    finally:
        await client.close()
        await runner.cleanup()
        await services.close()


async def test_clone_is_per_tenant(tenants: dict[str, Any]) -> None:
    api: Cloud = tenants["client"]
    a, b = {TENANT_HEADER: "a"}, {TENANT_HEADER: "b"}
    body = {"region": TARGET, "share_with_accounts": [REQUEST_SHARE]}
    status, err = await api.call("POST", f"/composes/{tenants['a']}/clone", body=body, headers=dict(b))
    assert_error(status, err, 404, 15)
    assert await tenants["services"].jobs.dependents(tenants["a"]) == []   # nothing was enqueued
    status, made = await api.call("POST", f"/composes/{tenants['a']}/clone", body=body, headers=dict(a))
    assert status == 201, made
    share = await tenants["services"].jobs.get(made["id"])
    copy = await tenants["services"].jobs.get(share.dependencies[0])
    # the chain, in the caller's channel, with upstream's arguments
    assert (share.type, share.channel) == ("aws-ec2-share", "org-a")
    assert share.args == {"ami": "", "region": "", "share_with_accounts": [REQUEST_SHARE]}
    assert (copy.type, copy.channel, copy.dependencies) == ("aws-ec2-copy", "org-a", [tenants["a"]])
    assert copy.args["source_region"] == SOURCE and copy.args["target_region"] == TARGET
    assert copy.args["target_name"].startswith("composer-api-")
    # nothing runs the jobs here: the clone stays pending, and only its tenant sees it
    status, seen = await api.call("GET", f"/clones/{made['id']}", headers=dict(a))
    assert status == 200 and seen["status"] == "pending" and seen["options"] == {"ami": "", "region": ""}, seen
    status, err = await api.call("GET", f"/clones/{made['id']}", headers=dict(b))
    assert_error(status, err, 404, 15)
    # a compose still waiting for its build
    status, err = await api.call("POST", f"/composes/{tenants['waiting']}/clone", body=body, headers=dict(a))
    assert_error(status, err, 400, 31)
    # a job that is not a compose (the clone's own copy job)
    status, err = await api.call("POST", f"/composes/{copy.id}/clone", body=body, headers=dict(a))
    assert_error(status, err, 404, 26)
    # same region, no accounts anywhere: nothing to do, the compose itself is the answer (upstream)
    status, same = await api.call("POST", f"/composes/{tenants['a']}/clone", body={"region": SOURCE}, headers=dict(a))
    assert status == 201 and same["id"] == tenants["a"], same
