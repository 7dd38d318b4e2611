"""org.osbuildd.grub.install: GRUB for BIOS and UEFI on a disk image file, without a device.

grub-bios-setup insists on probing a real block device, so the BIOS part does by hand what it
does: boot.img gets core.img's LBA and goes into the MBR's boot code area (the partition table
stays), core.img's first sector (diskboot) gets the blocklist of the rest and goes into the BIOS
boot partition. UEFI: a removable-path EFI/BOOT/BOOTX64.EFI is copied onto the ESP with mtools,
since FAT cannot be mounted here. Both core images carry an early config that finds the root
file system by UUID and loads /boot/grub/grub.cfg.
"""

from __future__ import annotations

import os
import struct
import tempfile

from osbuildd.engine.stageapi import StageArgs, run

SECTOR = 512
COMMON = ["part_gpt", "part_msdos", "ext2", "fat", "search", "search_fs_uuid", "configfile", "normal",
          "linux", "echo", "test", "serial", "terminal", "gzio"]
EXTRA = {"i386-pc": ["biosdisk"], "x86_64-efi": ["efi_gop", "efi_uga", "all_video"],
         "arm64-efi": ["efi_gop", "all_video"]}
EFI_NAME = {"x86_64-efi": "BOOTX64.EFI", "arm64-efi": "BOOTAA64.EFI"}
MKIMAGE_FORMAT = {"i386-pc": "i386-pc", "x86_64-efi": "x86_64-efi", "arm64-efi": "arm64-efi"}


def _moddir(args: StageArgs, plat: str) -> str:
    if "tree" in args.inputs:
        d = os.path.join(args.inputs["tree"]["path"], "usr/lib/grub", plat)
    else:
        d = os.path.join("/usr/lib/grub", plat)
    if not os.path.isdir(d):
        raise SystemExit(f"GRUB modules for {plat} not found at {d}")
    return d


def mkimage(args: StageArgs, plat: str, early: str, out: str) -> None:
    d = _moddir(args, plat)
    mods = [m for m in COMMON + EXTRA[plat] if os.path.exists(os.path.join(d, m + ".mod"))]
    run(["grub-mkimage", "-O", MKIMAGE_FORMAT[plat], "-d", d, "-o", out, "-c", early,
         "-p", args.options.get("prefix", "/boot/grub"), *mods])


def install_bios(args: StageArgs, disk: str, early: str, work: str) -> None:
    bios = args.options["bios"]
    start = bios["core_start"]
    core_path = os.path.join(work, "core.img")
    mkimage(args, "i386-pc", early, core_path)
    core = bytearray(open(core_path, "rb").read())
    sectors = -(-len(core) // SECTOR)
    if bios.get("core_max_size") and sectors > bios["core_max_size"]:
        raise SystemExit(f"core.img needs {sectors} sectors, the BIOS boot partition has {bios['core_max_size']}")
    # diskboot.img's blocklist (last 12 bytes of its sector): start LBA, sector count, segment
    struct.pack_into("<QH", core, 0x1F4, start + 1, sectors - 1)
    boot = bytearray(open(os.path.join(_moddir(args, "i386-pc"), "boot.img"), "rb").read())
    struct.pack_into("<Q", boot, 0x5C, start)  # kernel sector = where core.img starts
    boot[0x66:0x68] = b"\x90\x90"  # drive check off: boot from whatever BIOS drive it is
    with open(disk, "r+b") as f:
        f.seek(0)
        f.write(boot[:440])  # the boot code only: disk signature and partition table stay
        f.seek(start * SECTOR)
        f.write(core)
    print(f"BIOS: boot.img in the MBR, core.img ({sectors} sectors) at LBA {start}", flush=True)


def install_uefi(args: StageArgs, disk: str, early: str, work: str) -> None:
    uefi = args.options["uefi"]
    plat = uefi.get("platform", "x86_64-efi")
    efi = os.path.join(work, EFI_NAME[plat])
    mkimage(args, plat, early, efi)
    img = f"{disk}@@{uefi['esp_start'] * SECTOR}"
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    run(["mmd", "-D", "s", "-i", img, "::/EFI", "::/EFI/BOOT"], env=env, check=False)
    run(["mcopy", "-o", "-i", img, efi, f"::/EFI/BOOT/{EFI_NAME[plat]}"], env=env)
    run(["mdir", "-i", img, "::/EFI/BOOT"], env=env)


def main(args: StageArgs) -> int:
    opts = args.options
    if "bios" not in opts and "uefi" not in opts:
        raise SystemExit("options: give at least one of bios, uefi")
    disk = args.tree_path(opts["filename"])
    if not os.path.isfile(disk):
        raise SystemExit(f"disk image {opts['filename']} not found in the tree")
    prefix = opts.get("prefix", "/boot/grub")
    with tempfile.TemporaryDirectory(prefix="osbuildd-grub-") as work:
        early = os.path.join(work, "early.cfg")
        with open(early, "w", encoding="utf-8") as f:
            f.write(f"search --no-floppy --fs-uuid --set=root {opts['root_fs_uuid'].lower()}\n"
                    f"set prefix=($root){prefix}\nconfigfile $prefix/grub.cfg\n")
        if "bios" in opts:
            install_bios(args, disk, early, work)
        if "uefi" in opts:
            install_uefi(args, disk, early, work)
    return 0
