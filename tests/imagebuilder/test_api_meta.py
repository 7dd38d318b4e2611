"""The image-builder API's read-only routes on the real daemon: distributions (visible ones only,
details through the composer with filters), architectures, packages (Debian through the depsolver,
an RPM distribution from its package list file), the OpenSCAP routes without profiles or a
compliance service, the spec at its three paths, ``/version`` and ``/ready`` (500 when the composer
cannot be reached)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml

from .ib_daemon import ORG_A, ORG_B, SPEC, IBDaemon, conforms, distributions_dir, ib_daemon, identity

pytestmark = pytest.mark.asyncio(loop_scope="module")
CENTOS_PACKAGES = [{"name": "tmux", "summary": "A terminal multiplexer"},
                   {"name": "tmuxinator", "summary": "Manage complex tmux sessions easily"},
                   {"name": "vim-enhanced", "summary": "A version of the VIM editor which includes recent enhancements"}]


def with_package_list(tmp: Path) -> Path:
    """The default test directory plus a package list for centos-9's x86_64 ``baseos`` repository."""
    out = distributions_dir(tmp)
    (out / "centos-9" / "centos-9-x86_64-baseos-packages.json").write_text(json.dumps({"data": CENTOS_PACKAGES}))
    return out


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ib(tmp_path_factory: pytest.TempPathFactory, shared_state_dir: Path) -> AsyncIterator[IBDaemon]:
    tmp = tmp_path_factory.mktemp("meta")
    async with ib_daemon(tmp, shared_state=shared_state_dir, distributions=with_package_list(tmp)) as d:
        yield d


async def names(ib: IBDaemon, org: str, rhel: bool = True) -> list[str]:
    r = await ib.call("GET", "distributions", org=None, headers={"X-Rh-Identity": identity(org, rhel=rhel)})
    assert r.status == 200, r.text
    conforms(r.json(), "DistributionsResponse")
    return sorted(d["name"] for d in r.json())


async def test_distributions_list(ib: IBDaemon) -> None:
    a, b = await names(ib, ORG_A), await names(ib, ORG_B)
    assert {"debian-12", "debian-13", "centos-9"} <= set(b)
    # the fedora ones are restricted: A's allow file entry lets it see them, B has none
    fedora = {"fedora-39", "fedora-42", "fedora-43"}
    assert fedora <= set(a) and not fedora & set(b)
    # RHEL needs the entitlement
    assert "rhel-9" in b and "rhel-9" not in await names(ib, ORG_B, rhel=False)
    r = await ib.call("GET", "distributions")
    debian = {d["name"]: d["description"] for d in r.json()}["debian-12"]
    assert debian == "Debian GNU/Linux 12 (bookworm)"
    assert (await ib.call("GET", "distributions?kind=bootc")).json() == []


async def test_distribution_details_and_filters(ib: IBDaemon) -> None:
    r = await ib.call("GET", "distributions/debian-12")
    assert r.status == 200, r.text
    conforms(r.json(), "DistributionDetails")
    assert r.json()["name"] == "debian-12"
    every = r.json()["architectures"]
    assert "x86_64" in every and "guest-image" in every["x86_64"]["image_types"]
    r = await ib.call("GET", "distributions/debian-12?architecture[]=x86_64&image_type[]=guest-image")
    assert r.status == 200, r.text
    r = await ib.call("GET", "distributions/debian-12?architecture=x86_64&image_type=guest-image")
    assert r.status == 200, r.text
    conforms(r.json(), "DistributionDetails")
    assert list(r.json()["architectures"]) == ["x86_64"]
    assert list(r.json()["architectures"]["x86_64"]["image_types"]) == ["guest-image"]
    r = await ib.call("GET", "distributions/debian-12?architecture=riscv64")
    assert r.json()["architectures"] == {}
    r = await ib.call("GET", "distributions/no-such-distro-1")
    assert r.status == 404, r.text
    assert r.error()[0] == "404"


async def test_architectures(ib: IBDaemon) -> None:
    r = await ib.call("GET", "architectures/debian-12")
    assert r.status == 200, r.text
    conforms(r.json(), "Architectures")
    x86 = next(a for a in r.json() if a["arch"] == "x86_64")
    assert "guest-image" in x86["image_types"]
    assert {"baseurl": "http://deb.debian.org/debian", "rhsm": False} in x86["repositories"]
    r = await ib.call("GET", "architectures/centos-9")
    x86 = next(a for a in r.json() if a["arch"] == "x86_64")
    assert len(x86["repositories"]) == 2   # google-compute-engine has image type tags: not a base one
    r = await ib.call("GET", "architectures/fedora-39", org=ORG_B)
    assert r.status == 403, r.text
    assert r.error()[1] == "This account's organization is not authorized to build fedora-39 images"
    r = await ib.call("GET", "architectures/not-one")
    assert r.status == 400, r.text


