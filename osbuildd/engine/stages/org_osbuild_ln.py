"""org.osbuild.ln: create (symbolic) links."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    for item in args.options["paths"]:
        # the link's directory resolves inside its tree; the link itself is made with symlinkat/
        # linkat, so an existing symlink of that name is not followed
        root, inner = args.root_for(item["link_name"])
        target = item["target"]
        if item.get("symbolic", False):
            root.symlink(target, inner)
        else:
            src = args.resolve(target) if "://" in target else root.host_path(target)
            pfd, name = root.parent(inner)
            try:
                os.link(src, name, dst_dir_fd=pfd, follow_symlinks=False)
            finally:
                os.close(pfd)
        print(f"{item['link_name']} -> {target}")
    return 0
