"""org.osbuildd.debian.initramfs: build the initramfs of the installed kernels inside the tree.

update-initramfs runs chrooted in a private mount namespace (unshare), where /proc, /sys and
/dev are mounted for it; the namespace dies with the command, so nothing stays mounted.
"""

from __future__ import annotations

import os
import re
import shlex

from osbuildd.engine.stageapi import StageArgs, run


def _set_conf(path: str, key: str, value: str) -> None:
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    line = f"{key}={value}"
    if re.search(rf"^{key}=", text, re.M):
        text = re.sub(rf"^{key}=.*$", line, text, flags=re.M)
    else:
        text += ("" if text.endswith("\n") or not text else "\n") + line + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def chroot_in_namespace(tree: str, cmd: list[str]) -> None:
    t = shlex.quote(tree)
    script = (
        f"mount -t proc proc {t}/proc && mount -t sysfs sysfs {t}/sys && "
        f"mount --rbind /dev {t}/dev && exec chroot {t} " + " ".join(shlex.quote(c) for c in cmd)
    )
    run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])


def main(args: StageArgs) -> int:
    tree = args.tree
    conf = args.tree_path("/etc/initramfs-tools/initramfs.conf")
    if not os.path.exists(conf):
        raise SystemExit("initramfs-tools is not installed in the tree (no /etc/initramfs-tools/initramfs.conf)")
    if args.options.get("modules"):
        _set_conf(conf, "MODULES", args.options["modules"])
    if args.options.get("compress"):
        _set_conf(conf, "COMPRESS", args.options["compress"])
    kernels = args.options.get("kernels") or sorted(os.listdir(args.tree_path("/lib/modules")))
    if not kernels:
        raise SystemExit("no kernel installed in the tree (/lib/modules is empty)")
    for kver in kernels:
        if not os.path.exists(args.tree_path(f"/boot/vmlinuz-{kver}")):
            raise SystemExit(f"kernel {kver}: /boot/vmlinuz-{kver} not found")
        initrd = args.tree_path(f"/boot/initrd.img-{kver}")
        mode = "-u" if os.path.exists(initrd) else "-c"
        env_cmd = ["env", "INITRD=Yes", "update-initramfs", mode, "-k", kver]
        chroot_in_namespace(tree, env_cmd)
        if not os.path.exists(initrd):
            raise SystemExit(f"update-initramfs made no {initrd}")
    return 0
