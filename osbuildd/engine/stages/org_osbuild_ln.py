"""org.osbuild.ln: create (symbolic) links."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    for item in args.options["paths"]:
        link = args.resolve(item["link_name"])
        target = item["target"]
        if item.get("symbolic", False):
            os.symlink(target, link)
        else:
            os.link(args.resolve(target) if "://" in target else target, link)
        print(f"{link} -> {target}")
    return 0
