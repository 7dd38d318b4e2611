"""Stand-ins for the upstream test doubles that osbuild-composer's ``internal/weldr/api_test.go`` uses.

Each replays exactly one upstream double (no real server exists for them):

- :class:`TestDistros` replays ``internal/distro/test_distro`` as wired by ``createTestWeldrAPI``:
  distros ``test-distro-1`` (host) and ``test-distro-2``, arches ``test_arch`` (host) and
  ``test_arch2``, image types ``test_type`` / ``test_ostree_type``, system repos ``test-id`` /
  ``test-id-2``.
- :class:`MockDepsolver` replays ``internal/mocks/rpmmd`` (``BaseFixture``, ``NonExistingPackage``,
  ``BadFetch``): a fixed three-package depsolve and a ``package0``..``package21`` search list.
- :class:`FixtureComposes` replays the compose store of ``internal/store/fixtures.go`` behind the
  compose-service interface of CONTRACTS.md (``list/get/start/create_fake/cancel/delete``).
"""

from __future__ import annotations

import fnmatch
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osbuildd.compose import ComposeNotFound
from osbuildd.depsolve import DepsolveError, PackageInfo, PackageSpec
from osbuildd.distro import Repository, UnknownArch, UnknownDistro, UnknownImageType

FIXTURE_TIME = 1574857140.0  # 2019-11-27 13:19 +01:00
REPO_HASH = "ac982f7c76771e898d1112d1a81d182eeb48af4a26792df248ebf6a47de06a4e"
EMPTY_MANIFEST = {"version": "2", "pipelines": [{"name": "build"}, {"name": "os"}], "sources": {}}


@dataclass
class TestImageType:
    name: str
    filename: str = "test.img"
    mime_type: str = "application/x-test"


@dataclass
class TestArch:
    name: str
    distro: str
    repositories: list[Repository]
    image_types: dict[str, TestImageType]

    def image_type(self, name: str) -> TestImageType:
        if name not in self.image_types:
            raise UnknownImageType(self.distro, self.name, name)
        return self.image_types[name]


@dataclass
class TestDistro:
    name: str
    arches: dict[str, TestArch]
    family: str = "rpm"

    def arch(self, name: str) -> TestArch:
        if name not in self.arches:
            raise UnknownArch(self.name, name)
        return self.arches[name]


def _distro(name: str, repo_id: str) -> TestDistro:
    repo = Repository(id=repo_id, name=repo_id, baseurl=["http://example.com/test/os/x86_64"], check_gpg=True)
    types = {n: TestImageType(n) for n in ("test_type", "test_ostree_type")}
    arches = {a: TestArch(a, name, [repo], dict(types)) for a in ("test_arch", "test_arch2")}
    return TestDistro(name, arches)


class TestDistros:
    """Module-like registry (``get``, ``names``, ``host``) as ``osbuildd.distro`` offers it."""

    def __init__(self) -> None:
        self._d = {"test-distro-1": _distro("test-distro-1", "test-id"),
                   "test-distro-2": _distro("test-distro-2", "test-id-2")}

    def get(self, name: str) -> TestDistro:
        if name not in self._d:
            raise UnknownDistro(name)
        return self._d[name]

    def names(self) -> list[str]:
        return sorted(self._d)

    def host(self) -> str:
        return "test-distro-1"


def _dep(name: str, epoch: int, version: str, release: str, checksum: str) -> PackageSpec:
    return PackageSpec(name=name, epoch=epoch, version=version, release=release, arch="x86_64",
                       url=f"https://{name.replace('dep-package', 'pkg')}.example.com/{version}-{release}.x86_64.rpm",
                       checksum=checksum, repo_id=REPO_HASH, check_gpg=True)


DEPS = [
    _dep("dep-package3", 7, "3.0.3", "1.fc30", "sha256:62278d360aa5045eb202af39fe85743a4b5615f0c9c7439a04d75d785db4c720"),
    _dep("dep-package1", 0, "1.33", "2.fc30", "sha256:fe3951d112c3b1c84dc8eac57afe0830df72df1ca0096b842f4db5d781189893"),
    _dep("dep-package2", 0, "2.9", "1.fc30", "sha256:5797c0b0489681596b5b3cd7165d49870b85b69d65e08770946380a3dcd49ea2"),
]
MISSING = ("running osbuild-depsolve-dnf failed:\nDNF error occurred: MarkingErrors: Error occurred when marking "
           "packages for installation: Problems in request:\nmissing packages: fash")
FETCH = "DNF error occurred: FetchError: There was a problem when fetching packages."


