"""org.osbuild.systemd: enable/disable/mask units and set the default target (systemctl --root)."""

from __future__ import annotations

import os
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
        d = args.tree_path("/etc/systemd/system-generators")
        os.makedirs(d, exist_ok=True)
        link = os.path.join(d, gen)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink("/dev/null", link)
    if "default_target" in o:
        systemctl(tree, "set-default", o["default_target"])
    return 0
