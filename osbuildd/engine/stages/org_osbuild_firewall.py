"""org.osbuild.firewall: firewalld settings via the tree's firewall-offline-cmd (fails when absent)."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs, chroot_run


def main(args: StageArgs) -> int:
    o = args.options
    if not any(os.path.exists(args.tree_path(p)) for p in ("/usr/bin/firewall-offline-cmd", "/usr/sbin/firewall-offline-cmd")):
        print("firewall-offline-cmd is not installed in the tree (add the firewalld package)")
        return 1
    cmd = ["firewall-offline-cmd"]
    cmd += [f"--port={p}" for p in o.get("ports", [])]
    cmd += [f"--service={s}" for s in o.get("enabled_services", [])]
    cmd += [f"--remove-service={s}" for s in o.get("disabled_services", [])]
    if len(cmd) > 1:
        chroot_run(args.tree, cmd)
    if "default_zone" in o:
        chroot_run(args.tree, ["firewall-offline-cmd", f"--set-default-zone={o['default_zone']}"])
    for zone in o.get("zones", []):
        chroot_run(args.tree, ["firewall-offline-cmd", f"--new-zone={zone['name']}"], check=False)
        for src in zone["sources"]:
            chroot_run(args.tree, ["firewall-offline-cmd", f"--zone={zone['name']}", f"--add-source={src}"])
    return 0
