"""Which engine can run a manifest: the bundled ``osbuildd-engine`` or upstream osbuild.

What the bundled engine has is read from its own files (``engine/stages/*.meta.json`` and the
``engine/schemas/<kind>/`` folders), so the list can't drift from what it really runs.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

ENGINE = Path(__file__).resolve().parent.parent / "engine"
KINDS = ("stages", "sources", "inputs", "devices", "mounts")


class NoEngine(RuntimeError):
    """No engine here can run this manifest; the message names what is missing."""

    def __init__(self, missing: list[str], needs_bundled: bool) -> None:
        self.missing = missing
        why = ("it also uses org.osbuildd.* stages, which only the bundled engine has" if needs_bundled
               else "upstream osbuild is not installed")
        super().__init__(f"no osbuild engine here can build this image: the bundled engine lacks "
                         f"{', '.join(missing)} and {why}")


@functools.cache
def bundled() -> dict[str, frozenset[str]]:
    """Module names the bundled engine implements, per kind."""
    have = {"stages": frozenset(p.name.removesuffix(".meta.json")
                                for p in (ENGINE / "stages").glob("*.meta.json"))}
    for kind in KINDS[1:]:
        have[kind] = frozenset(p.name.removesuffix(".meta.json")
                               for p in (ENGINE / "schemas" / kind).glob("*.meta.json"))
    return have


def used(manifest: dict[str, Any]) -> dict[str, set[str]]:
    """Module names a manifest v2 uses, per kind."""
    out: dict[str, set[str]] = {k: set() for k in KINDS}
    out["sources"].update((manifest.get("sources") or {}).keys())
    for pipeline in manifest.get("pipelines") or []:
        for st in pipeline.get("stages") or []:
            out["stages"].add(st.get("type", ""))
            for kind in ("inputs", "devices", "mounts"):
                items = st.get(kind) or {}
                for item in items.values() if isinstance(items, dict) else items:
                    if isinstance(item, dict) and item.get("type"):
                        out[kind].add(item["type"])
    return out


def missing_in_bundled(manifest: dict[str, Any]) -> list[str]:
    have = bundled()
    return sorted(name for kind, names in used(manifest).items() for name in names - have[kind])


def needs_bundled(manifest: dict[str, Any]) -> bool:
    return any(t.startswith("org.osbuildd.") for t in used(manifest)["stages"])


def choose(manifest: dict[str, Any], upstream_installed: bool) -> str:
    """``"bundled"`` or ``"upstream"`` for ``[builder] osbuild = "auto"``; raises NoEngine."""
    missing = missing_in_bundled(manifest)
    if needs_bundled(manifest):
        if missing:
            raise NoEngine(missing, needs_bundled=True)
        return "bundled"
    if missing:
        if not upstream_installed:
            raise NoEngine(missing, needs_bundled=False)
        return "upstream"
    # both can run it: upstream osbuild where installed, as before
    return "upstream" if upstream_installed else "bundled"
