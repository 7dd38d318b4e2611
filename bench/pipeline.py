"""The same Debian 12 qcow2 manifest through the daemon (request -> artifact) and through
`osbuildd-engine` alone, in one run. Bar: daemon overhead <= 5 %.

Daemon side: the daemon's own code path in-process (Services + compose service + local executor, as
`osbuildd serve` wires them): compose request -> depsolve (metadata cache warm) -> manifest -> runner ->
engine -> artifact moved into results/. Engine side: `osbuildd-engine --store S --output-directory O
--export E --checkpoint C --json -` with the manifest the daemon generated, as a user would run it.
Both start from an empty store whose downloaded sources (.debs) are pre-seeded from the shared test
store, so neither measures the mirror. With --rounds 2 the daemon runs first in round 1 and second in
round 2 (page cache effects cancel out). Run: .venv/bin/python bench/pipeline.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# bench/ itself must not be on the path: bench/queue.py would shadow the stdlib queue module
sys.path[0] = str(REPO)
SHARED_STATE = Path(os.environ.get("OSBUILDD_TEST_STATE", "/var/tmp/osbuildd-test/state"))
SEED = 20261125

from osbuildd.blueprint import Blueprint  # noqa: E402
from osbuildd.compose import ComposeRequest  # noqa: E402
from osbuildd.config import Config  # noqa: E402
from osbuildd.executor import start_local  # noqa: E402
from osbuildd.runner import resolve_osbuild  # noqa: E402
from osbuildd.services import Services  # noqa: E402


def fresh_state(base: Path, name: str) -> Path:
    state = base / name
    (state / "store").mkdir(parents=True)
    src = SHARED_STATE / "store" / "sources"
    if src.is_dir():   # hard links: same .debs, no download, no copy
        subprocess.run(["cp", "-al", str(src), str(state / "store" / "sources")], check=True)
    (state / "cache").symlink_to(SHARED_STATE / "cache")
    return state


async def through_daemon(state: Path) -> tuple[float, dict, dict]:
    s = await Services.open(Config.embedded(state))
    await start_local(s)
    try:
        bp = Blueprint.from_toml((REPO / "examples" / "debian-qcow2.toml").read_text())
        bp.initialize()
        t = time.perf_counter()
        cid = await s.compose.start(ComposeRequest(distro="debian-12", arch="x86_64", image_type="qcow2",
                                                   blueprint=bp, seed=SEED, origin="bench"))
        await s.jobs.wait_done(cid)   # woken by the queue itself, no polling delay
        c = await s.compose.get(cid)
        dt = time.perf_counter() - t
        if c.state != "finished":
            raise SystemExit(f"daemon build failed: {c.error}")
        build = await s.jobs.get(cid)
        mani_job = await s.jobs.get(build.dependencies[0])
        dep_job = await s.jobs.get(mani_job.dependencies[0])
        # where the daemon's time goes: before the build job starts, the build job itself
        print(f"  daemon: depsolve {dep_job.finished_at - dep_job.started_at:.1f} s, manifest "
              f"{mani_job.finished_at - mani_job.started_at:.1f} s, queue waits "
              f"{build.started_at - dep_job.queued_at - (dep_job.finished_at - dep_job.started_at) - (mani_job.finished_at - mani_job.started_at):.1f} s, "
              f"build job {build.finished_at - build.started_at:.1f} s")
        return dt, c.manifest, mani_job.result
    finally:
        await s.close()


def through_engine(state: Path, manifest: dict, mres: dict) -> float:
    out = state / "out"
    argv = [*resolve_osbuild("auto"), "--store", str(state / "store"), "--output-directory", str(out),
            "--cache-max-size", "20GiB"]
    for e in mres.get("exports") or []:
        argv += ["--export", e]
    for c in mres.get("checkpoints") or []:
        argv += ["--checkpoint", c]
    argv += ["--json", "-"]
    t = time.perf_counter()
    p = subprocess.run(argv, input=json.dumps(manifest).encode(), capture_output=True)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"engine build failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-pipeline-", dir="/var/tmp"))
    try:
        daemon_times: list[float] = []
        engine_times: list[float] = []
        manifest: dict = {}
        mres: dict = {}
        for r in range(max(1, args.rounds)):
            if r % 2 == 0:   # daemon first (round 1 also yields the manifest the engine gets)
                dt, manifest, mres = asyncio.run(through_daemon(fresh_state(base, f"d{r}")))
                daemon_times.append(dt)
                engine_times.append(through_engine(fresh_state(base, f"e{r}"), manifest, mres))
            else:            # engine first
                engine_times.append(through_engine(fresh_state(base, f"e{r}"), manifest, mres))
                daemon_times.append(asyncio.run(through_daemon(fresh_state(base, f"d{r}")))[0])
            print(f"round {r + 1}: daemon {daemon_times[-1]:.1f} s, engine alone {engine_times[-1]:.1f} s "
                  f"(load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: the machine is shared)")
        d, e = sum(daemon_times) / len(daemon_times), sum(engine_times) / len(engine_times)
        print(f"daemon request->artifact: {d:.1f} s (mean of {len(daemon_times)})")
        print(f"osbuildd-engine alone:    {e:.1f} s (mean of {len(engine_times)}) [baseline]")
        print(f"overhead: {100 * (d - e) / e:+.1f} % (ratio {d / e:.3f}x); bar <= 5 %: "
              f"{'met' if d <= e * 1.05 else 'NOT met'}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
