"""org.osbuildd.apt.sources: the installed system's apt sources, in deb822 format."""

from __future__ import annotations

import os
from typing import Any

from osbuildd.engine.stageapi import StageArgs


def _one_line(value: str, key: str) -> str:
    # a newline would start a new deb822 field or stanza (e.g. "Trusted: yes")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError(f"apt source {key}: must not contain newlines or control characters: {value!r}")
    return value


def _signed_by(value: str) -> str:
    if value.lstrip().startswith("-----BEGIN PGP"):
        # deb822 multi-line field: continuation lines start with a space, empty lines are " ."
        body = [(" " + ln if ln.strip() else " .") for ln in value.strip().splitlines()]
        return "Signed-By:\n" + "\n".join(_one_line(ln, "signed_by") for ln in body)
    return "Signed-By: " + _one_line(value, "signed_by")


def render(src: dict[str, Any]) -> str:
    for key in ("uris", "suites", "components", "types"):
        for value in src.get(key, []):
            if not value or any(ch.isspace() for ch in value):
                raise ValueError(f"apt source {key}: {value!r} is not one word")
    _one_line(src["filename"], "filename")
    lines = [
        "Types: " + " ".join(src.get("types", ["deb"])),
        "URIs: " + " ".join(src["uris"]),
        "Suites: " + " ".join(src["suites"]),
        "Components: " + " ".join(src["components"]),
    ]
    if src.get("signed_by"):
        lines.append(_signed_by(src["signed_by"]))
    if src.get("enabled", True) is False:
        lines.append("Enabled: no")
    return "\n".join(lines) + "\n"


def main(args: StageArgs) -> int:
    parts = args.tree_path("/etc/apt/sources.list.d")
    os.makedirs(parts, exist_ok=True)
    args.tree_root().unlink("/etc/apt/sources.list")  # the name itself, not what it links to
    for src in args.options["sources"]:
        if "/" in src["filename"] or src["filename"].startswith("."):
            raise ValueError(f"apt source filename {src['filename']!r} must be a plain file name")
        path = os.path.join(parts, src["filename"])
        with open(path, "w", encoding="utf-8") as f:
            f.write(render(src))
        os.chmod(path, 0o644)
        print(f"wrote /etc/apt/sources.list.d/{src['filename']}", flush=True)
    return 0
