"""The Cloud API's distributions (upstream ``handler.go`` GetDistributionList, GetDistribution), as
``GET /distributions`` and ``GET /distributions/{distro}`` answer them.

Image types are named as the Cloud API names them (``aws`` for osbuildd's ``ami``, ``guest-image`` for
``qcow2``, ...; a name the API does not rename stays as it is). A distribution is found by its
``[distros.aliases]`` names too; an unknown one is 404 id 21 (the spec's "Distribution not found";
upstream's table has no id of its own for it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from osbuildd.distro import Arch, Distro, Distros, ImageType, Repository, UnknownDistro

from .errors import BASE, RESOURCE_NOT_FOUND, CloudRequestError
from .request import INTERNAL_TO_API


def api_name(internal: str) -> str:
    """The Cloud API's name of an osbuildd image type."""
    return INTERNAL_TO_API.get(internal, internal)


def _blueprint_repository(r: Repository) -> dict[str, Any]:
    out: dict[str, Any] = {"id": r.id}
    if r.name:
        out["name"] = r.name
    if r.baseurl:
        out["baseurls"] = list(r.baseurl)
    if r.metalink:
        out["metalink"] = r.metalink
    if r.mirrorlist:
        out["mirrorlist"] = r.mirrorlist
    if r.gpgkeys:
        out["gpgkeys"] = list(r.gpgkeys)
    out["gpgcheck"], out["repo_gpgcheck"], out["sslverify"] = r.check_gpg, r.check_repogpg, r.sslverify
    if r.priority is not None:
        out["priority"] = r.priority
    if r.module_hotfixes is not None:
        out["module_hotfixes"] = r.module_hotfixes
    return out


def distribution_list(catalogue: Distros) -> dict[str, Any]:
    """``GET /distributions``: distribution -> architecture -> image type -> its repositories."""
    out: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    for name in sorted(catalogue.names()):
        d = catalogue.get(name)
        for arch_name, arch in d.arches.items():
            for it_name in arch.image_type_names():
                repos = [_blueprint_repository(r) for r in arch.repositories if r.for_image_type(it_name)]
                out.setdefault(d.name, {}).setdefault(arch_name, {})[api_name(it_name)] = repos
    return out


def _image_type_info(it: ImageType) -> dict[str, Any]:
    name = api_name(it.name)
    info: dict[str, Any] = {
        "name": name,
        "aliases": sorted({it.name, *it.aliases} - {name}),
        "filename": it.filename,
        "mime_type": it.mime_type,
        "ostree_ref": "",
        "default_size": it.default_size,
        "boot_mode": str(it.boot_mode),
        "payload_package_sets": ["blueprint"],
        "exports": list(it.exports),
        "required_blueprint_options": [],
        "supported_blueprint_options": sorted(
            ["distro", "packages", "groups", "name", "version", "description"]
            + [f"customizations.{c}" for c in it.supported_customizations]),
    }
    if it.partition_table is not None and it.partition_table.label in ("gpt", "dos"):
        info["partition_type"] = it.partition_table.label
    return info


def _arch_info(arch: Arch, image_types: list[str]) -> dict[str, Any]:
    types = {}
    for it in arch.image_types.values():
        if image_types and not ({api_name(it.name), it.name, *it.aliases} & set(image_types)):
            continue
        types[api_name(it.name)] = _image_type_info(it)
    return {"name": arch.name, "image_types": types}


def _distribution(catalogue: Distros, aliases: Mapping[str, str], raw: str) -> Distro:
    try:
        return catalogue.get(aliases.get(raw, raw))
    except UnknownDistro:
        raise CloudRequestError(RESOURCE_NOT_FOUND, f"distribution {raw!r} not found") from None


def distribution_details(catalogue: Distros, aliases: Mapping[str, str], raw: str,
                         arches: Sequence[str] = (), image_types: Sequence[str] = ()) -> dict[str, Any]:
    """``GET /distributions/{raw}`` (``[distros.aliases]`` names too; 404 id 21 when unknown), its
    ``architecture`` and ``image_type`` query filters given as ``arches`` and ``image_types``."""
    d = _distribution(catalogue, aliases, raw)
    return {
        "href": f"{BASE}/distributions/{d.name}", "id": d.name, "kind": "DistributionDetails",
        "name": d.name, "codename": d.codename, "releasever": d.release_version, "os_version": d.os_version,
        "module_platform_id": d.module_platform_id, "product": d.product,
        "architectures": {name: _arch_info(a, list(image_types)) for name, a in d.arches.items()
                          if not arches or name in arches},
    }
