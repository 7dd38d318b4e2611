#!/usr/bin/env python3
"""Replays a real osbuild 191 run (notes/osbuild-monitor-sample*.jsonseq + osbuild-result-sample*.json).

Stands in for `osbuild --monitor=JSONSeqMonitor --monitor-fd=N --json -` only for the failure modes the
real engine can't be made to show on demand: a crash with empty stdout, a hang, a stage that ignores
SIGTERM. Mode from env FAKE_OSBUILD_MODE: success | failure | crash | hang | stubborn.
With FAKE_OSBUILD_RECORD=<file> it also writes its argv and the manifest's stage types there (which
engine the runner chose, and with which --cache-max-size).
"""

import json
import os
import signal
import sys
import time

notes = os.environ["FAKE_OSBUILD_NOTES"]
mode = os.environ.get("FAKE_OSBUILD_MODE", "success")
args = sys.argv[1:]
fd = next(int(a.split("=", 1)[1]) for a in args if a.startswith("--monitor-fd="))
store = args[args.index("--store") + 1]
manifest = json.loads(sys.stdin.read())  # like osbuild: the whole manifest first
assert manifest.get("version") == "2"
if os.environ.get("FAKE_OSBUILD_RECORD"):  # what the runner asked of "upstream osbuild"
    with open(os.environ["FAKE_OSBUILD_RECORD"], "w") as f:
        json.dump({"argv": [sys.argv[0], *args], "stages": sorted({
            st["type"] for p in manifest.get("pipelines", []) for st in p.get("stages", [])})}, f)
mon = os.fdopen(fd, "wb", buffering=0)
sample = "osbuild-monitor-sample-failure.jsonseq" if mode == "failure" else "osbuild-monitor-sample.jsonseq"
records = open(os.path.join(notes, sample), "rb").read().split(b"\n")
with open(os.path.join(store, "fake.pid"), "w") as f:
    f.write(str(os.getpid()))

if mode in ("hang", "stubborn"):
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # a child in the same process group, like a stage process
    if os.fork() == 0:
        time.sleep(3600)
        os._exit(0)
    for r in records[:6]:           # up to "Starting module org.osbuild.mkdir"
        mon.write(r + b"\n")
    while True:
        time.sleep(0.05)

for r in records:
    if r:
        mon.write(r + b"\n")
if mode == "crash":
    sys.stderr.write("Traceback (most recent call last):\n  File \"osbuild/main_cli.py\"\n"
                     "OSError: [Errno 22] mount failed: Invalid argument\n")
    sys.exit(1)
res = "osbuild-result-sample-failure.json" if mode == "failure" else "osbuild-result-sample.json"
sys.stdout.write(open(os.path.join(notes, res)).read())
sys.exit(1 if mode == "failure" else 0)
