"""org.osbuild.mkfs.btrfs: make a btrfs file system on the `device` (needs btrfs-progs)."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs, run


def main(args: StageArgs) -> int:
    o = args.options
    cmd = ["mkfs.btrfs", "-f", "-U", o["uuid"]]
    if "label" in o:
        cmd += ["-L", o["label"]]
    if "metadata" in o:
        cmd += ["-m", o["metadata"]]
    run(cmd + [args.devices["device"]["path"]])
    return 0
