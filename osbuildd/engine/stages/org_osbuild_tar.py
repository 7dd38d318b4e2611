"""org.osbuild.tar: archive the `tree` input into a file in the tree."""

from __future__ import annotations

import os
import subprocess

from osbuildd.engine.stageapi import StageArgs, run

COMPRESSION = {"xz": "--xz", "gzip": "--gzip", "zstd": "--zstd", "auto": "--auto-compress"}


def _supports(flag: str) -> bool:
    out = subprocess.run(["tar", "--help"], capture_output=True, text=True).stdout
    return flag in out


def main(args: StageArgs) -> int:
    o = args.options
    source = args.inputs["tree"]["path"]
    filename = args.tree_path(o["filename"])
    os.makedirs(os.path.dirname(filename), exist_ok=True)
    cmd = ["tar", f"--format={o.get('format', 'gnu')}", COMPRESSION[o.get("compression", "auto")]]
    for opt in ("acls", "selinux", "xattrs"):
        if o.get(opt, True):
            if _supports(f"--{opt}"):
                cmd.append(f"--{opt}")
            else:
                print(f"tar on this system has no --{opt}; archive made without it")
    if o.get("sparse", False):
        cmd.append("--sparse")
    if o.get("numeric-owner", False):
        cmd.append("--numeric-owner")
    if "transform" in o:
        cmd.append(f"--transform={o['transform']}")
    cmd += ["-cf", filename, "-C", source]
    if "paths" in o:
        cmd += o["paths"]
    elif o.get("root-node") == "omit":
        cmd += sorted(os.listdir(source))
    else:
        cmd.append(".")
    run(cmd)
    return 0
