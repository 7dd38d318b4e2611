"""org.osbuild.copy: copy files and trees from inputs, mounts or the tree to the tree or a mount."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs, run


def main(args: StageArgs) -> int:
    for item in args.options["paths"]:
        src = args.resolve(item["from"])
        dst = args.resolve(item["to"])
        cmd = ["cp", "-a", "--reflink=auto"]
        if item.get("remove_destination", False):
            cmd.append("--remove-destination")
        if os.path.isdir(src) and not os.path.islink(src):
            # a directory is merged into the destination (what `input://tree/` -> `mount://root/` means)
            os.makedirs(dst, exist_ok=True)
            run(cmd + ["-T", src, dst])
        else:
            print(f"copying '{src}' -> '{dst}'")
            run(cmd + [src, dst])
    return 0
