"""org.osbuild.mkfs.fat: make a FAT file system on the `device`.

This kernel cannot mount vfat, so files go onto it with mtools (``mcopy -i <device>``)."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs, run


def main(args: StageArgs) -> int:
    o = args.options
    cmd = ["mkfs.fat", "-I", "-i", o["volid"]]
    if "label" in o:
        cmd += ["-n", o["label"]]
    if "fat-size" in o:
        cmd += ["-F", str(o["fat-size"])]
    if "geometry" in o:
        cmd += ["-g", f"{o['geometry']['heads']}/{o['geometry']['sectors-per-track']}"]
    run(cmd + [args.devices["device"]["path"]])
    return 0
