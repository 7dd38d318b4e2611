"""All 131 vectors of ``weldr-api-cases.json`` (upstream ``internal/weldr/api_test.go``) over a real socket.

Mapping of upstream's test setup (``createTestWeldrAPI``) onto osbuildd:
- the daemon's Weldr app (``build_app``) is served on a unix socket in a temp dir, with a fresh SQLite
  database per case (blueprints and user sources really stored);
- upstream's test distro (``test-distro-1``/``test-distro-2``, arch ``test_arch``, types ``test_type``/
  ``test_ostree_type``, repos ``test-id``/``test-id-2``) → ``TestDistros``; its mock dnf-json
  (``internal/mocks/rpmmd``) → ``MockDepsolver``; its store fixtures' composes → ``FixtureComposes``
  (all in ``upstream_mocks.py``); the "worker registered for test_arch" → ``worker_arches={test_arch}``;
- fixture blueprints are pushed through the API (``test-fedora-1``, whose distro the API rejects,
  through the store directly), and each case's "setup:" note is replayed as the requests below.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import pytest
from testdata import data_file

from osbuildd.api.weldr import bpstore
from osbuildd.api.weldr.util import WELDR

from .conftest import WeldrClient, fixture_daemon

CASES = json.loads(data_file("weldr", "weldr-api-cases.json").read_text())
FISH_URL = "https://download.opensuse.org/repositories/shells:/fish:/release:/3/Fedora_29/"


def _bp(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "description": "Test", **kw}


async def _push(c: WeldrClient, obj: dict[str, Any], where: str = "new") -> None:
    r = await c.post_json(f"/api/v0/blueprints/{where}", obj)
    assert r.status == 200, r.text


async def _setup(case: dict[str, Any], c: WeldrClient, app: Any) -> None:
    test = case["test"]
    httpd = [{"name": "httpd", "version": "2.4.*"}]
    if case["fixture"] == "NoComposesFixture" and test == "TestCompose":
        await _push(c, _bp("test-distro-2", distro="test-distro-2"))
        await _push(c, _bp("test-badarch", architecture="badarch"))
        await _push(c, _bp("test-crossarch", architecture="test_arch2"))
        from osbuildd.blueprint import Blueprint

        bad = Blueprint.from_json(json.dumps(_bp("test-fedora-1", distro="fedora-1")))
        bad.initialize()
        await bpstore.push(app[WELDR].blueprints, bad)  # the API would refuse this distro
    elif test == "TestBlueprintsInfo":
        for name in ("test1", "test2"):
            await _push(c, _bp(name, packages=httpd, version="0.0.0"))
        await _push(c, _bp("test2", packages=[{"name": "systemd", "version": "123"}], version="0.0.0"), "workspace")
    elif test.startswith("TestBlueprintsFreeze"):
        for name in ("test", "test2"):
            await _push(c, _bp(name, packages=[{"name": "dep-package1", "version": "*"},
                                               {"name": "dep-package3", "version": "*"}],
                               modules=[{"name": "dep-package2", "version": "*"}]))
    elif test == "TestBlueprintsDiff":
        await _push(c, _bp("test", packages=httpd))
        await _push(c, _bp("test", packages=[{"name": "systemd", "version": "123"}]), "workspace")
    elif test == "TestBlueprintsDelete":
        await _push(c, _bp("test", packages=httpd, version="0.0.0"))
    elif test == "TestBlueprintsChanges" and "XYZ" in case["path"] and "failing" not in case["path"]:
        await _push(c, _bp("XYZ", version="0.0.0"))
    elif test == "TestNewBlueprintsUndo":
        await _push(c, _bp("XYZ", version="0.0.1"))
        await _push(c, _bp("XYZ", version="0.1.0"))
    elif test in ("TestSourcesInfo", "TestSourcesDelete"):
        r = await c.post_json("/api/v0/projects/source/new", {
            "name": "fish", "type": "yum-baseurl", "url": FISH_URL, "check_gpg": False, "check_ssl": False,
            "system": False})
        assert r.status == 200, r.text
    elif test == "TestSourcesInfoGPGKeysV1":
        r = await c.post_json("/api/v1/projects/source/new", {
            "id": "fish", "name": "fish repo", "type": "yum-baseurl", "url": FISH_URL, "check_gpg": True,
            "check_repogpg": True, "check_ssl": False, "gpgkeys": ["https://repourl/path/to/key.pub"],
            "rhsm": False, "system": False})
        assert r.status == 200, r.text
    elif test == "TestSourcesInfoTomlV1":
        toml = f'id = "fish"\nname = "fish"\nurl = "{FISH_URL}"\ntype = "yum-baseurl"\nrhsm = true\n'
        r = await c.request("POST", "/api/v1/projects/source/new", toml, "text/x-toml")
        assert r.status == 200, r.text


def _strip(obj: Any, ignore: set[str]) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v, ignore) for k, v in obj.items() if k not in ignore}
    if isinstance(obj, list):
        return [_strip(v, ignore) for v in obj]
    return obj


@pytest.mark.parametrize("case", CASES, ids=[f"{i:03d}-{c['test']}" for i, c in enumerate(CASES)])
async def test_vector(case: dict[str, Any]) -> None:
    async with fixture_daemon(case["fixture"]) as (c, app):
        # every upstream fixture has the committed blueprint "test" 0.0.0
        await _push(c, {"name": "test", "version": "0.0.0"})
        await _setup(case, c, app)
        body = case["body"] or None
        ctype = "application/json" if body is not None and case["method"] == "POST" else None
        r = await c.request(case["method"], case["path"], body, ctype)
    assert r.status == case["status"], r.text
    if case.get("expected_is_tar"):
        exp = case["expected"]
        assert r.headers["Content-Type"] == exp["content_type"]
        assert r.headers["Content-Disposition"] == exp["content_disposition"]
        with tarfile.open(fileobj=io.BytesIO(r.body)) as tar:
            first = tar.getmembers()[0]
            assert first.name == exp["first_member"]
            assert tar.extractfile(first).read().decode() == exp["first_member_content"]
        return
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    if case.get("expected_is_text"):
        assert r.text == case["expected"]
        return
    assert r.body.endswith(b"\n") and b"\n" not in r.body[:-1], "compact JSON with one trailing newline"
    ignore = set(case.get("ignore_fields") or [])
    assert _strip(r.json(), ignore) == _strip(case["expected"], ignore)
