"""The compose service without building: validation, depsolve and manifest in the request (real Debian
mirror, the run's shared depsolve cache), the job graph, states, cancel, delete, fakes."""

from __future__ import annotations

import os

import pytest

from osbuildd.blueprint import Blueprint
from osbuildd.compose import (
    ComposeNotFound,
    ComposeRequest,
    ComposeRequestError,
    ComposeStateError,
    UploadTarget,
)
from osbuildd.depsolve import DepsolveError
from osbuildd.distro import Repository
from osbuildd.executor import start_local
from osbuildd.queue import JobStatus
from osbuildd.services import Services

from .helpers import embedded_config


@pytest.fixture
async def services(tmp_path, shared_state_dir, backend):
    (tmp_path / "state").mkdir()
    os.symlink(shared_state_dir / "cache", tmp_path / "state" / "cache")   # a warm apt cache
    s = await Services.open(embedded_config(tmp_path / "state", backend))
    await start_local(s, start=False)   # nothing takes the jobs: they stay where we put them
    yield s
    await s.close()


def bp(**kw) -> Blueprint:
    b = Blueprint.from_json({"name": "base", "version": "1.2.3", **kw})
    b.initialize()
    return b


def req(**kw) -> ComposeRequest:
    base = {"distro": "debian-12", "arch": "x86_64", "image_type": "qcow2", "blueprint": bp()}
    return ComposeRequest(**{**base, **kw})


async def test_start_depsolves_and_stores_the_graph(services):
    cid = await services.compose.start(req(size=5 << 30))
    build = await services.jobs.get(cid)
    assert build.type == "osbuild:x86_64" and build.status == JobStatus.PENDING
    manifest_job = await services.jobs.get(build.dependencies[0])
    assert manifest_job.type == "manifest-id-only"
    dep = await services.jobs.get(manifest_job.dependencies[0])
    assert dep.type == "depsolve" and dep.dependencies == []
    # depsolve and manifest ran in the request: finished, with the results their job handlers record
    assert dep.status == manifest_job.status == JobStatus.FINISHED
    assert dep.error is None and manifest_job.error is None
    assert dep.started_at <= dep.finished_at <= manifest_job.started_at <= manifest_job.finished_at
    os_specs = dep.result["package_specs"]["os"]
    assert {"systemd", "linux-image-amd64"} <= {p["name"] for p in os_specs}
    assert all(p["url"].startswith("http") and p["checksum"].startswith("sha256:") for p in os_specs)
    assert set(dep.result["repo_configs"]) == set(dep.result["package_specs"])
    mres = manifest_job.result
    assert mres["manifest"]["version"] == "2" and mres["exports"] and mres["filename"] == "disk.qcow2"
    assert mres["pipeline_names"]["payload"]
    # upstream field names in the args
    assert {"package_sets", "module_platform_id", "arch", "releasever"} <= set(dep.args)
    assert dep.args["package_sets"] and all(isinstance(v, list) for v in dep.args["package_sets"].values())
    assert {"targets", "pipeline_names", "image_boot_mode"} <= set(build.args)
    # only the build job is left to do, and it gets the manifest job's result
    assert await services.jobs.dequeue(["depsolve", "manifest-id-only"], channels=None, timeout=0) is None
    ready = await services.jobs.dequeue(["osbuild:x86_64"], channels=None, timeout=0)
    assert ready is not None and ready.job.id == cid and ready.dynamic_args == [mres]
    c = await services.compose.get(cid)
    assert (c.state, c.weldr_status) == ("running", "RUNNING")
    assert (c.blueprint_name, c.blueprint_version, c.image_type, c.distro, c.arch) == \
        ("base", "1.2.3", "qcow2", "debian-12", "x86_64")
    assert c.size == 5 << 30 and c.image_filename and c.image_path is None
    assert c.manifest == mres["manifest"] and {p.name for p in c.packages} == {p["name"] for p in os_specs}
    assert [x.id for x in await services.compose.list()] == [cid]


async def test_unresolvable_package_refused_nothing_stored(services):
    with pytest.raises(DepsolveError) as ei:
        await services.compose.start(req(blueprint=bp(packages=[{"name": "no-such-package-xyz"}])))
    assert ei.value.problem == "not-found" and ei.value.package == "no-such-package-xyz"
    assert "no-such-package-xyz" in str(ei.value)
    with pytest.raises(DepsolveError):
        await services.compose.create_fake(req(blueprint=bp(packages=[{"name": "no-such-package-xyz"}])), True)
    assert await services.compose.list() == []
    assert await services.jobs.list() == []


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
    # depsolve and manifest ran in the request: only the build job was left to cancel
    assert {j.type: j.status for j in await services.jobs.list()} == {
        "depsolve": JobStatus.FINISHED, "manifest-id-only": JobStatus.FINISHED, "osbuild:x86_64": JobStatus.CANCELED}
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
    # depsolved first, as upstream: both list the image's packages and carry its manifest
    for c in (c_ok, c_bad):
        assert {"systemd", "linux-image-amd64"} <= {p.name for p in c.packages}
        assert c.manifest and c.manifest["version"] == "2"
    # fakes never reach the executor's queue
    assert await services.jobs.dequeue(["osbuild:x86_64"], channels=None, timeout=0) is None


async def test_channels_filter(services):
    a = await services.compose.start(req(channel="org-1"))
    b = await services.compose.start(req(channel="org-2"))
    assert [c.id for c in await services.compose.list("org-1")] == [a]
    assert {c.id for c in await services.compose.list()} == {a, b}
