"""The Weldr recordings of the real osbuild-composer (``notes/recorded/001..072``) replayed in order.

The recorded server believed its host was Fedora 43 and had no working depsolver. The replay runs the
daemon's Weldr app with :class:`RecordedDistros` (fedora-43 host .. fedora-46, arch x86_64, system repos
``fedora`` and ``updates``) and compares status, content type and body. Skipped, because they show
the recording host's data or its DNF failure rather than API behaviour: depsolve/freeze/projects/modules
and compose start (DNF error), compose/types lists of Fedora image types, and system-source contents (Fedora
GPG keys). Commit ids are random: recorded ones are mapped onto ours in order of appearance.
"""

from __future__ import annotations

import json
import re
from typing import Any

from testdata import WELDR as WELDR_DATA

from osbuildd.distro import Repository

from .conftest import fixture_daemon
from .upstream_mocks import TestArch, TestDistro, TestImageType

RECORDED = WELDR_DATA / "recorded"
SKIP = {"036", "037", "038", "039", "044", "045", "046", "055", "056", "057", "058", "065"}
HEX40 = re.compile(r"\b[0-9a-f]{40}\b")


class RecordedDistros:
    def __init__(self) -> None:
        repos = [Repository(id="fedora", name="fedora", metalink="https://mirrors.fedoraproject.org/metalink"),
                 Repository(id="updates", name="updates", metalink="https://mirrors.fedoraproject.org/metalink")]
        types = {n: TestImageType(n, "disk.qcow2", "application/x-qemu-disk") for n in ("qcow2", "minimal-raw")}
        self._d = {f"fedora-{v}": TestDistro(f"fedora-{v}", {"x86_64": TestArch("x86_64", f"fedora-{v}", repos, types)})
                   for v in (43, 44, 45, 46)}

    def get(self, name: str) -> TestDistro:
        from osbuildd.distro import UnknownDistro

        if name not in self._d:
            raise UnknownDistro(name)
        return self._d[name]

    def names(self) -> list[str]:
        return sorted(self._d)

    def host(self) -> str:
        return "fedora-43"


def _hexes(obj: Any) -> list[str]:
    return HEX40.findall(json.dumps(obj)) if not isinstance(obj, str) else HEX40.findall(obj)


def _norm(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: ("<time>" if k == "timestamp" else _norm(v)) for k, v in obj.items() if k != "build"}
    if isinstance(obj, list):
        return [_norm(v) for v in obj]
    if isinstance(obj, str):
        return HEX40.sub("<commit>", obj)
    return obj


async def test_recorded_session() -> None:
    steps = sorted(p for p in RECORDED.glob("0[0-7][0-9]-*.json") if int(p.name[:3]) <= 72)
    assert len(steps) == 72
    commits: dict[str, str] = {}
    compared = 0
    async with fixture_daemon("NoComposesFixture", distros=RecordedDistros(), depsolver=None,
                              host_arch="x86_64") as (c, _):
        for step in steps:
            rec = json.loads(step.read_text())
            req, want = rec["request"], rec["response"]
            path = req["path"]
            for old, new in commits.items():
                path = path.replace(old, new)
            body = req["body"]
            if body is not None and not isinstance(body, str):
                body = json.dumps(body)
            if step.name[:3] in SKIP:
                continue  # (not even sent: 065 would start a compose the recording's DNF failure never made)
            got = await c.request(req["method"], path, body, req["content_type"])
            compared += 1
            assert got.status == want["status"], (step.name, got.text)
            assert got.headers["Content-Type"] == want["content_type"], step.name
            wbody = want["body"]
            if isinstance(wbody, str):
                assert got.text == wbody, step.name
                continue
            ours = got.json()
            for old, new in zip(_hexes(wbody), _hexes(ours), strict=False):
                commits.setdefault(old, new)
            assert _norm(ours) == _norm(wbody), step.name
    assert compared == 72 - len(SKIP)
