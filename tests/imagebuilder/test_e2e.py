"""A real Debian 12 guest image composed through the image-builder API, end to end, twice.

- in process: one ``osbuildd serve`` with ``[image_builder] listen`` (the in-process composer), the
  local executor, the run's shared engine store and cache, ``[aws]`` with a credentials file and a
  bucket (S3 is moto through the SDK's ``AWS_ENDPOINT_URL_S3``) and ``aws_region``;
- remote: daemon C serves the Cloud API over TLS with mTLS (gen-certs' server certificate, the local
  executor, ``[aws]``); daemon I serves only the image-builder API (``local_executor = false``) and
  forwards to C through ``osbuild_url`` with gen-certs' client certificate and CA.

Each scenario's module fixture does one build: it posts the same compose as organisation 000000
(same packages and hostname: the second build reuses the first's downloads and bootstrap; file
system UUIDs are drawn per compose, so the images differ there), polls ``GET /composes/{id}`` every 0.2 s recording every answer
until it is no longer pending or building, then reads what the tests below look at. Result dirs and
the moto buckets are removed before the tests run (disk and moto's memory stay bounded).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import tomli_w
from cloud.cloud_daemon import share_cache
from cloud.tlsutil import TLSDaemon, cloud_daemon_tls, gen_certs, mtls_section
from foundation.daemon_helpers import NotifySocket, start_serve
from upload.conftest import moto_url  # noqa: F401 - the one moto fixture, shared

from osbuildd.upload.awsclient import create_client

from .ib_daemon import ORG_B, REPO, Answer, IBDaemon, conforms

pytestmark = pytest.mark.build

KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"
HOSTNAME = "ib-e2e"   # the same in both scenarios: it is in the manifest
BUILD_LIMIT = 3600.0  # a hang guard, not a timing assertion
POLL = 0.2
QCOW2_MAGIC = b"QFI\xfb"
RUNNING = ("pending", "building", "uploading", "registering")


def ib_body(image_name: str) -> dict[str, Any]:
    return {"image_name": image_name, "distribution": "debian-12",
            "image_requests": [{"architecture": "x86_64", "image_type": "guest-image",
                                "upload_request": {"type": "aws.s3", "options": {}}}],
            "customizations": {"packages": ["tmux"], "hostname": HOSTNAME}}


@dataclass
class Run:
    image_name: str
    id: str = ""
    seconds: float = 0.0
    answers: list[dict[str, Any]] = field(default_factory=list)
    listed: Any = None
    metadata: Any = None
    other_org: dict[str, Answer] = field(default_factory=dict)   # route -> organisation B's answer
    s3_objects: list[dict[str, Any]] = field(default_factory=list)
    s3_head: bytes = b""
    s3_sha256: str = ""
    result_files: list[str] = field(default_factory=list)   # the image(s) under state/results/<id>/
    result_sha256: str = ""
    manifest: Any = None                 # what the executor handed to osbuild (results/<id>/manifest.json)
    ready: Answer | None = None          # remote: I's /ready
    cloud_status: Any = None             # remote: C's Cloud API GET /composes/{id}
    weldr_sha256: str = ""               # in process: the image as the README fetches it (Weldr)

    @property
    def final(self) -> dict[str, Any]:
        return self.answers[-1]["image_status"]


# -- helpers ---------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _image_files(results: Path) -> tuple[list[str], str, Any]:
    """The qcow2 files the build left under ``results``, the sha256 of the first, the manifest built."""
    files = sorted(p for p in results.rglob("*.qcow2") if p.is_file())
    manifest = results / "manifest.json"
    return ([str(p.relative_to(results)) for p in files], (_sha256(files[0]) if files else ""),
            json.loads(manifest.read_text()) if manifest.is_file() else None)


@asynccontextmanager
async def aws_setup(tmp: Path, moto: str) -> AsyncIterator[tuple[dict[str, str], str]]:
    """(the ``[aws]`` section, its bucket): a credentials file and a fresh moto bucket, emptied and
    removed after."""
    creds = tmp / "aws-credentials"
    creds.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    bucket = f"osbuildd-ib-e2e-{uuid.uuid4().hex[:12]}"
    async with create_client("s3", region=REGION, endpoint=moto, creds=KEYS, path_style=True) as s3:
        await s3.create_bucket(Bucket=bucket)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AWS_ENDPOINT_URL_S3", moto)   # the daemons inherit it (their S3 client's endpoint)
            yield {"credentials": str(creds), "region": REGION, "bucket": bucket}, bucket
    finally:
        async with create_client("s3", region=REGION, endpoint=moto, creds=KEYS, path_style=True) as s3:
            listed = await s3.list_objects_v2(Bucket=bucket)
            for o in listed.get("Contents", []):   # moto keeps objects in memory
                await s3.delete_object(Bucket=bucket, Key=o["Key"])
            await s3.delete_bucket(Bucket=bucket)


async def read_s3(run: Run, moto: str, bucket: str) -> None:
    async with create_client("s3", region=REGION, endpoint=moto, creds=KEYS, path_style=True) as s3:
        listed = await s3.list_objects_v2(Bucket=bucket)
        run.s3_objects = listed.get("Contents", [])
        if len(run.s3_objects) != 1:
            return
        obj = await s3.get_object(Bucket=bucket, Key=run.s3_objects[0]["Key"])
        h = hashlib.sha256()
        async with obj["Body"] as stream:
            while chunk := await stream.read(1 << 20):
                if not run.s3_head:
                    run.s3_head = chunk[:4]
                h.update(chunk)
        run.s3_sha256 = h.hexdigest()


@asynccontextmanager
async def ib_serve(tmp: Path, image_builder: dict[str, Any], builder: dict[str, Any],
                   **extra: Any) -> AsyncIterator[IBDaemon]:
    """``osbuildd serve`` with ``[image_builder]`` on a unix socket (plus ``image_builder``'s keys)."""
    state, rundir = tmp / "state", tmp / "run"
    rundir.mkdir(parents=True, exist_ok=True)
    sock = rundir / "ib.sock"
    config = tmp / "osbuildd.toml"
    config.write_text(tomli_w.dumps({
        "state_dir": str(state), "log_format": "json", "weldr": {"socket": str(rundir / "weldr.socket")},
        "image_builder": {"listen": f"unix:{sock}", **image_builder}, "builder": builder, **extra}))
    notify = NotifySocket(tmp / "notify.sock")
    proc = await start_serve(REPO, config, notify, tmp / "daemon.log")
    try:
        await notify.wait_for("READY=1", proc)
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock)),
                                         timeout=aiohttp.ClientTimeout(total=600)) as session:
            yield IBDaemon(session, state)
    finally:
        if proc.returncode is None:
            proc.terminate()
            async with asyncio.timeout(60):
                await proc.wait()
        notify.close()
    assert proc.returncode == 0, (tmp / "daemon.log").read_text(errors="replace")[-5000:]


