"""Child process of test_crash.py: writes to the job store until it is SIGKILLed.

Prints one line per acknowledged (committed) change so the parent knows what must survive:
  running <type> <id>     a job it holds running
  ack <id>                an enqueue that returned
  done <id>               a finish that returned
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from osbuildd.queue import Database, JobStore


def say(*words: str) -> None:
    sys.stdout.write(" ".join(words) + "\n")
    sys.stdout.flush()


async def main(state_dir: Path) -> None:
    db = await Database.open(state_dir / "osbuildd.db")
    jobs = await JobStore.open(db, state_dir=state_dir)
    (state_dir / "tmp" / "half-written").mkdir(parents=True, exist_ok=True)
    (state_dir / "tmp" / "half-written" / "disk.raw").write_bytes(b"\0" * 4096)
    for job_type in ("osbuild:x86_64", "depsolve"):
        await jobs.enqueue(job_type, {"held": True}, channel="held")
        got = await jobs.dequeue([job_type], ["held"], timeout=0)
        say("running", job_type, got.job.id)
    n = 0
    while True:
        n += 1
        dep = await jobs.enqueue("depsolve", {"n": n, "pad": "x" * 512})
        say("ack", dep)
        child = await jobs.enqueue("osbuild:x86_64", {"n": n}, [dep])
        say("ack", child)
        got = await jobs.dequeue(["depsolve"], timeout=0)
        if got is not None:
            await jobs.finish(got.token, {"packages": list(range(20))})
            say("done", got.job.id)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
