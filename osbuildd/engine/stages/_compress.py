"""Shared by org.osbuild.xz / gzip / zstd: compress the single file of the `file` input into the tree."""

from __future__ import annotations

import os
import subprocess
import sys

from osbuildd.engine.stageapi import StageArgs


def compress(args: StageArgs, cmd: list[str]) -> int:
    inp = args.inputs["file"]
    files = list(inp["data"]["files"])
    if len(files) != 1:
        raise ValueError("the file input must name exactly one file")
    src = os.path.join(inp["path"], files[0])
    dst = args.tree_path(args.options["filename"])
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    print("+ " + " ".join(cmd) + f" < {src} > {dst}", flush=True)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        total = os.fstat(fin.fileno()).st_size
        proc = subprocess.Popen(cmd, stdin=fin, stdout=fout, stderr=sys.stderr)
        # the compressor reads our open file: its offset is how far it got (no copy through us)
        while True:
            try:
                rc = proc.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                done = os.lseek(fin.fileno(), 0, os.SEEK_CUR)
                args.report_progress(f"compressing {done >> 20}/{total >> 20} MiB", done, total)
    if rc != 0:
        raise subprocess.CalledProcessError(rc, cmd)
    args.report_progress(f"compressing {total >> 20}/{total >> 20} MiB", total, total)
    return 0
