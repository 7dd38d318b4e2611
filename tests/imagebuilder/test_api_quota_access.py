"""Quotas and restricted distributions on the real daemon: over quota is 403 with upstream's message
and nothing is queued (neither an image-builder row nor a job nor a compose in the job store); a
restricted distribution without an ALLOW_FILE entry is refused 403 and not listed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from .ib_daemon import ORG_A, ORG_B, IBDaemon, ib_daemon

pytestmark = pytest.mark.asyncio(loop_scope="module")
IMAGE = {"architecture": "x86_64", "image_type": "guest-image", "upload_request": {"type": "aws.s3", "options": {}}}
COMPOSE = {"distribution": "debian-12", "image_requests": [IMAGE]}
ONE, NONE = "000010", "000011"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def quota_ib(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[IBDaemon]:
    async with ib_daemon(tmp_path_factory.mktemp("quota"), quotas={ONE: 1, NONE: 0, "default": 100}) as d:
        yield d


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def no_allow_ib(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[IBDaemon]:
    async with ib_daemon(tmp_path_factory.mktemp("noallow"), allow=False) as d:
        yield d


def queued(ib: IBDaemon) -> tuple[Any, ...]:
    return (ib.rows("SELECT COUNT(*) FROM ib_composes")[0][0], ib.rows("SELECT COUNT(*) FROM jobs")[0][0],
            ib.rows("SELECT COUNT(*) FROM composes")[0][0])


async def test_over_quota_is_403_and_nothing_is_queued(quota_ib: IBDaemon) -> None:
    before = queued(quota_ib)
    r = await quota_ib.call("POST", "compose", COMPOSE, org=NONE)
    assert r.status == 403, r.text
    assert r.error() == ("403", "Quota of 0 builds per 14 days exceeded for user")
    assert queued(quota_ib) == before
    # one build allowed: the first goes through, the second does not
    assert (await quota_ib.call("POST", "compose", COMPOSE, org=ONE)).status == 201
    after_first = queued(quota_ib)
    assert after_first[0] == before[0] + 1 and after_first[1] > before[1]
    r = await quota_ib.call("POST", "compose", COMPOSE, org=ONE)
    assert r.status == 403 and r.error()[1] == "Quota of 1 builds per 14 days exceeded for user"
    assert queued(quota_ib) == after_first
    # a deleted compose still counts (upstream)
    cid = (await quota_ib.call("GET", "composes", org=ONE)).json()["data"][0]["id"]
    assert (await quota_ib.call("DELETE", f"composes/{cid}", org=ONE)).status == 200
    assert (await quota_ib.call("POST", "compose", COMPOSE, org=ONE)).status == 403
    # composing from a blueprint is held to the quota too
    bp = {"name": "quota", "distribution": "debian-12", "image_requests": [IMAGE], "customizations": {}}
    bid = (await quota_ib.call("POST", "blueprints", bp, org=NONE)).json()["id"]
    r = await quota_ib.call("POST", f"blueprints/{bid}/compose", org=NONE)
    assert r.status == 403 and r.error()[1].startswith("Quota of 0 builds")
    assert queued(quota_ib) == after_first
    # an organisation the file does not name gets the file's default
    assert (await quota_ib.call("POST", "compose", COMPOSE, org=ORG_A)).status == 201


async def test_restricted_distribution_without_allow_file(no_allow_ib: IBDaemon) -> None:
    before = queued(no_allow_ib)
    body = {**COMPOSE, "distribution": "fedora-42"}
    for org in (ORG_A, ORG_B):
        r = await no_allow_ib.call("POST", "compose", body, org=org)
        assert r.status == 403, r.text
        assert r.error() == ("403", "This account's organization is not authorized to build fedora-42 images")
        r = await no_allow_ib.call("GET", "architectures/fedora-42", org=org)
        assert r.status == 403
        r = await no_allow_ib.call("GET", "packages?distribution=fedora-42&architecture=x86_64&search=vim", org=org)
        assert r.status == 403
        names = {d["name"] for d in (await no_allow_ib.call("GET", "distributions", org=org)).json()}
        assert "debian-12" in names and not names & {"fedora-39", "fedora-42", "fedora-43"}
    assert queued(no_allow_ib) == before


async def test_allow_file_entries(quota_ib: IBDaemon) -> None:
    # upstream's test allow file: 000000 may use fedora-*, 000001 nothing
    a = {d["name"] for d in (await quota_ib.call("GET", "distributions", org=ORG_A)).json()}
    b = {d["name"] for d in (await quota_ib.call("GET", "distributions", org=ORG_B)).json()}
    assert {"fedora-39", "fedora-42", "debian-12", "debian-13"} <= a
    assert "debian-12" in b and not b & {"fedora-39", "fedora-42"}
    assert (await quota_ib.call("GET", "architectures/fedora-42", org=ORG_A)).status == 200
    assert (await quota_ib.call("GET", "architectures/fedora-42", org=ORG_B)).status == 403


async def test_rhel_needs_the_entitlement(quota_ib: IBDaemon) -> None:
    from .ib_daemon import identity

    entitled = {d["name"] for d in (await quota_ib.call("GET", "distributions", org=ORG_A)).json()}
    r = await quota_ib.call("GET", "distributions", org=None, headers={"X-Rh-Identity": identity(ORG_A, rhel=False)})
    assert "rhel-9" in entitled and "rhel-9" not in {d["name"] for d in r.json()}
    r = await quota_ib.call("GET", "architectures/rhel-9", org=None,
                            headers={"X-Rh-Identity": identity(ORG_A, rhel=False)})
    assert r.status == 400 and r.error()[1] == "distribution not available"
