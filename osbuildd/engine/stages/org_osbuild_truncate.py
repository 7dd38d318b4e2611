"""org.osbuild.truncate: create or resize a (sparse) file in the tree."""

from __future__ import annotations

import os
import re

from osbuildd.engine.stageapi import StageArgs

UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4,
         "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
         "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in UNITS:
        raise ValueError(f"invalid size {text!r}")
    return int(m.group(1)) * UNITS[m.group(2).lower()]


def main(args: StageArgs) -> int:
    path = args.tree_path(args.options["filename"])
    size = parse_size(args.options["size"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "ab"):
        pass
    os.truncate(path, size)
    print(f"{args.options['filename']}: {size} bytes")
    return 0
