"""org.osbuild.timezone: /etc/localtime -> the zone (and /etc/timezone, which Debian's tzdata reads)."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    zone = args.options["zone"]
    if not os.path.exists(args.tree_path(f"/usr/share/zoneinfo/{zone}")):
        print(f"warning: /usr/share/zoneinfo/{zone} is not in the tree")
    root = args.tree_root()  # unlinkat/symlinkat on the name itself, in the tree's /etc
    root.unlink("/etc/localtime")
    root.symlink(f"../usr/share/zoneinfo/{zone}", "/etc/localtime")
    root.write_text("/etc/timezone", zone + "\n")
    print(f"timezone set to {zone}")
    return 0