class MockDepsolver:
    """``internal/mocks/rpmmd``: ``mode`` is the upstream fixture name."""

    def __init__(self, mode: str = "BaseFixture") -> None:
        self.mode = mode
        self.requests: list[dict[str, Any]] = []  # what the API asked for (checked by tests)

    async def depsolve(self, distro: Any, arch: str, sets: dict[str, Any], cache_dir: Path) -> dict[str, list[PackageSpec]]:
        self.requests.append(sets)
        if self.mode == "NonExistingPackage":
            raise DepsolveError("not-found", MISSING, package="fash")
        return {name: list(DEPS) for name in sets}

    async def search(self, distro: Any, arch: str, repos: list[Any], patterns: list[str],
                     cache_dir: Path) -> list[PackageInfo]:
        if self.mode == "BadFetch":
            raise DepsolveError("repository", FETCH)
        pkgs = [PackageInfo(name=f"package{i}", summary=f"pkg{i} sum", description=f"pkg{i} desc",
                            homepage=f"https://pkg{i}.example.com", license="MIT", version=f"{i}.0",
                            release=f"{i}.fc30", arch="x86_64", build_time="2006-01-02T15:04:05")
                for i in range(22)]
        if not patterns:
            return pkgs
        return [p for p in pkgs if any(fnmatch.fnmatchcase(p.name, pat) for pat in patterns)]


@dataclass
class FixtureCompose:
    """The fields of CONTRACTS.md's ``Compose`` that the Weldr API reads."""

    id: str
    state: str
    blueprint_name: str = "test"
    blueprint_version: str = "0.0.0"
    image_type: str = "test_type"
    distro: str = "test-distro-1"
    arch: str = "test_arch"
    created: float = FIXTURE_TIME
    started: float | None = None
    finished: float | None = None
    progress: dict | None = None
    error: Any = None
    image_path: Path | None = None
    image_filename: str = "test.img"
    manifest: dict | None = field(default_factory=lambda: dict(EMPTY_MANIFEST))
    packages: list[PackageSpec] = field(default_factory=list)
    upload_statuses: list[dict] = field(default_factory=list)
    log_path: Path | None = None
    size: int = 0
    request: dict = field(default_factory=dict)
    timings: dict | None = None


AWS_UPLOAD = {"uuid": "10000000-0000-0000-0000-000000000000", "provider_name": "aws", "image_name": "awsimage",
              "creation_time": FIXTURE_TIME,
              "settings": {"region": "frankfurt", "accessKeyID": "accesskey", "secretAccessKey": "secretkey",
                           "bucket": "clay", "key": "imagekey"}}


class FixtureComposes:
    """``internal/store/fixtures.go``: BaseFixture's five composes, or none (NoComposesFixture)."""

    stable_settled = False   # no promise that a settled compose stays the same object: nothing cached

    def __init__(self, fixture: str = "BaseFixture") -> None:
        self.composes: dict[str, FixtureCompose] = {}
        self.started: list[Any] = []
        if fixture in ("BaseFixture", "BadJobJSONFixture", "NonExistingPackage", "BadFetch"):
            bp = {"name": "test", "version": "0.0.0", "packages": [], "modules": [], "enabled_modules": [],
                  "groups": []}
            for i, st in enumerate(("waiting", "running", "finished", "failed", "finished")):
                cid = f"30000000-0000-0000-0000-00000000000{i}"
                ups = [dict(AWS_UPLOAD, status=None)] if i != 1 else []
                self.composes[cid] = FixtureCompose(
                    id=cid, state=st, started=None if st == "waiting" else FIXTURE_TIME,
                    finished=FIXTURE_TIME if st in ("finished", "failed") else None,
                    upload_statuses=ups, request={"blueprint": dict(bp)})

    async def list(self, channel: str | None = None) -> list[FixtureCompose]:
        return list(self.composes.values())

    async def get(self, compose_id: str) -> FixtureCompose:
        if compose_id not in self.composes:
            raise ComposeNotFound(compose_id)
        return self.composes[compose_id]

    def _new(self, req: Any, st: str) -> str:
        cid = str(uuid.uuid4())
        now = time.time()
        self.composes[cid] = FixtureCompose(
            id=cid, state=st, blueprint_name=req.blueprint.name, blueprint_version=req.blueprint.version,
            image_type=req.image_type, distro=req.distro, arch=req.arch, created=now,
            started=now if st != "waiting" else None, finished=now if st != "waiting" else None,
            request={"blueprint": req.blueprint.to_dict()}, size=req.size or 0)
        self.started.append(req)
        return cid

    async def start(self, req: Any) -> str:
        return self._new(req, "waiting")

    async def create_fake(self, req: Any, finished: bool) -> str:
        return self._new(req, "finished" if finished else "failed")

    async def cancel(self, compose_id: str) -> None:
        self.composes[compose_id].state = "canceled"

    async def delete(self, compose_id: str) -> None:
        del self.composes[compose_id]
