"""org.osbuild.timezone: /etc/localtime -> the zone (and /etc/timezone, which Debian's tzdata reads)."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    zone = args.options["zone"]
    if not os.path.exists(args.tree_path(f"/usr/share/zoneinfo/{zone}")):
        print(f"warning: /usr/share/zoneinfo/{zone} is not in the tree")
    link = args.tree_path("/etc/localtime")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(f"../usr/share/zoneinfo/{zone}", link)
    with open(args.tree_path("/etc/timezone"), "w", encoding="utf-8") as f:
        f.write(zone + "\n")
    print(f"timezone set to {zone}")
    return 0
