"""``/distributions``, ``/distributions/{distro}``, ``/architectures/{distribution}``, ``/packages``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from osbuildd.imagebuilder.composer import ComposerError
from osbuildd.imagebuilder.distributions import Architecture, Distribution, DistributionNotFound

from .context import (
    LINK_BASE,
    PREFIXES,
    ImageBuilderError,
    composer,
    distros,
    entitled,
    last_offset,
    org,
    paging,
)


async def list_distributions(request: web.Request) -> web.Response:
    """Those the organisation may see (RHEL ones only with the entitlement, restricted ones only
    with an allow list entry). ``kind=bootc``: osbuildd has no bootc distributions (an empty list)."""
    if request.query.get("kind") == "bootc":
        return web.json_response([])
    visible = distros(request).visible(org(request), entitled(request))
    return web.json_response([d.to_api() for d in visible])


def _filter_details(details: dict[str, Any], arches: list[str], types: list[str]) -> dict[str, Any]:
    """Upstream passes the filters to the composer; the Composer protocol returns all, so here."""
    out = dict(details)
    architectures = details.get("architectures")
    if isinstance(architectures, dict):
        kept: dict[str, Any] = {}
        for name, info in architectures.items():
            if arches and name not in arches:
                continue
            if types and isinstance(info, dict) and isinstance(info.get("image_types"), dict):
                info = {**info, "image_types": {
                    k: t for k, t in info["image_types"].items()
                    if k in types or (isinstance(t, dict) and set(t.get("aliases") or []) & set(types))}}
            kept[name] = info
        out["architectures"] = kept
    return out


async def get_distribution(request: web.Request) -> web.Response:
    name = request.match_info["distro"]
    composer_name = name
    try:
        composer_name = distros(request).get_for(name, org(request), entitled(request)).composer_distribution
    except DistributionNotFound:
        pass   # not one of the files: upstream asks the composer with the name as given
    try:
        details = await composer(request).distribution(composer_name)
    except ComposerError as e:
        if e.status == 404:
            raise ImageBuilderError(404, f"distribution {name!r} not found: {e.reason}") from None
        raise ImageBuilderError(500, f"Failed to get distribution details (code {e.status}): {e.reason}") from None
    keys = ("name", "codename", "releasever", "os_version", "module_platform_id", "product", "ostree_ref",
            "architectures")
    details = {k: details[k] for k in keys if k in details}
    details["name"] = name if composer_name != name else details.get("name", name)
    return web.json_response(_filter_details(details, request.query.getall("architecture", []),
                                             request.query.getall("image_type", [])))


async def get_architectures(request: web.Request) -> web.Response:
    d = distros(request).get_for(request.match_info["distribution"], org(request), entitled(request))
    return web.json_response([a.to_api() for a in d.architectures()])


async def _search(request: web.Request, d: Distribution, arch: Architecture, search: str) -> list[dict[str, str]]:
    """Package list files when the distribution has them, else the composer's package search
    (the depsolver, over the distribution's own repositories)."""
    if arch.packages is not None and any(arch.packages.values()):
        return [p.to_dict() for p in arch.find_packages(search)]
    request_body = {"distribution": d.composer_distribution, "architecture": arch.name,
                    "packages": [f"*{search}*"]}
    try:
        found = await composer(request).search_packages(request_body)
    except ComposerError as e:
        status = 400 if 400 <= e.status < 500 else 502
        raise ImageBuilderError(status, f"Failed to search packages: {e.reason}") from None
    seen: dict[str, dict[str, str]] = {}
    for p in found.get("packages", []):
        if isinstance(p, dict) and isinstance(p.get("name"), str) and p["name"] not in seen:
            seen[p["name"]] = {"name": p["name"], "summary": str(p.get("summary") or "")}
    return sorted(seen.values(), key=lambda p: p["name"])


async def get_packages(request: web.Request) -> web.Response:
    q = request.query
    d = distros(request).get_for(q["distribution"], org(request), entitled(request))
    arch = d.architecture(q["architecture"])
    packages = await _search(request, d, arch, q["search"])
    limit, offset = paging(request)
    count = len(packages)
    # upstream's links for /packages: the search first, then offset and limit
    base = (f"{LINK_BASE}/packages?search={quote(q['search'], safe='')}"
            f"&distribution={quote(q['distribution'], safe='')}&architecture={arch.name}")
    page_links = {"first": f"{base}&offset=0&limit={limit}",
                  "last": f"{base}&offset={last_offset(count, limit)}&limit={limit}"}
    return web.json_response({"meta": {"count": count}, "links": page_links,
                              "data": packages[offset:offset + limit]})


def add_routes(app: web.Application) -> None:
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/distributions", list_distributions)
        app.router.add_get(f"{prefix}/distributions/{{distro}}", get_distribution)
        app.router.add_get(f"{prefix}/architectures/{{distribution}}", get_architectures)
        app.router.add_get(f"{prefix}/packages", get_packages)
