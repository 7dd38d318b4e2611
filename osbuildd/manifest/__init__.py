"""Image type + blueprint + depsolved packages -> osbuild manifest v2.

Dispatches on the distribution family: `debian.py` (bundled engine's Debian stages) or `rpm.py`
(upstream stages, for osbuild on an RPM host). Same inputs -> same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from osbuildd.depsolve import PackageSetRequest, PackageSpec
from osbuildd.distro import Distro, ImageType
from osbuildd.manifest import customizations as cz

__all__ = ["ManifestResult", "generate", "package_sets", "validate_for"]


@dataclass
class ManifestResult:
    manifest: dict[str, Any]
    exports: list[str]
    checkpoints: list[str] = field(default_factory=list)
    filename: str = ""          # artifact file inside <outdir>/<export>/


def _module(distro: Distro) -> Any:
    if distro.family == "debian":
        from osbuildd.manifest import debian
        return debian
    from osbuildd.manifest import rpm
    return rpm


def validate_for(distro: Distro, image_type: ImageType, bp: Any) -> None:
    """Raise BlueprintError (naming the field) for what this distro/image type cannot honour, and for
    what upstream refuses in any blueprint (Blueprint.validate: hostname, users, disk, repositories ...)."""
    cz.validate_for(distro, image_type, bp)   # first: "not supported here" says more than a detail
    _blueprint(bp).validate()
    extra = getattr(_module(distro), "validate_for", None)
    if extra is not None:
        extra(distro, image_type, bp)


def _blueprint(bp: Any) -> Any:
    from osbuildd.blueprint import Blueprint

    if isinstance(bp, Blueprint):
        return bp
    return Blueprint.from_dict(cz.blueprint_dict(bp))


def package_sets(distro: Distro, arch: str, image_type: ImageType, bp: Any) -> dict[str, PackageSetRequest]:
    validate_for(distro, image_type, bp)
    return _module(distro).package_sets(distro, arch, image_type, bp)


def generate(distro: Distro, arch: str, image_type: ImageType, bp: Any,
             depsolved: dict[str, list[PackageSpec]], seed: int, size: int | None = None) -> ManifestResult:
    validate_for(distro, image_type, bp)
    out = _module(distro).generate(distro, arch, image_type, bp, depsolved, seed, size)
    if isinstance(out, ManifestResult):
        return out
    return ManifestResult(manifest=out, exports=list(image_type.exports), checkpoints=["build"],
                          filename=image_type.filename)
