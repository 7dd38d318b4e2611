"""org.osbuild.groups: add groups to the tree (groupadd --root)."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs, run


def main(args: StageArgs) -> int:
    for name, desc in args.options.get("groups", {}).items():
        cmd = ["groupadd", "--root", args.tree]
        if "gid" in desc:
            cmd += ["-g", str(int(desc["gid"]))]
        if args.options.get("force", False):
            cmd.append("-f")
        run(cmd + [name])
    return 0
