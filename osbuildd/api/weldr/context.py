"""What the Weldr handlers need from the rest of osbuildd, gathered in one object.

Everything comes from the daemon's shared :class:`osbuildd.services.Services` (``build_app``); the
tests hand it upstream's test distro, mock depsolver and fixture composes. What Weldr needs of the
compose service and of a compose is written down here as Protocols, which ``ComposeService`` and
``Compose`` satisfy (checked below) as the tests' ``FixtureComposes`` does.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from osbuildd.blueprint.store import BlueprintStore
from osbuildd.depsolve import Depsolver, PackageSpec
from osbuildd.distro import Distro, Distros, Repository
from osbuildd.distro.sourcestore import SourceStore

if TYPE_CHECKING:
    from osbuildd.compose import Compose, ComposeRequest, ComposeService


class WeldrCompose(Protocol):
    """The fields of a compose the Weldr routes read (read-only)."""

    @property
    def id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def request(self) -> dict[str, Any]: ...
    @property
    def blueprint_name(self) -> str: ...
    @property
    def blueprint_version(self) -> str: ...
    @property
    def image_type(self) -> str: ...
    @property
    def distro(self) -> str: ...
    @property
    def arch(self) -> str: ...
    @property
    def created(self) -> float: ...
    @property
    def started(self) -> float | None: ...
    @property
    def finished(self) -> float | None: ...
    @property
    def progress(self) -> dict[str, Any] | None: ...
    @property
    def error(self) -> dict[str, Any] | None: ...
    @property
    def image_path(self) -> Path | None: ...
    @property
    def image_filename(self) -> str: ...
    @property
    def manifest(self) -> dict[str, Any] | None: ...
    @property
    def packages(self) -> list[PackageSpec]: ...
    @property
    def upload_statuses(self) -> list[dict[str, Any]]: ...
    @property
    def log_path(self) -> Path | None: ...
    @property
    def size(self) -> int: ...
    @property
    def timings(self) -> dict[str, Any] | None: ...


class WeldrComposes(Protocol):
    """What Weldr asks of the compose service (``osbuildd.compose.ComposeService``)."""

    # True when get() hands out the same object for a settled compose while it stays as it is, so
    # Weldr may cache what it renders from it by identity
    stable_settled: bool

    async def get(self, compose_id: str) -> WeldrCompose: ...
    async def list(self, channel: str | None = None) -> Sequence[WeldrCompose]: ...
    async def start(self, req: ComposeRequest) -> str: ...
    async def create_fake(self, req: ComposeRequest, finished: bool) -> str: ...
    async def cancel(self, compose_id: str) -> None: ...
    async def delete(self, compose_id: str) -> None: ...


class WeldrSnapshot(Protocol):
    """A listing split into settled composes (the same objects while ``version`` stays) and live ones."""

    @property
    def version(self) -> int: ...
    @property
    def settled(self) -> Sequence[WeldrCompose]: ...
    @property
    def live(self) -> Sequence[WeldrCompose]: ...


@runtime_checkable
class Snapshots(Protocol):
    """A compose service that lists through a cache of settled composes (ComposeService does;
    a test double may not, and then every compose is listed as live)."""

    async def snapshot(self) -> WeldrSnapshot: ...


if TYPE_CHECKING:   # the real service and compose are what these Protocols describe
    def _service_conforms(s: ComposeService) -> WeldrComposes:
        return s

    def _snapshots_conform(s: ComposeService) -> Snapshots:
        return s

    def _compose_conforms(c: Compose) -> WeldrCompose:
        return c


@dataclass
class WeldrContext:
    distros: Distros
    depsolver: Depsolver
    blueprints: BlueprintStore
    sources: SourceStore
    compose: WeldrComposes
    cache_dir: Path
    host_arch: str = field(default_factory=platform.machine)
    host_distro: str = ""
    worker_arches: frozenset[str] = frozenset()  # arches a compose can be built for
    build: str = "devel"
    max_body_size: int = 16 * 1024 * 1024
    _names_by_arch: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.host_distro:
            self.host_distro = self.distros.host()
        if not self.worker_arches:
            self.worker_arches = frozenset({self.host_arch})

    def distro(self, name: str) -> Distro:
        return self.distros.get(name)

    def distro_names(self, arch: str) -> list[str]:
        """Distros that have repositories for ``arch`` (upstream's valid-distro list), sorted."""
        cached = self._names_by_arch.get(arch)
        if cached is not None:
            return cached
        out = []
        for name in self.distros.names():
            d = self.distros.get(name)
            a = d.arches.get(arch)
            if a is not None and a.repositories:
                out.append(name)
        self._names_by_arch[arch] = sorted(out)  # distro data is static for the daemon's life
        return self._names_by_arch[arch]

    def system_repos(self, distro: Distro, arch: str) -> list[Repository]:
        a = distro.arches.get(arch)
        return list(a.repositories) if a is not None else []