async def compose_and_poll(ib: IBDaemon, run: Run) -> None:
    """POST /compose as organisation A, then GET /composes/{id} every 0.2 s until it settles."""
    started = time.monotonic()
    made = await ib.call("POST", "compose", ib_body(run.image_name))
    assert made.status == 201, made.text
    run.id = made.json()["id"]
    async with asyncio.timeout(BUILD_LIMIT):
        while True:
            answer = await ib.call("GET", f"composes/{run.id}")
            assert answer.status == 200, answer.text
            run.answers.append(answer.json())
            if run.final["status"] not in RUNNING:
                break
            await asyncio.sleep(POLL)
    run.seconds = time.monotonic() - started


async def read_back(ib: IBDaemon, run: Run) -> None:
    """The list, the metadata, and what organisation B gets for A's compose."""
    listed = await ib.call("GET", "composes?limit=100")
    assert listed.status == 200, listed.text
    run.listed = listed.json()
    meta = await ib.call("GET", f"composes/{run.id}/metadata")
    assert meta.status == 200, meta.text
    run.metadata = meta.json()
    for route in (f"composes/{run.id}", f"composes/{run.id}/metadata", "composes"):
        run.other_org[route] = await ib.call("GET", route, org=ORG_B)


async def weldr_image_sha256(socket: Path, compose_id: str) -> str:
    """The README's download: the compose's image through the Weldr socket, hashed as it streams."""
    h = hashlib.sha256()
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket))) as s, \
            s.get(f"http://localhost/api/v1/compose/image/{compose_id}") as r:
        assert r.status == 200, await r.text()
        async for chunk in r.content.iter_chunked(1 << 20):
            h.update(chunk)
    return h.hexdigest()


