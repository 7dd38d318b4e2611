"""``osbuildd serve`` with all four listeners: time to ready and idle memory.

Time to ready = process start -> ``READY=1`` on a NOTIFY_SOCKET this script owns (sent after every
listener serves); then one ``GET /api/status`` on the Weldr socket proves it. Idle RSS = VmRSS of the
daemon after it has sat idle. Bars: ready <= 1 s, idle RSS <= 60 MB (osbuild-composer idles at ~60 MB).
Baseline, measured in the same run the same way: a bare Python process that imports aiohttp, serves one
unix socket and sends READY=1 — the floor of this interpreter + HTTP stack on this machine.

    .venv/bin/python bench/serve.py [--rounds 3] [--idle 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent

BASELINE = r"""
import asyncio, os, socket, sys
from aiohttp import web
async def main():
    app = web.Application()
    app.router.add_get("/api/status", lambda r: web.json_response({"api": "1"}))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.UnixSite(runner, sys.argv[1]).start()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect(os.environ["NOTIFY_SOCKET"]); s.send(b"READY=1")
    await asyncio.Event().wait()
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def measure(argv: list[str], weldr: Path, notify_path: Path, idle: float) -> tuple[float, float]:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.setblocking(False)
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_path), PYTHONPATH=str(REPO))
    env.pop("OSBUILDD_CONFIG", None)
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*argv, cwd=REPO, env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(60):
            while b"READY=1" not in await loop.sock_recv(notify, 4096):
                pass
        ready = time.perf_counter() - start
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(weldr))) as session, \
                session.get("http://localhost/api/status") as resp:
            assert resp.status == 200, resp.status
        await asyncio.sleep(idle)
        rss = rss_mb(proc.pid)
    except BaseException:
        proc.kill()
        print((await proc.stderr.read()).decode()[-2000:], file=sys.stderr)
        raise
    finally:
        notify.close()
        os.unlink(notify_path)
    proc.terminate()
    await proc.communicate()
    return ready, rss


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--idle", type=float, default=3.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="osbuildd-bench-serve-") as tmp:
        t = Path(tmp)
        config = t / "osbuildd.toml"
        config.write_text(
            f'state_dir = "{t}/state"\nlog_level = "warning"\n[weldr]\nsocket = "{t}/api.socket"\n'
            f'[cloud]\nlisten = "127.0.0.1:{free_port()}"\n[image_builder]\nlisten = "unix:{t}/ib.socket"\n'
            f'[worker_api]\nlisten = "127.0.0.1:{free_port()}"\n')
        daemon = [sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(config)]
        baseline = [sys.executable, "-c", BASELINE, f"{t}/base.socket"]
        d_ready, d_rss, b_ready, b_rss = [], [], [], []
        for _ in range(args.rounds):  # alternate, so machine load hits both alike
            r, m = await measure(baseline, t / "base.socket", t / "notify-b", args.idle)
            b_ready.append(r)
            b_rss.append(m)
            r, m = await measure(daemon, t / "api.socket", t / "notify-d", args.idle)
            d_ready.append(r)
            d_rss.append(m)
    med = statistics.median
    print(f"osbuildd serve (4 listeners): ready {med(d_ready):.3f} s   idle RSS {med(d_rss):.1f} MB"
          f"   (median of {args.rounds}; bars: <= 1 s, <= 60 MB)")
    print(f"baseline (bare aiohttp, 1 socket): ready {med(b_ready):.3f} s   idle RSS {med(b_rss):.1f} MB")
    print(f"ratio osbuildd/baseline: ready {med(d_ready) / med(b_ready):.2f}   RSS {med(d_rss) / med(b_rss):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
