"""The in-process composer (``osbuildd.imagebuilder.local.LocalComposer``) answers what the Cloud API
answers over its socket: a real ``osbuildd serve`` (Cloud API on a unix listener, no auth, nothing
built: ``local_executor = false``) and a LocalComposer over the same state directory, opened in the
test (a second connection to the daemon's database, as a worker has). For each method the same
question goes to both and the answers are compared whole; a refusal's error object too, bar its
fresh operation id."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cloud.cloud_daemon import CLOUD, Daemon, cloud_daemon, conforms

from osbuildd.config import Config
from osbuildd.imagebuilder.composer import ComposerError
from osbuildd.imagebuilder.local import LocalComposer
from osbuildd.services import Services

DEBIAN = {"distribution": "debian-12", "architecture": "x86_64"}
REQUEST = {"distribution": "debian-12", "customizations": {"packages": ["tmux"]},
           "image_request": {"architecture": "x86_64", "image_type": "guest-image", "upload_options": {},
                             "repositories": [{"baseurl": "http://deb.debian.org/debian"}]}}
BP = {"name": "local-composer", "version": "0.0.1", "packages": [{"name": "tmux"}]}
UNKNOWN = "0b5c2c1e-6d3c-4b7a-9d6e-2f3a4b5c6d7e"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Both:
    daemon: Daemon
    local: LocalComposer
    services: Services


# one daemon for the module: each test compares answers about composes it made itself (by id)
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def both(repo_root: Path, tmp_path_factory: pytest.TempPathFactory, shared_state_dir: Path) -> AsyncIterator[Both]:
    tmp = tmp_path_factory.mktemp("local-composer")
    async with cloud_daemon(repo_root, tmp, shared_state_dir) as d:
        services = await Services.open(Config.load(tmp / "osbuildd.toml"), recover=False)
        try:
            yield Both(d, LocalComposer(services.config, services.compose, services.depsolver, services.distros),
                       services)
        finally:
            await services.close()


async def http(d: Daemon, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    r = await d.cloud.request(method, CLOUD + path, body)
    return r.status, r.json()


def without_operation(body: dict[str, Any]) -> dict[str, Any]:
    assert body["operation_id"], body
    return {k: v for k, v in body.items() if k != "operation_id"}


async def refused(call: Any) -> ComposerError:
    with pytest.raises(ComposerError) as info:
        await call
    conforms(info.value.body, "Error")
    return info.value


async def same_refusal(b: Both, call: Any, method: str, path: str, body: Any = None) -> ComposerError:
    """The LocalComposer's refusal is the Cloud API's answer: status and error object."""
    e = await refused(call)
    status, answer = await http(b.daemon, method, path, body)
    assert e.status == status, (e.body, answer)
    assert without_operation(e.body) == without_operation(answer)
    return e


def renamed(body: Any, old: str, new: str) -> Any:
    """``body`` with compose id ``old`` read as ``new`` (the same answer for another compose)."""
    return json.loads(json.dumps(body).replace(old, new))


async def test_compose_status_and_metadata_as_the_cloud_api(both: Both) -> None:
    b = both
    local_id = await b.local.compose(REQUEST, org_id="123")
    status, made = await http(b.daemon, "POST", "/compose", REQUEST)
    assert status == 201, made
    http_id = made["id"]
    assert local_id != http_id
    # the compose is the service's, in the tenant's channel, with the request as sent
    stored = await b.services.compose.get(local_id)
    assert stored.channel == "org-123" and stored.request["api_request"] == REQUEST

    for cid in (local_id, http_id):   # each compose read both ways
        mine = await b.local.status(cid)
        status, theirs = await http(b.daemon, "GET", f"/composes/{cid}")
        assert status == 200 and mine == theirs
        assert mine["id"] == cid and mine["image_status"]["status"] == "pending"
        mine = await b.local.metadata(cid)
        status, theirs = await http(b.daemon, "GET", f"/composes/{cid}/metadata")
        assert status == 200 and mine == theirs and mine["request"] == REQUEST
    # the two composes of one request are told apart by their ids only
    assert renamed(await b.local.status(local_id), local_id, http_id) == await b.local.status(http_id)
    assert renamed(await b.local.metadata(local_id), local_id, http_id) == await b.local.metadata(http_id)


async def test_several_images_and_a_password(both: Both) -> None:
    b = both
    image = REQUEST["image_request"]
    request = {"distribution": "debian-12",
               "customizations": {"users": [{"name": "admin", "password": "secret"}]},
               "image_requests": [image, {**image, "image_type": "minimal-raw"}]}
    cid = await b.local.compose(request, org_id="123")
    assert request["customizations"]["users"][0]["password"] == "secret"   # the caller's dict is untouched
    mine = await b.local.status(cid)
    status, theirs = await http(b.daemon, "GET", f"/composes/{cid}")
    assert status == 200 and mine == theirs and len(mine["image_statuses"]) == 2
    mine = await b.local.metadata(cid)
    status, theirs = await http(b.daemon, "GET", f"/composes/{cid}/metadata")
    assert status == 200 and mine == theirs
    assert mine["request"]["customizations"]["users"][0]["password"].startswith("$6$")   # kept hashed


async def test_a_finished_compose(both: Both) -> None:
    b = both
    cid = await b.daemon.compose(BP, test="2")   # upstream's test mode: finished, no osbuild output
    mine = await b.local.status(cid)
    status, theirs = await http(b.daemon, "GET", f"/composes/{cid}")
    assert status == 200 and mine == theirs and mine["status"] == "success"
    # a finished build without osbuild output: the Cloud API's 500 id 1012, both ways
    e = await same_refusal(b, b.local.metadata(cid), "GET", f"/composes/{cid}/metadata")
    assert (e.status, e.error_id) == (500, 1012)


async def test_distribution_as_the_cloud_api(both: Both) -> None:
    b = both
    mine = await b.local.distribution("debian-12")
    status, theirs = await http(b.daemon, "GET", "/distributions/debian-12")
    assert status == 200 and mine == theirs and "x86_64" in mine["architectures"]
    e = await same_refusal(b, b.local.distribution("nope-1"), "GET", "/distributions/nope-1")
    assert (e.status, e.error_id) == (404, 21)


async def test_search_packages_as_the_cloud_api(both: Both) -> None:
    b = both
    request = {**DEBIAN, "packages": ["tmux"]}
    mine = await b.local.search_packages(request)
    status, theirs = await http(b.daemon, "POST", "/search/packages", request)
    assert status == 200 and mine == theirs and [p["name"] for p in mine["packages"]] == ["tmux"]
    bad = {**DEBIAN, "distribution": "nope-1", "packages": ["tmux"]}
    e = await same_refusal(b, b.local.search_packages(bad), "POST", "/search/packages", bad)
    assert (e.status, e.error_id) == (400, 4)
    invalid = {**DEBIAN, "packages": "tmux"}   # the spec's array of strings
    e = await same_refusal(b, b.local.search_packages(invalid), "POST", "/search/packages", invalid)
    assert (e.status, e.error_id) == (400, 30) and "packages" in e.details


async def test_refusals_as_the_cloud_api(both: Both) -> None:
    b = both
    unknown_distro = {**REQUEST, "distribution": "nope-1"}
    e = await same_refusal(b, b.local.compose(unknown_distro, org_id="1"), "POST", "/compose", unknown_distro)
    assert (e.status, e.error_id, e.reason) == (400, 4, "Unsupported distribution")
    e = await same_refusal(b, b.local.status(UNKNOWN), "GET", f"/composes/{UNKNOWN}")
    assert (e.status, e.error_id) == (404, 15)
    e = await same_refusal(b, b.local.metadata(UNKNOWN), "GET", f"/composes/{UNKNOWN}/metadata")
    assert (e.status, e.error_id) == (404, 15)
    e = await same_refusal(b, b.local.status("not-a-uuid"), "GET", "/composes/not-a-uuid")
    assert (e.status, e.error_id) == (400, 14)
    # the spec's validation (30: a wrong type; customizations and blueprint, which the spec excludes
    # before the translation's 39 could), the translation's own checks (6)
    cases = [({**REQUEST, "image_request": {**REQUEST["image_request"], "architecture": 7}}, 30),
             ({**REQUEST, "image_request": {**REQUEST["image_request"], "image_type": "edge-commit"}}, 6),
             ({**REQUEST, "blueprint": {"name": "x"}}, 30)]
    for bad, error_id in cases:
        e = await same_refusal(b, b.local.compose(bad, org_id="1"), "POST", "/compose", bad)
        assert (e.status, e.error_id) == (400, error_id), e.body