async def settle_results(run: Run, state: Path) -> None:
    """Record the image under results/<id>/, then remove the dir (bounded disk)."""
    if not run.id:
        return
    results = state / "results" / run.id
    run.result_files, run.result_sha256, run.manifest = await asyncio.to_thread(_image_files, results)
    await asyncio.to_thread(shutil.rmtree, results, True)


# -- the scenarios ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gen_certs(tmp_path_factory.mktemp("certs") / "x509")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def in_process(tmp_path_factory: pytest.TempPathFactory, shared_state_dir: Path, require_root: None,
                     moto_url: str) -> Run:  # noqa: F811
    tmp = tmp_path_factory.mktemp("ib-e2e-local")
    share_cache(tmp / "state", shared_state_dir)
    run = Run(f"ib-e2e-local-{uuid.uuid4().hex[:8]}")
    async with aws_setup(tmp, moto_url) as (aws, bucket):
        try:
            async with ib_serve(tmp, {"aws_region": REGION}, {"local_executor": True}, aws=aws) as ib:
                await compose_and_poll(ib, run)
                if run.final["status"] == "success":
                    await read_back(ib, run)
                    run.weldr_sha256 = await weldr_image_sha256(tmp / "run" / "weldr.socket", run.id)
            await read_s3(run, moto_url, bucket)
        finally:
            await settle_results(run, tmp / "state")
    return run


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def remote(tmp_path_factory: pytest.TempPathFactory, shared_state_dir: Path, require_root: None,
                 moto_url: str, certs: Path) -> Run:  # noqa: F811
    tmp = tmp_path_factory.mktemp("ib-e2e-remote")
    c_tmp, i_tmp = tmp / "composer", tmp / "ib"
    i_tmp.mkdir(parents=True)
    share_cache(c_tmp / "state", shared_state_dir)
    run = Run(f"ib-e2e-remote-{uuid.uuid4().hex[:8]}")
    async with aws_setup(tmp, moto_url) as (aws, bucket):
        try:
            async with cloud_daemon_tls(c_tmp, mtls_section(certs), certs=certs, builder={"local_executor": True},
                                        aws=aws) as composer:
                settings = {"aws_region": REGION, "osbuild_url": f"https://localhost:{composer.port}",
                            "osbuild_cert_path": str(certs / "client-crt.pem"),
                            "osbuild_key_path": str(certs / "client-key.pem"),
                            "osbuild_ca_path": str(certs / "ca-crt.pem")}
                async with ib_serve(i_tmp, settings, {"local_executor": False}) as ib:
                    run.ready = await ib.call("GET", "ready")
                    await compose_and_poll(ib, run)
                    if run.final["status"] == "success":
                        await read_back(ib, run)
                run.cloud_status = await cloud_get(composer, run.id)
            await read_s3(run, moto_url, bucket)
        finally:
            await settle_results(run, c_tmp / "state")
    return run


