"""org.osbuild.hostname: write /etc/hostname."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    path = args.tree_path("/etc/hostname")
    with open(path, "w", encoding="utf-8") as f:
        f.write(args.options["hostname"] + "\n")
    print(f"{path} written.")
    return 0
