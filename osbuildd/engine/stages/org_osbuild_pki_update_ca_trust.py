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
    anchors = args.tree_path("/etc/pki/ca-trust/source/anchors")
    local = args.tree_path("/usr/local/share/ca-certificates")
    os.makedirs(local, exist_ok=True)
    if os.path.isdir(anchors):
        for name in sorted(os.listdir(anchors)):
            base = name.rsplit(".", 1)[0]
            with open(os.path.join(anchors, name), "rb") as fin, open(os.path.join(local, base + ".crt"), "wb") as fout:
                fout.write(fin.read())
    chroot_run(tree, ["update-ca-certificates"])
    return 0
