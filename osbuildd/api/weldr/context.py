"""What the Weldr handlers need from the rest of osbuildd, gathered in one object.

The defaults are the real parts (``osbuildd.distro``, ``osbuildd.depsolve``, the blueprint store,
``services.compose``); tests swap in upstream's test distro and mock depsolver through
``build_app(..., distros=..., depsolver=...)``.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class WeldrContext:
    distros: Any  # module-like: get(name), names(), host()
    depsolver: Any  # module-like: depsolve(distro, arch, sets, cache_dir), search(...)
    blueprints: Any  # the versioned blueprint store (osbuildd.blueprint)
    sources: Any  # SourceStore (user sources, SQLite)
    compose: Any  # services.compose (ComposeService) or None when composes are not available
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

    def distro(self, name: str) -> Any:
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

    def system_repos(self, distro: Any, arch: str) -> list[Any]:
        a = distro.arches.get(arch)
        return list(a.repositories) if a is not None else []
