"""org.osbuildd.apt.sources: the installed system's apt sources, in deb822 format."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def render(src: dict) -> str:
    lines = [
        "Types: " + " ".join(src.get("types", ["deb"])),
        "URIs: " + " ".join(src["uris"]),
        "Suites: " + " ".join(src["suites"]),
        "Components: " + " ".join(src["components"]),
    ]
    if src.get("signed_by"):
        lines.append("Signed-By: " + src["signed_by"])
    if src.get("enabled", True) is False:
        lines.append("Enabled: no")
    return "\n".join(lines) + "\n"


def main(args: StageArgs) -> int:
    parts = args.tree_path("/etc/apt/sources.list.d")
    os.makedirs(parts, exist_ok=True)
    legacy = args.tree_path("/etc/apt/sources.list")
    if os.path.lexists(legacy):
        os.unlink(legacy)
    for src in args.options["sources"]:
        path = os.path.join(parts, src["filename"])
        with open(path, "w", encoding="utf-8") as f:
            f.write(render(src))
        os.chmod(path, 0o644)
        print(f"wrote /etc/apt/sources.list.d/{src['filename']}", flush=True)
    return 0
