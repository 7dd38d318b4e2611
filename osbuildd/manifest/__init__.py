"""Image type + blueprint + depsolved packages -> osbuild manifest v2.

Dispatches on the distribution family: `debian.py` (bundled engine's Debian stages) or `rpm.py`
(upstream stages, for osbuild on an RPM host). Same inputs -> same bytes.
"""

from __future__ import annotations

from typing import Protocol

from osbuildd.blueprint import Blueprint
from osbuildd.depsolve import PackageSetRequest, PackageSpec
from osbuildd.distro import Distro, ImageType
from osbuildd.manifest import customizations as cz
from osbuildd.manifest.common import ManifestResult
from osbuildd.manifest.customizations import BlueprintInput
from osbuildd.manifest.errors import ManifestGenerationError

__all__ = ["BlueprintInput", "Generator", "ManifestGenerationError", "ManifestResult", "generate",
           "package_sets", "validate_for"]


class Generator(Protocol):
    """A family's generator: the modules `debian` and `rpm` are the implementations."""

    def validate_for(self, distro: Distro, image_type: ImageType, bp: BlueprintInput) -> None: ...

    def package_sets(self, distro: Distro, arch: str, image_type: ImageType,
                     bp: BlueprintInput) -> dict[str, PackageSetRequest]: ...

    def generate(self, distro: Distro, arch: str, image_type: ImageType, bp: BlueprintInput,
                 depsolved: dict[str, list[PackageSpec]], seed: int, size: int | None = None) -> ManifestResult: ...


def _module(distro: Distro) -> Generator:
    if distro.family == "debian":
        from osbuildd.manifest import debian
        return debian
    from osbuildd.manifest import rpm
    return rpm


def validate_for(distro: Distro, image_type: ImageType, bp: BlueprintInput) -> None:
    """Raise BlueprintError (naming the field) for what this distro/image type cannot honour, and for
    what upstream refuses in any blueprint (Blueprint.validate: hostname, users, disk, repositories ...)."""
    cz.validate_for(distro, image_type, bp)   # first: "not supported here" says more than a detail
    _blueprint(bp).validate()
    _module(distro).validate_for(distro, image_type, bp)


def _blueprint(bp: BlueprintInput) -> Blueprint:
    if isinstance(bp, Blueprint):
        return bp
    return Blueprint.from_dict(cz.blueprint_dict(bp))


def package_sets(distro: Distro, arch: str, image_type: ImageType,
                 bp: BlueprintInput) -> dict[str, PackageSetRequest]:
    validate_for(distro, image_type, bp)
    return _module(distro).package_sets(distro, arch, image_type, bp)


def generate(distro: Distro, arch: str, image_type: ImageType, bp: BlueprintInput,
             depsolved: dict[str, list[PackageSpec]], seed: int, size: int | None = None) -> ManifestResult:
    """Raises BlueprintError (a blueprint it cannot honour) or ManifestGenerationError."""
    validate_for(distro, image_type, bp)
    return _module(distro).generate(distro, arch, image_type, bp, depsolved, seed, size)
