"""The compose service without building: validation, the job graph, states, cancel, delete, fakes."""

from __future__ import annotations

import pytest

from osbuildd.blueprint import Blueprint
from osbuildd.compose import (
    ComposeNotFound,
    ComposeRequest,
    ComposeRequestError,
    ComposeStateError,
    UploadTarget,
    attach,
)
from osbuildd.config import Config
from osbuildd.distro import Repository
from osbuildd.queue import JobStatus
from osbuildd.services import Services


@pytest.fixture
async def services(tmp_path):
    s = await Services.open(Config.embedded(tmp_path / "state"))
    await attach(s, start_executor=False)   # nothing takes the jobs: they stay where we put them
    yield s
    await s.close()


def bp(**kw) -> Blueprint:
    b = Blueprint.from_json({"name": "base", "version": "1.2.3", **kw})
    b.initialize()
    return b


def req(**kw) -> ComposeRequest:
    base = {"distro": "debian-12", "arch": "x86_64", "image_type": "qcow2", "blueprint": bp()}
    return ComposeRequest(**{**base, **kw})


async def test_start_enqueues_graph_in_order(services):
    cid = await services.compose.start(req(size=5 << 30))
    build = await services.jobs.get(cid)
    assert build.type == "osbuild:x86_64" and build.status == JobStatus.PENDING
    manifest_job = await services.jobs.get(build.dependencies[0])
    assert manifest_job.type == "manifest-id-only"
    dep = await services.jobs.get(manifest_job.dependencies[0])
    assert dep.type == "depsolve" and dep.dependencies == []
    # upstream field names in the args
    assert {"package_sets", "module_platform_id", "arch", "releasever"} <= set(dep.args)
    assert dep.args["package_sets"] and all(isinstance(v, list) for v in dep.args["package_sets"].values())
    assert {"targets", "pipeline_names", "image_boot_mode"} <= set(build.args)
    # only the depsolve job is ready
    ready = await services.jobs.dequeue(["depsolve", "manifest-id-only", "osbuild:x86_64"], channels=None,
                                        timeout=0)
    assert ready is not None and ready.job.id == dep.id
    assert await services.jobs.dequeue(["manifest-id-only", "osbuild:x86_64"], channels=None, timeout=0) is None
    c = await services.compose.get(cid)
    assert (c.state, c.weldr_status) == ("waiting", "WAITING")
    assert (c.blueprint_name, c.blueprint_version, c.image_type, c.distro, c.arch) == \
        ("base", "1.2.3", "qcow2", "debian-12", "x86_64")
    assert c.size == 5 << 30 and c.image_filename and c.image_path is None
    assert [x.id for x in await services.compose.list()] == [cid]


@pytest.mark.parametrize("kw,field", [
    ({"distro": "debian-99"}, "distro"),
    ({"arch": "s390x"}, "arch"),
    ({"image_type": "nope"}, "image_type"),
    ({"size": -1}, "size"),
    ({"repositories": [Repository(id="x")]}, "repositories[0]"),
    ({"targets": [UploadTarget("org.example.nowhere")]}, "targets[0].name"),
    ({"blueprint": bp(customizations={"installation_device": "/dev/sda"})}, "blueprint"),
])
async def test_bad_requests_name_the_field(services, kw, field):
    with pytest.raises(ComposeRequestError) as ei:
        await services.compose.start(req(**kw))
    assert ei.value.field.startswith(field), ei.value
    assert await services.compose.list() == []
    assert await services.jobs.list() == []   # nothing half-enqueued


async def test_cancel_waiting_compose_cancels_the_chain(services):
    cid = await services.compose.start(req())
    await services.compose.cancel(cid)
    c = await services.compose.get(cid)
    assert (c.state, c.weldr_status) == ("canceled", "FAILED")
    assert {j.status for j in await services.jobs.list()} == {JobStatus.CANCELED}
    with pytest.raises(ComposeStateError):
        await services.compose.cancel(cid)
    await services.compose.delete(cid)
    with pytest.raises(ComposeNotFound):
        await services.compose.get(cid)
    assert await services.jobs.list() == []


async def test_delete_refused_while_waiting(services):
    cid = await services.compose.start(req())
    with pytest.raises(ComposeStateError):
        await services.compose.delete(cid)


async def test_fake_composes(services, tmp_path):
    ok = await services.compose.create_fake(req(), finished=True)
    bad = await services.compose.create_fake(req(), finished=False)
    c_ok, c_bad = await services.compose.get(ok), await services.compose.get(bad)
    assert (c_ok.state, c_ok.weldr_status) == ("finished", "FINISHED")
    assert c_ok.image_path is not None and c_ok.image_path.exists()
    assert (c_bad.state, c_bad.weldr_status) == ("failed", "FAILED")
    assert c_bad.error["id"] == 10
    # fakes never reach the executor's queue
    assert await services.jobs.dequeue(["osbuild:x86_64"], channels=None, timeout=0) is None


async def test_channels_filter(services):
    a = await services.compose.start(req(channel="org-1"))
    b = await services.compose.start(req(channel="org-2"))
    assert [c.id for c in await services.compose.list("org-1")] == [a]
    assert {c.id for c in await services.compose.list()} == {a, b}
