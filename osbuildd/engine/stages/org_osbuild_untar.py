"""org.osbuild.untar: unpack the tarball of the `file` input into the tree."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs, run


def main(args: StageArgs) -> int:
    inp = args.inputs["file"]
    files = list(inp["data"]["files"])
    if len(files) != 1:
        raise ValueError("the file input must name exactly one file")
    src = os.path.join(inp["path"], files[0])
    dest = args.tree_path(args.options.get("prefix", "/"))
    os.makedirs(dest, exist_ok=True)
    run(["tar", "--auto-compress", "--acls", "--xattrs", "--xattrs-include=*", "--numeric-owner",
         "-xpf", src, "-C", dest])
    return 0
