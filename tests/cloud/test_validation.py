"""Request validation against the spec on the real daemon's Cloud API (unix listener): schema
violations are 400 id 30 naming the field, a body that is not JSON is 30, another content type 415 id 3,
unknown routes 404 id 21, wrong methods 405 id 22, a non-UUID compose id 400 id 14; every error answer
carries a fresh operation id that the daemon also logs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from .cloud_daemon import CLOUD, Daemon, Reply, cloud_daemon, conforms

DEPSOLVE = f"{CLOUD}/depsolve/blueprint"
SEARCH = f"{CLOUD}/search/packages"
GOOD = {"distribution": "debian-12", "architecture": "x86_64", "blueprint": {"name": "x"}}


@pytest.fixture
async def daemon(repo_root: Path, tmp_path: Path, shared_state_dir: Path):
    async with cloud_daemon(repo_root, tmp_path, shared_state_dir) as d:
        yield d


def error(r: Reply, status: int, error_id: str) -> dict[str, Any]:
    body = r.json()
    conforms(body, "Error")
    assert (r.status, body["id"], body["kind"]) == (status, error_id, "Error"), body
    assert body["href"] == f"{CLOUD}/errors/{error_id}" and body["code"] == f"IMAGE-BUILDER-COMPOSER-{error_id}"
    return dict(body)


async def raw(d: Daemon, method: str, path: str, data: bytes | None, content_type: str | None) -> Reply:
    headers = {"Content-Type": content_type} if content_type else {}
    async with d.cloud.session.request(method, "http://localhost" + path, data=data, headers=headers) as r:
        return Reply(r.status, r.headers, await r.read())


@pytest.mark.parametrize(("path", "body", "field"), [
    (DEPSOLVE, {**GOOD, "distribution": 12}, "distribution"),
    (DEPSOLVE, {k: v for k, v in GOOD.items() if k != "architecture"}, "architecture"),
    (DEPSOLVE, {**GOOD, "colour": "blue"}, "colour"),
    (DEPSOLVE, {**GOOD, "blueprint": {"name": "x", "packages": [{"name": 3}]}}, "blueprint/packages/0/name"),
    (DEPSOLVE, {**GOOD, "image_type": "no-such-type"}, "image_type"),
    (SEARCH, {"distribution": "debian-12", "architecture": "x86_64", "packages": "tmux"}, "packages"),
    (SEARCH, {"distribution": "debian-12", "architecture": "x86_64"}, "packages"),
    (SEARCH, {"distribution": "debian-12", "architecture": "x86_64", "packages": ["tmux"], "x": 1}, "'x'"),
])
async def test_schema_violation_is_30_naming_the_field(daemon: Daemon, path: str, body: Any, field: str) -> None:
    r = await daemon.cloud.post(path, body)
    e = error(r, 400, "30")
    assert field in e["details"], e["details"]


async def test_not_json_and_content_types(daemon: Daemon) -> None:
    d = daemon
    e = error(await raw(d, "POST", DEPSOLVE, b'{"distribution": ', "application/json"), 400, "30")
    assert "decode" in e["details"]
    error(await raw(d, "POST", DEPSOLVE, b"[1, 2]", "application/json"), 400, "30")
    error(await raw(d, "POST", DEPSOLVE, None, None), 400, "30")    # the body is required
    e = error(await raw(d, "POST", DEPSOLVE, b'{"distribution": "debian-12"}', "text/plain"), 415, "3")
    assert e["reason"] == "Only 'application/json' content is supported"
    # application/json with a charset parameter is still JSON: validation runs (and passes to the handler)
    r = await raw(d, "POST", DEPSOLVE, b'{"distribution": 1}', "application/json; charset=utf-8")
    error(r, 400, "30")


async def test_routes_methods_and_ids(daemon: Daemon) -> None:
    d = daemon
    error(await d.cloud.get(f"{CLOUD}/no/such/route"), 404, "21")
    error(await d.cloud.get("/api/image-builder-composer/v3/composes/"), 404, "21")
    error(await d.cloud.request("PUT", f"{CLOUD}/errors/5"), 405, "22")
    error(await d.cloud.request("DELETE", DEPSOLVE), 405, "22")
    for path in (f"{CLOUD}/composes/not-a-uuid", f"{CLOUD}/composes/1234/logs", f"{CLOUD}/clones/xyz"):
        error(await d.cloud.get(path), 400, "14")
    r = await d.cloud.request("HEAD", f"{CLOUD}/composes/not-a-uuid")
    assert r.status == 400 and r.body == b""


async def test_operation_ids_are_fresh_and_logged(daemon: Daemon, tmp_path: Path) -> None:
    d = daemon
    answers = [await d.cloud.post(DEPSOLVE, {**GOOD, "distribution": 1}),
               await d.cloud.get(f"{CLOUD}/no/such/route"),
               await d.cloud.get(f"{CLOUD}/composes/nope"),
               await d.cloud.request("PUT", f"{CLOUD}/errors/5")]
    ids = [r.json()["operation_id"] for r in answers]
    assert all(ids) and len(set(ids)) == len(ids)
    log = tmp_path / "daemon.log"
    for _ in range(50):
        text = await asyncio.to_thread(log.read_text, errors="replace")
        if all(i in text for i in ids):
            break
        await asyncio.sleep(0.1)
    assert all(i in text for i in ids), [i for i in ids if i not in text]


async def test_valid_request_reaches_the_handler(daemon: Daemon) -> None:
    """A body the spec accepts passes through: the handler answers (here: unknown distribution, 4)."""
    r = await daemon.cloud.post(DEPSOLVE, {**GOOD, "distribution": "nodistro-1"})
    error(r, 400, "4")
