#!/usr/bin/env python3
"""Stands in for osbuild in a build that succeeds at once: writes the artifact named by
FAKE_ARTIFACT_NAME into the last ``--export`` dir and prints a successful ``--json`` result, so the
upload step runs without a real build."""

import json
import os
import sys

args = sys.argv[1:]
json.loads(sys.stdin.read())   # like osbuild: the whole manifest first
outdir = args[args.index("--output-directory") + 1]
exports = [args[i + 1] for i, a in enumerate(args) if a == "--export"]
target = os.path.join(outdir, exports[-1]) if exports else outdir
os.makedirs(target, exist_ok=True)
with open(os.path.join(target, os.environ.get("FAKE_ARTIFACT_NAME", "disk.img")), "wb") as f:
    f.write(b"not really an image\n")
sys.stdout.write(json.dumps({"success": True, "metadata": {}, "log": {}}))
