"""org.osbuild.kernel-cmdline: /etc/kernel/cmdline (root=UUID=... plus options)."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    o = args.options
    parts = ([f"root=UUID={o['root_fs_uuid']}"] if "root_fs_uuid" in o else []) + \
        ([o["kernel_opts"]] if o.get("kernel_opts") else [])
    path = args.tree_path("/etc/kernel/cmdline")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(" ".join(parts) + "\n")
    print(" ".join(parts))
    return 0
