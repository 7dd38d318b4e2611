"""org.osbuildd.grub.config: /boot/grub/grub.cfg for a Debian tree, written by the build.

Debian's grub-pc-bin / grub-efi-amd64-bin do not run update-grub (only grub-pc does, and it
needs a real disk), so the build writes the menu itself: one entry per installed kernel,
newest first, root found by file system UUID. The module directories are copied to
/boot/grub/<platform> so GRUB can load modules at run time on both BIOS and UEFI.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Any

from osbuildd.engine.stageapi import StageArgs, TreeRoot


def _version_key(kver: str) -> list[int | str]:
    return [int(p) if p.isdigit() else p for p in re.split(r"[.-]", kver)]


def kernels(tree: str) -> list[str]:
    boot = TreeRoot(tree).host_path("/boot")
    found = [n[len("vmlinuz-"):] for n in os.listdir(boot) if n.startswith("vmlinuz-")] if os.path.isdir(boot) else []
    return sorted(found, key=_version_key, reverse=True)


def render(opts: dict[str, Any], kvers: list[str]) -> str:
    uuid = opts["root_fs_uuid"].lower()
    cmdline = f"root=UUID={uuid} {opts.get('kernel_opts', 'ro')}".strip()
    terminal = " ".join(opts.get("terminal", ["serial", "console"]))
    distributor = opts.get("distributor", "Debian")
    out = [
        "# written by org.osbuildd.grub.config",
        f"set timeout={opts.get('timeout', 1)}",
        "set default=0",
    ]
    if "serial" in terminal:
        out.append(opts.get("serial", "serial --unit=0 --speed=115200"))
    out += [
        f"terminal_input {terminal}",
        f"terminal_output {terminal}",
        "insmod part_gpt",
        "insmod part_msdos",
        "insmod ext2",
        f"search --no-floppy --fs-uuid --set=root {uuid}",
        "",
    ]
    for kver in kvers:
        initrd = f"/boot/initrd.img-{kver}"
        out += [
            f"menuentry '{distributor} GNU/Linux, with Linux {kver}' --class debian --class gnu-linux --class os {{",
            "\tinsmod gzio",
            f"\tlinux /boot/vmlinuz-{kver} {cmdline}",
            # always listed: the initramfs is usually built after this stage (Debian kernels need one)
            f"\tinitrd {initrd}",
            "}",
        ]
    return "\n".join(out) + "\n"


def _default_grub(opts: dict[str, Any]) -> str:
    # keeps an on-system update-grub (if grub-pc is installed later) close to this config
    terminal = " ".join(opts.get("terminal", ["serial", "console"]))
    return (
        f"GRUB_DEFAULT=0\nGRUB_TIMEOUT={opts.get('timeout', 1)}\n"
        f"GRUB_DISTRIBUTOR=\"{opts.get('distributor', 'Debian')}\"\n"
        f"GRUB_CMDLINE_LINUX_DEFAULT=\"\"\nGRUB_CMDLINE_LINUX=\"{opts.get('kernel_opts', 'ro').replace('ro', '', 1).strip()}\"\n"
        f"GRUB_TERMINAL=\"{terminal}\"\n"
        f"GRUB_SERIAL_COMMAND=\"{opts.get('serial', 'serial --unit=0 --speed=115200')}\"\n"
    )


def main(args: StageArgs) -> int:
    opts = args.options
    kvers = kernels(args.tree)
    if not kvers:
        raise SystemExit("no kernel in /boot (vmlinuz-*): install a linux-image package first")
    grubdir = args.tree_path("/boot/grub")
    os.makedirs(grubdir, exist_ok=True)
    for plat in opts.get("platforms", ["i386-pc", "x86_64-efi"]):
        src = args.tree_path(f"/usr/lib/grub/{plat}")
        if not os.path.isdir(src):
            raise SystemExit(f"GRUB modules for {plat} missing in the tree (/usr/lib/grub/{plat}): install its grub-*-bin package")
        dst = args.tree_path(f"/boot/grub/{plat}")  # resolved in the tree
        shutil.rmtree(dst, ignore_errors=True)  # a symlink there is not followed: copytree then fails
        shutil.copytree(src, dst)
    root = args.tree_root()  # openat2 in the tree: a grub.cfg symlink a package ships stays inside
    root.write_text("/boot/grub/grub.cfg", render(opts, kvers), mode=0o600)
    root.chmod("/boot/grub/grub.cfg", 0o600)
    root.makedirs("/etc/default")
    root.write_text("/etc/default/grub", _default_grub(opts))
    print(f"grub.cfg with kernels: {', '.join(kvers)}", flush=True)
    return 0
