"""The 19 image-builder vectors (tests/data/imagebuilder/vectors.json, from upstream's tests) against
the real daemon over its socket. Fixtures for the placeholders: the restricted fedora-39/fedora-42 of
upstream's tests are in the test's distributions directory (ib_daemon.distributions_dir), the allow
file is upstream's test allow file, and the one compose that must succeed is made on debian-12 (the
distribution osbuildd builds; upstream's vector names centos-9, which only its RPM composer builds)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from .ib_daemon import DATA, IBDaemon, ib_daemon

VECTORS = json.loads((DATA / "vectors.json").read_text())
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ib(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[IBDaemon]:
    async with ib_daemon(tmp_path_factory.mktemp("vectors")) as d:
        yield d


def subset(expected: Any, actual: Any, where: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r}"
        for k, v in expected.items():
            assert k in actual, f"{where}/{k} missing in {actual!r}"
            subset(v, actual[k], f"{where}/{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) >= len(expected), f"{where}: {actual!r}"
        for i, v in enumerate(expected):
            subset(v, actual[i], f"{where}/{i}")
    elif isinstance(expected, str) and expected.startswith("<uuid"):
        uuid.UUID(str(actual))
    else:
        assert expected == actual, f"{where}: {expected!r} != {actual!r}"


def _body(v: dict[str, Any]) -> Any:
    body = v["body"]
    if v["status"] == 201 and body and body.get("distribution") == "centos-9":
        body = {**body, "distribution": "debian-12"}
    return body


@pytest.mark.parametrize("v", VECTORS, ids=[f"{i}-{v['method']} {v['path'].split('?')[0]} {v['status']}"
                                             for i, v in enumerate(VECTORS)])
async def test_vector(ib: IBDaemon, v: dict[str, Any]) -> None:
    headers = {k: val for k, val in v["headers"].items() if k.lower() != "content-type"}
    answer = await ib.call(v["method"], v["path"], _body(v), org=None, headers=headers)
    assert answer.status == v["status"], answer.text
    expected = v["expected_subset"]
    if expected is None:
        return
    if "body_contains" in expected:
        # the vectors quote the body as JSON text ("\"" for a quote inside a JSON string)
        assert expected["body_contains"] in answer.text, answer.text
    else:
        subset(expected, answer.json())
    if v["status"] >= 400 and answer.headers.get("Content-Type", "").startswith("application/json"):
        answer.error()   # the error shape


async def test_the_vectors_are_all_here() -> None:
    assert len(VECTORS) == 19
    assert all(v["api"] == "image-builder" for v in VECTORS)