async def test_packages_debian_through_the_depsolver(ib: IBDaemon) -> None:
    q = "packages?distribution=debian-12&architecture=x86_64&search=tmux"
    r = await ib.call("GET", q)
    assert r.status == 200, r.text
    body = r.json()
    conforms(body, "PackagesResponse")
    found = {p["name"]: p["summary"] for p in body["data"]}
    assert "tmux" in found and "multiplexer" in found["tmux"].lower(), found.get("tmux")
    assert all("tmux" in n for n in found)
    count = body["meta"]["count"]
    assert count == len(body["data"]) and count >= 2
    base = "/api/image-builder/v1.0/packages?search=tmux&distribution=debian-12&architecture=x86_64"
    assert body["links"] == {"first": f"{base}&offset=0&limit=100", "last": f"{base}&offset=0&limit=100"}
    r = await ib.call("GET", f"{q}&limit=1&offset=1")
    assert r.json()["data"] == body["data"][1:2] and r.json()["meta"]["count"] == count
    assert r.json()["links"]["last"] == f"{base}&offset={count - 1}&limit=1"


async def test_packages_from_a_package_list(ib: IBDaemon) -> None:
    r = await ib.call("GET", "packages?distribution=centos-9&architecture=x86_64&search=tmux")
    assert r.status == 200, r.text
    conforms(r.json(), "PackagesResponse")
    assert r.json()["data"] == CENTOS_PACKAGES[:2] and r.json()["meta"]["count"] == 2
    r = await ib.call("GET", "packages?distribution=centos-9&architecture=x86_64&search=tmux&limit=1&offset=1")
    assert r.json()["data"] == CENTOS_PACKAGES[1:2]
    r = await ib.call("GET", "packages?distribution=centos-9&architecture=x86_64&search=zzz-nothing")
    assert (r.json()["data"], r.json()["meta"]["count"]) == ([], 0)
    r = await ib.call("GET", "packages?distribution=centos-9&architecture=x86_64")
    assert r.status == 400 and r.error()[1] == \
        'parameter "search" in query has an error: value is required but missing'
    r = await ib.call("GET", "packages?distribution=centos-9&architecture=s390x&search=tmux")
    assert r.status == 400 and 'parameter "architecture" in query' in r.error()[1]


async def test_oscap_routes(ib: IBDaemon) -> None:
    r = await ib.call("GET", "oscap/debian-12/profiles")
    assert r.status == 400, r.text
    assert r.error()[1].startswith("no profile for the specified distribution")
    r = await ib.call("GET", "oscap/debian-12/xccdf_org.ssgproject.content_profile_cis/customizations")
    assert r.status == 400, r.text
    assert "no OpenSCAP customizations" in r.error()[1]
    r = await ib.call("GET", "oscap/00000000-0000-4000-8000-000000000000/debian-12/policy_customizations")
    assert r.status == 404, r.text
    assert "no compliance service is configured" in r.error()[1]
    r = await ib.call("POST", "experimental/recommendations",
                      {"packages": ["tmux"], "recommendedPackages": 3, "distribution": "rhel9"})
    assert r.status == 200, r.text
    conforms(r.json(), "RecommendationsResponse")
    assert r.json() == {"packages": []}   # no recommendations service: nothing recommended


async def test_openapi_json_at_three_paths(ib: IBDaemon) -> None:
    served = yaml.safe_load(SPEC.read_text())
    for path in ("/api/image-builder/v1/openapi.json", "/api/image-builder/v1.0/openapi.json", "/openapi.json"):
        r = await ib.call("GET", path, org=None)   # no identity needed
        assert r.status == 200, (path, r.text)
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.json()["info"]["version"] == served["info"]["version"]
        assert set(r.json()["paths"]) == set(served["paths"])


async def test_version_and_ready(ib: IBDaemon) -> None:
    r = await ib.call("GET", "version")
    assert r.status == 200
    conforms(r.json(), "Version")
    assert r.json()["version"] == yaml.safe_load(SPEC.read_text())["info"]["version"]
    for path in ("ready", "/ready"):
        r = await ib.call("GET", path)
        assert (r.status, r.json()) == (200, {"readiness": "ready"}), path
    assert (await ib.call("GET", "/status", org=None)).json() == (await ib.call("GET", "version")).json()


async def test_ready_without_a_composer(tmp_path: Path) -> None:
    async with ib_daemon(tmp_path, composer="unreachable") as ib:
        r = await ib.call("GET", "ready")
        assert r.status == 500, r.text
        title, detail = r.error()
        assert title == "500" and detail.startswith("Failed to contact osbuild-composer: ")
        assert "127.0.0.1" in detail
        # the rest of the API still answers
        assert (await ib.call("GET", "version")).status == 200
        assert "debian-12" in [d["name"] for d in (await ib.call("GET", "distributions")).json()]
