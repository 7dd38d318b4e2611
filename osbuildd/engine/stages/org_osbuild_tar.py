"""org.osbuild.tar: archive the `tree` input into a file in the tree."""

from __future__ import annotations

import os
import shutil
import subprocess

from osbuildd.engine.stageapi import StageArgs, run

# the suffixes tar's --auto-compress knows for the three compressors the schema allows
SUFFIXES = {"xz": (".xz", ".txz"), "zstd": (".zst", ".tzst"), "gzip": (".gz", ".tgz", ".taz")}


def _compressor(compression: str, filename: str) -> list[str]:
    """tar's compression flag, with every core: tar runs xz and zstd single-threaded by default.

    The archives are the same formats (multi-threaded xz writes several blocks, which every xz
    reader reads); pigz writes standard gzip and is used when the host has it.
    """
    if compression == "auto":
        compression = next((c for c, sfx in SUFFIXES.items() if filename.endswith(sfx)), "auto")
    if compression == "xz":
        return ["--use-compress-program=xz -T0"]
    if compression == "zstd":
        return ["--use-compress-program=zstd -T0 -q"]
    if compression == "gzip":
        return ["--use-compress-program=pigz"] if shutil.which("pigz") else ["--gzip"]
    return ["--auto-compress"]  # any other suffix (or none): tar decides, as before


def _supports(flag: str) -> bool:
    out = subprocess.run(["tar", "--help"], capture_output=True, text=True).stdout
    return flag in out


def main(args: StageArgs) -> int:
    o = args.options
    source = args.inputs["tree"]["path"]
    filename = args.tree_path(o["filename"])
    os.makedirs(os.path.dirname(filename), exist_ok=True)
    # --sort=name: the same members in the same order whatever file system the tree was built on
    # (directory order differs between tmpfs, ext4 and a copy of either)
    cmd = ["tar", f"--format={o.get('format', 'gnu')}", "--sort=name",
           *_compressor(o.get("compression", "auto"), o["filename"])]
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