async def cloud_get(composer: TLSDaemon, compose_id: str) -> tuple[int, Any]:
    async with composer.client() as session, session.get(f"{composer.base}/composes/{compose_id}") as r:
        return r.status, await r.json(content_type=None)


@pytest.fixture(params=["in_process", "remote"])
def run(request: pytest.FixtureRequest) -> Run:
    value: Run = request.getfixturevalue(request.param)
    return value


# -- both scenarios --------------------------------------------------------------------------------


def test_compose_succeeds(run: Run) -> None:
    assert run.final["status"] == "success", run.final
    print(f"\n{run.image_name}: {run.seconds:.0f} s from POST /compose to success")


def test_answers_conform_and_move(run: Run) -> None:
    seq = [a["image_status"]["status"] for a in run.answers]
    assert seq[-1] == "success" and "building" in seq, sorted(set(seq))
    for a in run.answers:
        status = a["image_status"]
        upload = status.get("upload_status")
        # the spec's UploadStatus options are oneOf AWSS3UploadStatus and OCIUploadStatus, the same
        # schema ({url}): no aws.s3 status matches exactly one, so the options are checked alone
        conforms({**a, "image_status": {k: v for k, v in status.items() if k != "upload_status"}}, "ComposeStatus")
        if upload is not None:
            assert upload["type"] == "aws.s3" and upload["status"] in ("pending", "running", "success"), upload
        assert a["request"]["image_name"] == run.image_name
    done = [a["image_status"]["progress"]["done"] for a in run.answers
            if a["image_status"]["status"] == "building" and "progress" in a["image_status"]]
    assert any(b > a for a, b in zip(done, done[1:], strict=False)), done


def test_uploaded_to_s3(run: Run) -> None:
    upload = run.final["upload_status"]
    assert upload["type"] == "aws.s3" and upload["status"] == "success", upload
    conforms(upload["options"], "AWSS3UploadStatus")
    assert upload["options"]["url"], upload
    assert len(run.s3_objects) == 1, run.s3_objects
    assert run.s3_objects[0]["Key"] in upload["options"]["url"], (run.s3_objects, upload)


def test_object_is_the_qcow2_built(run: Run) -> None:
    assert run.s3_head == QCOW2_MAGIC, run.s3_head
    assert len(run.result_files) == 1, run.result_files
    assert run.s3_sha256 == run.result_sha256


def test_listed_with_its_name(run: Run) -> None:
    conforms(run.listed, "ComposesResponse")
    mine = [c for c in run.listed["data"] if c["id"] == run.id]
    assert len(mine) == 1 and mine[0]["image_name"] == run.image_name, run.listed
    assert mine[0]["request"]["customizations"]["packages"] == ["tmux"]


def test_metadata_has_the_packages(run: Run) -> None:
    conforms(run.metadata, "ComposeMetadata")
    names = {p["name"] for p in run.metadata["packages"]}
    assert "tmux" in names and len(names) > 100, sorted(names)[:20]


def test_another_org_sees_nothing(run: Run) -> None:
    for route in (f"composes/{run.id}", f"composes/{run.id}/metadata"):
        assert run.other_org[route].status == 404, (route, run.other_org[route].text)
        run.other_org[route].error()
    listed = run.other_org["composes"]
    assert listed.status == 200 and listed.json()["meta"]["count"] == 0, listed.text


# -- the remote scenario -------------------------------------------------------------------------


def test_image_downloads_through_weldr(in_process: Run) -> None:
    assert in_process.weldr_sha256 and in_process.weldr_sha256 == in_process.result_sha256


def test_remote_ready(remote: Run) -> None:
    assert remote.ready is not None and remote.ready.status == 200, remote.ready
    assert remote.ready.json() == {"readiness": "ready"}


def test_remote_id_is_the_composers(remote: Run) -> None:
    status, body = remote.cloud_status
    assert status == 200, body
    assert body["id"] == remote.id and body["status"] == "success", body
