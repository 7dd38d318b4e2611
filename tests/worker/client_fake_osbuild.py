#!/usr/bin/env python3
"""osbuild for the ``osbuildd worker`` tests (tests/worker/test_client*.py): replays osbuild's
recorded monitor stream (tests/data/osbuild, so progress and log lines flow), then writes an artifact
of random bytes into the last ``--export`` dir, named ``$CLIENT_FAKE_ARTIFACT``, and a copy of it to
``$CLIENT_FAKE_COPY_DIR/<pid>`` (what the worker built, for the test to compare), and prints the
recorded ``--json`` result. ``CLIENT_FAKE_MODE=hang``: stops after a few records with a child in
its process group, and never ends (cancel tests). ``CLIENT_FAKE_DELAY``: seconds between records."""

import json
import os
import sys
import time

notes = os.environ["CLIENT_FAKE_NOTES"]
mode = os.environ.get("CLIENT_FAKE_MODE", "build")
delay = float(os.environ.get("CLIENT_FAKE_DELAY", "0.02"))
args = sys.argv[1:]
fd = next(int(a.split("=", 1)[1]) for a in args if a.startswith("--monitor-fd="))
outdir = args[args.index("--output-directory") + 1]
exports = [args[i + 1] for i, a in enumerate(args) if a == "--export"]
manifest = json.loads(sys.stdin.read())   # like osbuild: the whole manifest first
assert manifest.get("version") == "2"
mon = os.fdopen(fd, "wb", buffering=0)
records = [r for r in open(os.path.join(notes, "osbuild-monitor-sample.jsonseq"), "rb").read().split(b"\n") if r]
copies = os.environ.get("CLIENT_FAKE_COPY_DIR")
if copies:
    with open(os.path.join(copies, f"{os.getpid()}.started"), "w") as f:
        f.write(" ".join(exports))

if mode == "hang":
    if os.fork() == 0:   # a stage process in the same group
        time.sleep(3600)
        os._exit(0)
    for r in records[:6]:
        mon.write(r + b"\n")
    while True:
        time.sleep(0.05)

for r in records:
    mon.write(r + b"\n")
    time.sleep(delay)
target = os.path.join(outdir, exports[-1]) if exports else outdir
os.makedirs(target, exist_ok=True)
data = os.urandom(300 * 1024 + 17)
with open(os.path.join(target, os.environ["CLIENT_FAKE_ARTIFACT"]), "wb") as f:
    f.write(data)
if copies:
    with open(os.path.join(copies, str(os.getpid())), "wb") as f:
        f.write(data)
sys.stdout.write(open(os.path.join(notes, "osbuild-result-sample.json")).read())
