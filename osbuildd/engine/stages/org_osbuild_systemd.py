"""org.osbuild.systemd: enable/disable/mask units and set the default target (systemctl --root)."""

from __future__ import annotations

import shutil

from osbuildd.engine.stageapi import StageArgs, chroot_run, run


def systemctl(tree: str, *argv: str) -> None:
    if shutil.which("systemctl"):
        run(["systemctl", "--root", tree, *argv])
    else:  # the build root has no systemd: use the image's own systemctl
        chroot_run(tree, ["systemctl", *argv])


def main(args: StageArgs) -> int:
    o, tree = args.options, args.tree
    for unit in o.get("enabled_services", []):
        systemctl(tree, "enable", unit)
    for unit in o.get("disabled_services", []):
        systemctl(tree, "disable", unit)
    for unit in o.get("masked_services", []):
        systemctl(tree, "mask", unit)
    for gen in o.get("masked_generators", []):
        # the generator name comes from the manifest: its link is made in the tree (symlinkat)
        root = args.tree_root()
        root.makedirs("/etc/systemd/system-generators")
        link = f"/etc/systemd/system-generators/{gen}"
        root.unlink(link)
        root.symlink("/dev/null", link)
    if "default_target" in o:
        systemctl(tree, "set-default", o["default_target"])
    return 0
