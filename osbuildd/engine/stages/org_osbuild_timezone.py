"""org.osbuild.timezone: /etc/localtime -> the zone (and /etc/timezone, which Debian's tzdata reads).

A zone the tree has no file for fails the stage, as upstream's (systemd-firstboot refuses it)."""

from __future__ import annotations

import os

from osbuildd.common.names import timezone_error
from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    zone = args.options["zone"]
    err = timezone_error(zone)
    if err is not None:
        print(f"Timezone {zone!r} is not valid: {err}")
        return 1
    if not os.path.isfile(args.tree_path(f"/usr/share/zoneinfo/{zone}")):
        print(f"Timezone {zone} is not valid: /usr/share/zoneinfo/{zone} is not in the tree (is tzdata installed?)")
        return 1
    root = args.tree_root()  # unlinkat/symlinkat on the name itself, in the tree's /etc
    root.unlink("/etc/localtime")
    root.symlink(f"../usr/share/zoneinfo/{zone}", "/etc/localtime")
    root.write_text("/etc/timezone", zone + "\n")
    print(f"timezone set to {zone}")
    return 0
