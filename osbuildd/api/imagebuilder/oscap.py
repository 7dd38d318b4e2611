"""OpenSCAP and recommendations routes, answered as upstream answers them without such a backend.

- ``/oscap/{distribution}/profiles``: upstream's profile lists are for RHEL and CentOS content that
  osbuildd does not build; 400 "no profile for the specified distribution" (upstream's answer for a
  distribution without profiles).
- ``/oscap/{distribution}/{profile}/customizations``: upstream's file
  ``<distributions dir>/<distribution>/oscap/<profile>/customizations.json``; none there -> 400.
- ``/oscap/{policy}/{distribution}/policy_customizations``: needs the compliance service -> 404
  (upstream's answer for a policy it has no tailoring for), saying none is configured.
- ``/experimental/recommendations``: needs the recommendations service; none configured: no
  recommendations (upstream's answer when the service recommends nothing).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from .context import PREFIXES, ImageBuilderError, distros


async def profiles(request: web.Request) -> web.Response:
    raise ImageBuilderError(400, "no profile for the specified distribution "
                                 "(osbuildd ships no OpenSCAP profiles)")


def _read_customizations(root: Path | None, distribution: str, profile: str) -> Any:
    if root is None:
        raise ValueError("no distributions directory")
    path = root / distribution / "oscap" / Path(profile).name / "customizations.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("openscap") is None:
        raise ValueError("customizations file is missing OpenSCAP section")
    return data


async def customizations(request: web.Request) -> web.Response:
    distribution, profile = request.match_info["distribution"], request.match_info["profile"]
    try:
        data = await asyncio.to_thread(_read_customizations, distros(request).directory, distribution, profile)
    except FileNotFoundError:
        raise ImageBuilderError(400, f"no OpenSCAP customizations for {distribution} and {profile}") from None
    except (OSError, ValueError) as e:
        raise ImageBuilderError(400, f"OpenSCAP customizations for {distribution} and {profile}: {e}") from None
    return web.json_response(data)


async def policy_customizations(request: web.Request) -> web.Response:
    raise ImageBuilderError(404, f"no compliance service is configured: no tailoring for policy "
                                 f"{request.match_info['policy']}")


async def recommendations(request: web.Request) -> web.Response:
    return web.json_response({"packages": []})


def add_routes(app: web.Application) -> None:
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/oscap/{{distribution}}/profiles", profiles)
        app.router.add_get(f"{prefix}/oscap/{{distribution}}/{{profile}}/customizations", customizations)
        app.router.add_get(f"{prefix}/oscap/{{policy}}/{{distribution}}/policy_customizations",
                           policy_customizations)
        app.router.add_post(f"{prefix}/experimental/recommendations", recommendations)
