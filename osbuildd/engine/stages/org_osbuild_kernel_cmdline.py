"""org.osbuild.kernel-cmdline: /etc/kernel/cmdline (root=UUID=... plus options)."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    o = args.options
    parts = ([f"root=UUID={o['root_fs_uuid']}"] if "root_fs_uuid" in o else []) + \
        ([o["kernel_opts"]] if o.get("kernel_opts") else [])
    root = args.tree_root()  # openat2 in the tree
    root.makedirs("/etc/kernel")
    root.write_text("/etc/kernel/cmdline", " ".join(parts) + "\n")
    print(" ".join(parts))
    return 0
