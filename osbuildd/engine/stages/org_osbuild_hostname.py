"""org.osbuild.hostname: write /etc/hostname."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    args.tree_root().write_text("/etc/hostname", args.options["hostname"] + "\n")  # openat2 in the tree
    print(f"{args.tree_path('/etc/hostname')} written.")
    return 0
