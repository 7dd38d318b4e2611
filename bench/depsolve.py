"""apt depsolve of a 20-package Debian 12 blueprint: cold vs warm, and manifest generation time.

1. Cold: an empty cache dir, so the signed indexes of bookworm, -updates and -security are
   downloaded and verified, then apt resolves.
2. Warm: the same request again on the cached indexes. Bar: <= 2 s.
3. Manifest generation (qcow2) after depsolve, median of 20 runs. Bar: <= 50 ms.
Baseline (same run): a bare `apt-get install --print-uris` of the same request on the warm private
root, i.e. what apt alone costs; warm / baseline shows osbuildd's own overhead.

Run: .venv/bin/python bench/depsolve.py
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# bench/ holds queue.py, which would shadow the stdlib module: put the repo there instead
sys.path[0] = str(REPO)

from osbuildd import distro  # noqa: E402
from osbuildd import manifest as mf  # noqa: E402
from osbuildd.depsolve import depsolve  # noqa: E402
from osbuildd.depsolve.apt import REQUIRED_BASE  # noqa: E402

PACKAGES = ["tmux", "vim", "curl", "git", "htop", "jq", "rsync", "sudo", "less", "wget", "zsh", "tree",
            "lsof", "strace", "gnupg", "unzip", "zip", "bzip2", "file", "nano"]
BLUEPRINT = {"name": "bench-20", "version": "0.0.1", "packages": [{"name": n, "version": "*"} for n in PACKAGES],
             "customizations": {"hostname": "bench"}}


async def main() -> None:
    d = distro.get("debian-12")
    it = d.arch("x86_64").image_type("qcow2")
    cache = Path(tempfile.mkdtemp(prefix="osbuildd-bench-depsolve-", dir="/var/tmp"))
    try:
        sets = mf.package_sets(d, "x86_64", it, BLUEPRINT)
        t = time.monotonic()
        solved = await depsolve(d, "x86_64", sets, cache)
        cold = time.monotonic() - t
        warm_runs = []
        for _ in range(5):
            t = time.monotonic()
            again = await depsolve(d, "x86_64", sets, cache)
            warm_runs.append(time.monotonic() - t)
        assert again == solved
        warm = statistics.median(warm_runs)

        root = next(p for p in (cache / "apt").iterdir() if p.is_dir())
        env = dict(os.environ, APT_CONFIG=str(root / "apt.conf"))
        base_runs = []
        for _ in range(5):
            t = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                "apt-get", "install", "-qq", "-y", "--print-uris", "--no-install-recommends", REQUIRED_BASE,
                *sets["os"].include, env=env, stdout=asyncio.subprocess.DEVNULL)
            assert await proc.wait() == 0
            base_runs.append(time.monotonic() - t)
        baseline = statistics.median(base_runs)

        gen_runs = []
        for _ in range(20):
            t = time.perf_counter()
            mf.generate(d, "x86_64", it, BLUEPRINT, solved, 42)
            gen_runs.append(time.perf_counter() - t)
        gen = statistics.median(gen_runs)

        print(f"20-package Debian 12 blueprint -> {len(solved['os'])} packages (qcow2 image type set)")
        print(f"cold depsolve (indexes downloaded + verified): {cold:6.2f} s")
        print(f"warm depsolve (cached indexes), median of 5 : {warm:6.2f} s  (bar <= 2 s)  "
              f"ratio {warm / baseline:.2f}x bare apt-get ({baseline:.2f} s)")
        print(f"manifest generation after depsolve, median  : {gen * 1000:6.1f} ms (bar <= 50 ms)")
    finally:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
