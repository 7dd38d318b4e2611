"""org.osbuild.modprobe: a modprobe.d configuration file."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    lines = []
    for c in args.options["commands"]:
        if c["command"] == "blacklist":
            lines.append(f"blacklist {c['modulename']}")
        else:
            lines.append(f"install {c['modulename']} {c['cmdline']}")
    path = args.tree_path(f"/usr/lib/modprobe.d/{args.options['filename']}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0
