"""Shared by org.osbuild.xz / gzip / zstd: compress the single file of the `file` input into the tree."""

from __future__ import annotations

import os
import subprocess
import sys

from osbuildd.engine.stageapi import StageArgs


def compress(args: StageArgs, cmd: list[str]) -> int:
    inp = args.inputs["file"]
    files = list(inp["data"]["files"])
    if len(files) != 1:
        raise ValueError("the file input must name exactly one file")
    src = os.path.join(inp["path"], files[0])
    dst = args.tree_path(args.options["filename"])
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    print("+ " + " ".join(cmd) + f" < {src} > {dst}", flush=True)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        subprocess.run(cmd, stdin=fin, stdout=fout, stderr=sys.stderr, check=True)
    return 0
