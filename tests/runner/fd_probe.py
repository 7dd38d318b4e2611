#!/usr/bin/env python3
"""A stand-in osbuild that reports how it was started: writes its argv, the fd that ``--monitor-fd``
names (open? a pipe? which one?), its umask and whether it leads its own session/process group to the file
named by env FD_PROBE_RECORD, then a few JSONSeq monitor records to that fd and a ``--json`` result."""

import json
import os
import stat
import sys

args = sys.argv[1:]
fd = int(next(a.split("=", 1)[1] for a in args if a.startswith("--monitor-fd=")))
manifest = json.loads(sys.stdin.read())
try:
    mode = os.fstat(fd).st_mode
    fd_open, fd_fifo, pipe = True, stat.S_ISFIFO(mode), os.readlink(f"/proc/self/fd/{fd}")
except OSError:
    fd_open = fd_fifo = False
    pipe = None
umask = os.umask(0o022)
with open(os.environ["FD_PROBE_RECORD"], "w") as f:
    json.dump({"argv": [sys.argv[0], *args], "monitor_fd": fd, "fd_open": fd_open, "fd_fifo": fd_fifo, "pipe": pipe,
               "umask": umask, "pid": os.getpid(), "pgid": os.getpgid(0), "sid": os.getsid(0),
               "manifest_version": manifest.get("version")}, f)
ctx = {"origin": "osbuild.monitor", "pipeline": {"name": "tree", "id": "p1",
                                                 "stage": {"name": "org.osbuild.mkdir", "id": "s1"}}}
records = [
    {"message": "Starting pipeline tree", "context": ctx, "progress": {"name": "pipelines", "total": 1, "done": 0}},
    {"message": "Starting module org.osbuild.mkdir", "context": ctx,
     "progress": {"name": "pipelines", "total": 1, "done": 0, "progress": {"name": "tree", "total": 1, "done": 0}}},
    {"message": "probe says hello from the stage\n", "context": {"id": "x", "origin": "org.osbuild",
                                                                 "pipeline": ctx["pipeline"]}},
    {"message": "Finished module org.osbuild.mkdir", "context": ctx,
     "result": {"id": "s1", "name": "org.osbuild.mkdir", "success": True, "output": ""},
     "progress": {"name": "pipelines", "total": 1, "done": 1}},
]
with os.fdopen(fd, "wb", buffering=0) as mon:
    for r in records:
        mon.write(b"\x1e" + json.dumps(r).encode() + b"\n")
sys.stdout.write(json.dumps({"type": "result", "success": True, "metadata": {}, "log": {}}))
