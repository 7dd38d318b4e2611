"""Upload throughput on loopback protocol servers (moto S3, azurite, gcp-storage-emulator).

1. A 200 MB file to moto S3: the org.osbuild.aws.s3 target vs plain boto3 ``upload_file`` (its default
   TransferConfig), alternating which goes first, best and median of 2N each.  bar: ours / boto3 >= 1.0
2. The same file to aws.s3 + azure (page blob) + gcp (upload + image insert against the test fake)
   at once, vs the slowest of the three alone.                       bar: together / slowest <= 1.2
3. Peak RSS of a fresh process uploading 100 MB vs 200 MB to all three.  bar: no growth with size

Starts its own servers (scripts/test-servers.sh on free ports, stopped at the end).

    .venv/bin/python bench/upload.py [--size-mb 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# bench/ itself must not be on the path: bench/queue.py would shadow the stdlib's queue
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

AWS_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_file(path: Path, size_mb: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1 << 20))


class Env:
    """Servers + fakes + credentials for one bench process."""

    def __init__(self, urls: dict[str, str], workdir: Path) -> None:
        self.urls = urls
        self.workdir = workdir

    async def __aenter__(self) -> Env:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        from osbuildd.upload import Credentials
        from tests.upload.conftest import serve
        from tests.upload.fake_gcp import FakeCompute

        self.fake = FakeCompute(self.urls["gcs"])
        self.runner, fake_url = await serve(self.fake.app())
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        sa = self.workdir / "sa.json"
        sa.write_text(json.dumps({"type": "service_account", "project_id": "bench", "private_key": pem,
                                  "client_email": "b@bench.iam.gserviceaccount.com",
                                  "token_uri": f"{fake_url}/token"}))
        c = Credentials()
        c.aws.s3_endpoint = self.urls["moto"]
        c.gcp.credentials = str(sa)
        c.gcp.storage_api_root = self.urls["gcs"]
        c.gcp.compute_api_root = f"{fake_url}/compute/v1"
        c.gcp.poll_interval = 0.01
        c.azure.blob_endpoint = self.urls["azurite"] + "/{account}"
        self.creds = c
        self.bucket = f"bench-{uuid.uuid4().hex[:8]}"
        from osbuildd.upload.awsclient import create_client

        async with create_client("s3", region="us-east-1", endpoint=self.urls["moto"], creds=AWS_KEYS,
                                 path_style=True) as s3:
            await s3.create_bucket(Bucket=self.bucket)
        import aiohttp

        async with aiohttp.ClientSession() as s, s.post(f"{self.urls['gcs']}/storage/v1/b",
                                                        params={"project": "bench"}, json={"name": self.bucket}):
            pass
        from azure.storage.blob.aio import BlobServiceClient

        from tests.upload.fake_azure import ACCOUNT, KEY

        async with BlobServiceClient(f"{self.urls['azurite']}/{ACCOUNT}",
                                     credential={"account_name": ACCOUNT, "account_key": KEY}) as svc:
            await svc.create_container(self.bucket)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    def targets(self) -> dict[str, object]:
        from osbuildd.compose.model import UploadTarget
        from tests.upload.fake_azure import ACCOUNT, KEY

        return {
            "aws.s3": UploadTarget("org.osbuild.aws.s3", "bench", {"region": "us-east-1", "bucket": self.bucket,
                                                                   "key": uuid.uuid4().hex, "accessKeyID": "t",
                                                                   "secretAccessKey": "t"}),
            "azure": UploadTarget("org.osbuild.azure", f"bench-{uuid.uuid4().hex[:8]}",
                                  {"storageAccount": ACCOUNT, "storageAccessKey": KEY, "container": self.bucket}),
            "gcp": UploadTarget("org.osbuild.gcp", "bench-img", {"bucket": self.bucket, "object": uuid.uuid4().hex}),
        }

    async def empty_s3(self) -> None:
        """moto keeps objects in memory: drop them between rounds."""
        from osbuildd.upload.awsclient import create_client

        async with create_client("s3", region="us-east-1", endpoint=self.urls["moto"], creds=AWS_KEYS,
                                 path_style=True) as s3:
            for obj in (await s3.list_objects_v2(Bucket=self.bucket)).get("Contents", []):
                await s3.delete_object(Bucket=self.bucket, Key=obj["Key"])


async def timed(coro: object) -> float:
    t0 = time.perf_counter()
    await coro  # type: ignore[misc]
    return time.perf_counter() - t0


def boto3_upload(urls: dict[str, str], bucket: str, path: Path) -> float:
    import boto3

    t0 = time.perf_counter()   # client creation included, as in our target's figure
    s3 = boto3.client("s3", endpoint_url=urls["moto"], region_name="us-east-1", **AWS_KEYS)
    s3.upload_file(str(path), bucket, f"boto3-{uuid.uuid4().hex}")
    return time.perf_counter() - t0


async def bench_main(urls: dict[str, str], path: Path, size_mb: float, rounds: int,
                     workdir: Path) -> dict[str, float]:
    from osbuildd.upload import upload, upload_all

    out: dict[str, float] = {}
    async with Env(urls, workdir) as env:
        ours: list[float] = []
        theirs: list[float] = []

        async def run_ours() -> None:
            ours.append(await timed(upload(env.targets()["aws.s3"], path, env.creds)))

        async def run_boto3() -> None:
            theirs.append(await asyncio.to_thread(boto3_upload, urls, env.bucket, path))

        for i in range(2 * rounds):   # alternate who goes first: moto slows down as it ages
            for run in (run_ours, run_boto3) if i % 2 == 0 else (run_boto3, run_ours):
                await run()
                await env.empty_s3()
        out["ours_s3"] = size_mb / min(ours)
        out["boto3_s3"] = size_mb / min(theirs)
        med_ours, med_boto3 = size_mb / statistics.median(ours), size_mb / statistics.median(theirs)
        print(f"S3 {size_mb:.0f} MB to moto, best of {len(ours)}: ours {out['ours_s3']:.1f} MB/s, boto3 upload_file "
              f"{out['boto3_s3']:.1f} MB/s; medians {med_ours:.1f} / {med_boto3:.1f} MB/s")
        print(f"  runs ours {[round(t, 2) for t in ours]} s, boto3 {[round(t, 2) for t in theirs]} s")
        print(f"  ratio ours/boto3 = {out['ours_s3'] / out['boto3_s3']:.2f}x best, "
              f"{med_ours / med_boto3:.2f}x median  (bar >= 1.0)")

        singles: dict[str, float] = {}
        for name in ("aws.s3", "azure", "gcp"):
            times = []
            for _ in range(rounds):
                times.append(await timed(upload(env.targets()[name], path, env.creds)))
                await env.empty_s3()
            singles[name] = min(times)
        together = []
        for _ in range(rounds):
            t = env.targets()
            t0 = time.perf_counter()
            results = await upload_all([t["aws.s3"], t["azure"], t["gcp"]], path, env.creds)
            together.append(time.perf_counter() - t0)
            assert all(r.error is None for r in results), [r.error for r in results]
            await env.empty_s3()
        slowest = max(singles.values())
        out["together"] = min(together)
        out["slowest_single"] = slowest
        print("alone: " + ", ".join(f"{k} {v:.2f} s ({size_mb / v:.0f} MB/s)" for k, v in singles.items()))
        print(f"three at once: {out['together']:.2f} s (runs {[round(t, 2) for t in together]}); slowest alone "
              f"{slowest:.2f} s; ratio = {out['together'] / slowest:.2f}x  (bar <= 1.2); sum alone "
              f"{sum(singles.values()):.2f} s")
    return out


def vm_kb(field: str) -> int:
    """VmRSS / VmHWM of this process in KiB (VmHWM: peak, reset by exec unlike getrusage's maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


async def rss_child(urls: dict[str, str], path: Path, workdir: Path) -> None:
    from osbuildd.upload import upload_all

    async with Env(urls, workdir) as env:
        before = vm_kb("VmHWM")
        t = env.targets()
        results = await upload_all([t["aws.s3"], t["azure"], t["gcp"]], path, env.creds)
        assert all(r.error is None for r in results), [r.error for r in results]
        await env.empty_s3()
    print(json.dumps({"before_kb": before, "peak_kb": vm_kb("VmHWM")}))


def main() -> int:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--rss-only", action="store_true", help="only the RSS part")
    args = ap.parse_args()
    if args.rss_child:
        urls = json.loads(os.environ["OSBUILDD_BENCH_URLS"])
        with tempfile.TemporaryDirectory() as d:
            asyncio.run(rss_child(urls, args.rss_child, Path(d)))
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="osbuildd-bench-upload-", dir="/var/tmp"))
    urls = {"moto": f"http://127.0.0.1:{free_port()}", "azurite": f"http://127.0.0.1:{free_port()}",
            "gcs": f"http://127.0.0.1:{free_port()}"}
    env = {**os.environ, "OSBUILDD_TEST_RUN": str(workdir / "servers"), "OSBUILDD_TEST_MOTO": urls["moto"],
           "OSBUILDD_TEST_AZURITE": urls["azurite"], "OSBUILDD_TEST_GCS": urls["gcs"]}
    subprocess.run(["bash", str(REPO / "scripts/test-servers.sh"), "start"], env=env, check=True)
    try:
        big = workdir / f"file-{args.size_mb}.bin"
        make_file(big, args.size_mb)
        if not args.rss_only:
            asyncio.run(bench_main(urls, big, float(args.size_mb), args.rounds, workdir))
        peaks = {}
        # the smaller file still has more S3 parts than are in flight at once (10 x 8 MiB), so both runs
        # can reach the steady state; a 50 MB file never fills the pipeline and would flatter the figure
        small_mb = max(100, args.size_mb // 2)
        small = workdir / f"file-{small_mb}.bin"
        make_file(small, small_mb)
        for mb, path in ((small_mb, small), (args.size_mb, big)):
            # fresh servers per run: moto holds objects in memory and slows down as it grows
            subprocess.run(["bash", str(REPO / "scripts/test-servers.sh"), "start"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            proc = subprocess.run([sys.executable, __file__, "--rss-child", str(path)], check=False,
                                  capture_output=True, text=True, env={**env, "OSBUILDD_BENCH_URLS": json.dumps(urls)})
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"RSS run for {mb} MB failed")
            peaks[mb] = json.loads(proc.stdout.strip().splitlines()[-1])
        (a, pa), (b, pb) = peaks.items()
        growth = (pb["peak_kb"] - pa["peak_kb"]) / 1024
        print(f"peak RSS, three targets at once (after imports/setup {pa['before_kb'] / 1024:.0f} MiB): "
              f"{a} MB file {pa['peak_kb'] / 1024:.0f} MiB, {b} MB file "
              f"{pb['peak_kb'] / 1024:.0f} MiB -> growth {growth:+.0f} MiB for {b - a} MB more data "
              f"(bar: no growth with size)")
    finally:
        subprocess.run(["bash", str(REPO / "scripts/test-servers.sh"), "stop"], env=env, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
