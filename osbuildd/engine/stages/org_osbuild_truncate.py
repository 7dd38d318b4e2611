"""org.osbuild.truncate: create or resize a (sparse) file in the tree."""

from __future__ import annotations

import os

from osbuildd.common.datasizes import parse_truncate
from osbuildd.engine.stageapi import StageArgs


def parse_size(text: str) -> int:
    # coreutils' units, as upstream's stage runs `truncate --size` (1G = 2^30)
    return parse_truncate(text)


def main(args: StageArgs) -> int:
    filename = args.options["filename"]
    size = parse_size(args.options["size"])
    root = args.tree_root()
    root.makedirs(os.path.dirname(os.path.normpath("/" + filename.lstrip("/"))))
    root.truncate(filename, size)  # opened with openat2 inside the tree, never followed out
    print(f"{args.options['filename']}: {size} bytes")
    return 0
