"""org.osbuild.qemu: convert the raw `image` input to qcow2, vpc, vmdk, vdi, vhdx or raw."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from typing import Any

from osbuildd.engine.stageapi import StageArgs, run

_PERCENT = re.compile(rb"^\s*\((\d+(?:\.\d+)?)/100%\)\s*$")


def format_args(fmt: dict[str, Any]) -> list[str]:
    t = fmt["type"]
    opts: list[str] = []
    extra: list[str] = []
    if t == "qcow2":
        if fmt.get("compression", True):
            extra.append("-c")
        if "compat" in fmt:
            opts.append(f"compat={fmt['compat']}")
    elif t == "vmdk":
        if fmt.get("compression", True) and fmt.get("subformat", "monolithicSparse") in (
                "monolithicSparse", "streamOptimized", "twoGbMaxExtentSparse"):
            extra.append("-c")
        if "subformat" in fmt:
            opts.append(f"subformat={fmt['subformat']}")
        if "adapter_type" in fmt:
            opts.append(f"adapter_type={fmt['adapter_type']}")
        if fmt.get("compat6", False):
            opts.append("compat6")
    elif t == "vpc":
        opts.append(f"subformat={fmt.get('subformat', 'fixed')}")
        if fmt.get("force_size", True):
            opts.append("force_size=on")
    out = ["-O", t] + extra
    if opts:
        out += ["-o", ",".join(opts)]
    return out


def convert(args: StageArgs, cmd: list[str]) -> None:
    """qemu-img convert with -p: its percentages become step reports, the rest goes to the log."""
    print("+ " + " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert isinstance(proc.stdout, io.BufferedReader)  # bufsize -1: read1 returns what one read gives
    pending = b""
    while chunk := proc.stdout.read1(4096):
        pending += chunk
        # -p redraws one line with \r: every piece between \r and \n is a line of its own
        *pieces, pending = re.split(rb"[\r\n]", pending)
        for piece in pieces:
            m = _PERCENT.match(piece)
            if m:
                pct = float(m.group(1))
                args.report_progress(f"converting {pct:.0f}%", int(pct * 100), 10000)
            elif piece.strip():
                sys.stdout.buffer.write(piece + b"\n")
                sys.stdout.flush()
    if pending.strip() and not _PERCENT.match(pending):
        sys.stdout.buffer.write(pending + b"\n")
    rc = proc.wait()
    if rc != 0:
        raise subprocess.CalledProcessError(rc, cmd)


def main(args: StageArgs) -> int:
    image = args.inputs["image"]
    files = list(image["data"]["files"])
    if len(files) != 1:
        raise ValueError("the image input must name exactly one file")
    src = os.path.join(image["path"], files[0])
    dst = args.tree_path(args.options["filename"])
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    fmt = args.options["format"]
    # out-of-order writes let compression use every core; stream formats need in-order writes
    parallel = ["-W"] if fmt["type"] in ("qcow2", "raw", "vdi", "vhdx") else []
    # -t unsafe: no flush of the new image at the end; a failed build throws it away anyway
    convert(args, ["qemu-img", "convert", "-p", *parallel, "-t", "unsafe", "-f", "raw", *format_args(fmt), src, dst])
    run(["qemu-img", "info", dst])
    return 0
