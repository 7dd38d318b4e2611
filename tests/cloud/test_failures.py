"""A failed compose says why, over the Cloud API as its clients reach it (HTTPS, mTLS, ``osbuildd serve``
with its local executor): ``GET /composes/{id}`` answers ``failure`` with ``error {id, reason, details}``
carrying the real cause, and ``/logs`` carries the same error.

- An unresolvable package: the request is accepted (201, as upstream: the depsolve is a job) and the
  depsolve job's solver error reaches the compose's status.
- A failing stage: the depsolve and the manifest are real (the Debian mirror, the run's warm apt
  cache); the build is osbuild's recorded run of a failing stage, replayed by tests/runner/fake_osbuild.py
  (as tests/compose/test_failure_reasons.py does). What the reason must name is read from that
  recording, not written here.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from testdata import OSBUILD

from .cloud_daemon import conforms
from .tlsutil import TLSDaemon, cloud_daemon_tls, mtls_section

FAKE_OSBUILD = Path(__file__).resolve().parents[1] / "runner" / "fake_osbuild.py"
MISSING = "osbuildd-no-such-package-e2e"
SETTLE_LIMIT = 600.0   # a hang guard, not a timing assertion
DEPENDENCY_IDS = {5, 9, 13, 26, 31, 35}   # upstream's IsDependencyError ids


def request(packages: list[str]) -> dict[str, Any]:
    return {"distribution": "debian-12", "customizations": {"packages": packages},
            "image_request": {"architecture": "x86_64", "image_type": "guest-image",
                              "repositories": [{"baseurl": "http://deb.debian.org/debian"}],
                              "upload_targets": [{"type": "local", "upload_options": {}}]}}


def warm_cache(state: Path, shared_state_dir: Path) -> None:
    """The run's apt cache only: the replayed osbuild writes into its store, which stays this test's."""
    state.mkdir(parents=True, exist_ok=True)
    os.symlink(shared_state_dir / "cache", state / "cache")


async def compose_and_settle(daemon: TLSDaemon, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]],
                                                                                 dict[str, Any]]:
    """(compose id, every status answer until it settled, the /logs answer); the compose is listed by
    ``GET /composes/`` as its status says."""
    seen: list[dict[str, Any]] = []
    async with daemon.client() as s:
        async with s.post(f"{daemon.base}/compose", json=body) as r:
            made = await r.json()
            assert r.status == 201, made
        conforms(made, "ComposeId")
        cid = str(made["id"])
        async with asyncio.timeout(SETTLE_LIMIT):
            while True:
                async with s.get(f"{daemon.base}/composes/{cid}") as r:
                    assert r.status == 200, await r.text()
                    answer = await r.json()
                conforms(answer, "ComposeStatus")
                seen.append(answer)
                if answer["status"] != "pending":
                    break
                await asyncio.sleep(0.2)
        async with s.get(f"{daemon.base}/composes/{cid}/logs") as r:
            assert r.status == 200, await r.text()
            logs = await r.json()
        async with s.get(f"{daemon.base}/composes/") as r:
            assert r.status == 200, await r.text()
            listed = await r.json()
    conforms(logs, "ComposeLogs")
    assert [c for c in listed if c["id"] == cid] == [seen[-1]], listed
    return cid, seen, logs


def chain(error: dict[str, Any]) -> list[dict[str, Any]]:
    """The error and the errors its ``details`` hold (a dependency error's chain), depth first."""
    out = [error]
    details = error.get("details")
    for d in details if isinstance(details, list) else [details]:
        if isinstance(d, dict) and "reason" in d:
            out += chain(d)
    return out


def failing_stage_of_the_recording() -> tuple[str, str]:
    """(stage type, last output line) of the stage that failed in osbuild's recorded result."""
    result = json.loads((OSBUILD / "osbuild-result-sample-failure.json").read_text())
    for stages in result["log"].values():
        for st in stages:
            if st.get("success") is False:
                return str(st["type"]), str(st["output"]).rstrip("\n").splitlines()[-1]
    raise AssertionError("the recording has no failing stage")


async def test_unresolvable_package(tmp_path: Path, certs: Path, shared_state_dir: Path) -> None:
    await asyncio.to_thread(warm_cache, tmp_path / "state", shared_state_dir)
    async with cloud_daemon_tls(tmp_path, mtls_section(certs), certs=certs,
                                builder={"local_executor": True}) as daemon:
        _cid, seen, logs = await compose_and_settle(daemon, request(["tmux", MISSING]))
    final = seen[-1]
    assert (final["status"], final["image_status"]["status"]) == ("failure", "failure"), final
    assert {a["image_status"]["status"] for a in seen} <= {"pending", "failure"}, seen   # nothing was built
    err = final["image_status"]["error"]
    # upstream's chain: the build failed because its manifest job did (9), which failed because its
    # depsolve job did (5); the depsolve job's own error, at the end, says why
    links = chain(err)
    assert [e["id"] for e in links[:2]] == [9, 5], err
    assert len(links) == 3 and links[2]["id"] not in DEPENDENCY_IDS, err
    assert MISSING in links[2]["reason"] and "not found" in links[2]["reason"], err
    # /logs: the build never ran, its result is empty (upstream's worker would record job_error 9 in it)
    (build,) = logs["image_builds"]
    assert build["success"] is False


async def test_failing_stage(tmp_path: Path, certs: Path, shared_state_dir: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    stage, last_line = failing_stage_of_the_recording()
    monkeypatch.setenv("FAKE_OSBUILD_NOTES", str(OSBUILD))   # the daemon inherits these
    monkeypatch.setenv("FAKE_OSBUILD_MODE", "failure")
    await asyncio.to_thread(warm_cache, tmp_path / "state", shared_state_dir)
    async with cloud_daemon_tls(tmp_path, mtls_section(certs), certs=certs,
                                builder={"local_executor": True, "osbuild": str(FAKE_OSBUILD),
                                         "prefetch": False}) as daemon:
        cid, seen, logs = await compose_and_settle(daemon, request(["tmux"]))
        # the daemon's state: the manifest it handed to the build was the real one
        manifest = json.loads(await asyncio.to_thread((daemon.state / "results" / cid / "manifest.json").read_text))
    assert any(st["type"] == "org.osbuildd.debian.bootstrap" for p in manifest["pipelines"] for st in p["stages"])
    final = seen[-1]
    assert (final["status"], final["image_status"]["status"]) == ("failure", "failure"), final
    states = [a["image_status"]["status"] for a in seen]
    assert set(states) <= {"pending", "building", "failure"}, states
    err = final["image_status"]["error"]
    assert err["id"] == 10, err   # upstream's ErrorBuildJob
    assert stage in err["reason"] and "failed" in err["reason"], err
    # the details say where and show the stage's last words
    details = err["details"]
    assert isinstance(details, dict) and details.get("stage") == stage, err
    assert last_line in str(details.get("output")), err
    (build,) = logs["image_builds"]
    assert build["success"] is False
    assert stage in json.dumps(build) and last_line in json.dumps(build), build

