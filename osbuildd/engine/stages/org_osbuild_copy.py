"""org.osbuild.copy: copy files and trees from inputs, mounts or the tree to the tree or a mount."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs, run


def main(args: StageArgs) -> int:
    for item in args.options["paths"]:
        src = args.resolve(item["from"])
        # the destination's directories resolve inside its tree (openat2); cp then works on a
        # path whose every directory is a real one inside the tree
        dst = args.resolve(item["to"])
        # cp writes through a destination symlink to an existing file (even one met during a
        # merge), which may point anywhere: such names are replaced, never written through.
        # A symlinked directory met during a merge makes cp fail (it names the path).
        cmd = ["cp", "-a", "--reflink=auto", "--remove-destination"]
        if os.path.isdir(src) and not os.path.islink(src):
            # a directory is merged into the destination (what `input://tree/` -> `mount://root/` means)
            root, inner = args.root_for(item["to"])
            root.makedirs(inner)
            run(cmd + ["-T", src, dst])
        else:
            print(f"copying '{src}' -> '{dst}'")
            if not os.path.isdir(dst):
                # dst is resolved to its last component inside the tree: nothing left to follow, so
                # an existing file is written in place, as upstream's cp does
                cmd.remove("--remove-destination")
            run(cmd + [src, dst])
    return 0
