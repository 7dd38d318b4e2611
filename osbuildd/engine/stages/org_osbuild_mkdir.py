"""org.osbuild.mkdir: create directories in the tree or on a mount."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    for item in args.options.get("paths", []):
        path = item["path"]
        # openat2 in the tree (or mount): a symlink on the way resolves inside it
        root, inner = args.root_for(path)
        root.mkdir(inner, item.get("mode", 0o777), parents=item.get("parents", False),
                   exist_ok=item.get("exist_ok", False))
        print(f"created {path}")
    return 0
