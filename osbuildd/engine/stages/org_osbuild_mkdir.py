"""org.osbuild.mkdir: create directories in the tree or on a mount."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    for item in args.options.get("paths", []):
        path = item["path"]
        target = args.resolve(path) if "://" in path else args.tree_path(path)
        mode = item.get("mode", 0o777)
        if item.get("parents", False):
            os.makedirs(target, mode=mode, exist_ok=True)
        else:
            try:
                os.mkdir(target, mode)
            except FileExistsError:
                if not item.get("exist_ok", False):
                    raise
        print(f"created {path}")
    return 0
