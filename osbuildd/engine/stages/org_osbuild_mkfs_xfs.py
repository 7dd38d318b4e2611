"""org.osbuild.mkfs.xfs: make an XFS file system on the `device` (needs xfsprogs where the stage runs)."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs, run


def main(args: StageArgs) -> int:
    o = args.options
    cmd = ["mkfs.xfs", "-f", "-m", f"uuid={o['uuid']}"]
    if "label" in o:
        cmd += ["-L", o["label"]]
    if "agcount" in o:
        cmd += ["-d", f"agcount={o['agcount']}"]
    run(cmd + [args.devices["device"]["path"]])
    return 0
