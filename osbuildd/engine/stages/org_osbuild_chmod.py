"""org.osbuild.chmod: change modes of paths in the tree (symbolic or octal, like chmod(1))."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs, run


def main(args: StageArgs) -> int:
    for path, item in args.options.get("items", {}).items():
        cmd = ["chmod"] + (["-R"] if item.get("recursive", False) else [])
        run(cmd + ["--", item["mode"], args.tree_path(path)])
    return 0
