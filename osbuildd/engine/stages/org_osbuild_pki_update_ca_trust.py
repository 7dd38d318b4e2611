"""org.osbuild.pki.update-ca-trust: rebuild the tree's CA bundle.

RPM trees: update-ca-trust over /etc/pki/ca-trust/source/anchors. Debian trees have no update-ca-trust:
the anchors are linked into /usr/local/share/ca-certificates as .crt and update-ca-certificates runs."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs, chroot_run


def main(args: StageArgs) -> int:
    tree = args.tree
    if any(os.path.exists(args.tree_path(p)) for p in ("/usr/bin/update-ca-trust", "/bin/update-ca-trust")):
        chroot_run(tree, ["update-ca-trust", "extract"])
        return 0
    if not os.path.exists(args.tree_path("/usr/sbin/update-ca-certificates")):
        print("neither update-ca-trust nor update-ca-certificates is installed in the tree")
        return 1
    anchors = "/etc/pki/ca-trust/source/anchors"
    local = "/usr/local/share/ca-certificates"
    root = args.tree_root()  # reads and writes resolve inside the tree (an anchor may be a symlink)
    root.makedirs(local)
    if os.path.isdir(args.tree_path(anchors)):
        for name in sorted(os.listdir(args.tree_path(anchors))):
            base = name.rsplit(".", 1)[0]
            root.write_bytes(f"{local}/{base}.crt", root.read_bytes(f"{anchors}/{name}"))
    chroot_run(tree, ["update-ca-certificates"])
    return 0
