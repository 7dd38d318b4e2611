"""Secrets at rest (issue 10 §6): a real Debian container image composed with AWS S3 (moto), Azure blob
(azurite) and GCP (GCS emulator + the compute fake) targets, each with credentials in its options.
Afterwards no credential string is anywhere in the state dir (SQLite file, WAL and shm as bytes,
logs, results, keys), in the daemon's log output at debug level, or in what the Weldr API serves
(compose status/info/queue/log, the logs/metadata/results tars). While the build waits, the job row
holds them only sealed; once it ended, not at all.

The daemon's config has no endpoint keys (the emulators are test-only); the credentials loader reads
the ``[aws]``/``[gcp]``/``[azure]`` section attributes named like its fields, so the test sets the
emulator endpoints there.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import sys
import tarfile
import uuid
from pathlib import Path

import aiohttp
import pytest
import structlog
from aiohttp import web
from azure.storage.blob.aio import BlobServiceClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from osbuildd import log as osbuildd_log
from osbuildd.blueprint import Blueprint
from osbuildd.compose import ComposeRequest, UploadTarget
from osbuildd.config import Config
from osbuildd.executor import start_local
from osbuildd.services import Services

from .fake_azure import ACCOUNT, KEY
from .fake_gcp import FakeCompute

pytestmark = pytest.mark.build

TAG = uuid.uuid4().hex[:10]
AWS_KEY_ID = f"AKIASEALED{TAG.upper()}"
AWS_SECRET = f"aws-sealed-secret-{TAG}"
AWS_TOKEN = f"aws-sealed-session-token-{TAG}"
GCP_KEY_ID = f"gcp-sealed-key-id-{TAG}"


def gcp_credentials(token_uri: str) -> tuple[str, list[str]]:
    """Base64 service-account JSON for the target options, and strings that would betray it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    blob = base64.b64encode(json.dumps({
        "type": "service_account", "project_id": "osbuildd-test", "private_key_id": GCP_KEY_ID,
        "private_key": pem, "client_email": "sa@osbuildd-test.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": token_uri}).encode()).decode()
    pem_lines = pem.splitlines()
    return blob, [GCP_KEY_ID, pem_lines[5], pem_lines[-3], blob[40:120]]


def scan_dir(root: Path, secrets: list[str]) -> dict[str, list[str]]:
    """Files under ``root`` (symlinked shared store/cache not followed, like ``grep -r``) holding a
    secret, as bytes: SQLite pages, WAL frames, logs, JSON, tars."""
    found: dict[str, list[str]] = {}
    needles = [(s, s.encode()) for s in secrets]
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not (Path(dirpath) / d).is_symlink()]
        for name in files:
            p = Path(dirpath) / name
            if p.is_symlink() or not p.is_file():
                continue
            data = p.read_bytes()
            hits = [s for s, b in needles if b in data]
            if hits:
                found[str(p.relative_to(root))] = hits
    return found


def in_bytes(data: bytes, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s.encode() in data]


class CapturedLogs:
    """The daemon's structured log (structlog + stdlib, e.g. botocore, azure) into a file at debug."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> CapturedLogs:
        self.saved = structlog.get_config()
        root = logging.getLogger()
        self.saved_root = (list(root.handlers), root.level)
        self.file = self.path.open("w")
        osbuildd_log.setup("debug", "json", stream=self.file)
        return self

    def __exit__(self, *_exc: object) -> None:
        structlog.configure(**self.saved)
        root = logging.getLogger()
        root.handlers[:], level = self.saved_root
        root.setLevel(level)
        logging.getLogger("aiohttp.access").setLevel(logging.NOTSET)
        self.file.close()


async def azure_container(azurite_url: str) -> tuple[BlobServiceClient, str]:
    svc = BlobServiceClient(f"{azurite_url}/{ACCOUNT}", credential={"account_name": ACCOUNT, "account_key": KEY})
    name = f"sealed{TAG}"
    await svc.create_container(name)
    return svc, name


async def weldr_bodies(socket_path: Path, cid: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket_path))) as s:
        for route in (f"compose/status/{cid}", f"compose/info/{cid}", "compose/queue", "compose/finished",
                      "compose/failed", "compose/status/*", f"compose/log/{cid}", f"compose/logs/{cid}",
                      f"compose/metadata/{cid}", f"compose/results/{cid}"):
            async with s.get(f"http://localhost/api/v1/{route}") as r:
                assert r.status == 200, (route, await r.text())
                out[route] = await r.read()
    return out


def tar_members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}  # type: ignore[union-attr]


async def job_args(services: Services, job_id: str) -> tuple[str, dict]:
    async with services.db.conn.execute("SELECT args FROM jobs WHERE id = ?", (job_id,)) as cur:
        raw = (await cur.fetchone())[0]
    return raw, json.loads(raw)


async def test_no_credential_at_rest_after_three_cloud_composes(
        tmp_path: Path, shared_state_dir: Path, require_root: None, moto_url: str, azurite_url: str,
        gcs_url: str, s3_bucket: str, gcs_bucket: str, fake_compute: tuple[FakeCompute, str]) -> None:
    state = tmp_path / "state"
    state.mkdir()
    for sub in ("store", "cache"):
        (state / sub).symlink_to(shared_state_dir / sub)
    gcp_blob, gcp_marks = gcp_credentials(f"{fake_compute[1]}/token")
    secrets = [AWS_KEY_ID, AWS_SECRET, AWS_TOKEN, KEY, *gcp_marks]
    blobs, container = await azure_container(azurite_url)
    targets = [
        UploadTarget("org.osbuild.aws.s3", "sealed-s3", {
            "endpoint": moto_url, "region": "us-east-1", "bucket": s3_bucket, "key": "sealed", "public": True,
            "accessKeyID": AWS_KEY_ID, "secretAccessKey": AWS_SECRET, "sessionToken": AWS_TOKEN}),
        UploadTarget("org.osbuild.azure", "sealed-azure", {
            "storageAccount": ACCOUNT, "storageAccessKey": KEY, "container": container}),
        UploadTarget("org.osbuild.gcp", "sealed-gce", {
            "bucket": gcs_bucket, "object": "sealed.tar", "region": "us-central1", "credentials": gcp_blob}),
    ]
    config = Config.embedded(state)
    config.gcp.storage_api_root = gcs_url                            # type: ignore[attr-defined]
    config.gcp.compute_api_root = f"{fake_compute[1]}/compute/v1"    # type: ignore[attr-defined]
    config.gcp.poll_interval = 0.05                                  # type: ignore[attr-defined]
    config.azure.blob_endpoint = azurite_url + "/{account}"          # type: ignore[attr-defined]
    logs = tmp_path / "daemon.log"
    from osbuildd.api import weldr

    with CapturedLogs(logs):
        s = await Services.open(config)
        runner = None
        try:
            await start_local(s)
            runner = web.AppRunner(weldr.create_app(s))
            await runner.setup()
            await web.UnixSite(runner, str(tmp_path / "weldr.sock")).start()
            bp = Blueprint.from_json({"name": "sealed-targets", "version": "0.0.1"})
            bp.initialize()
            cid = await s.compose.start(ComposeRequest(
                distro="debian-12", arch="x86_64", image_type="container", blueprint=bp, targets=targets,
                origin="test"))
            raw, args = await job_args(s, cid)
            assert in_bytes(raw.encode(), secrets) == [] and args["sealed"].startswith("gAAAA")
            assert [t["options"] for t in args["targets"]] == [
                {"endpoint": moto_url, "region": "us-east-1", "bucket": s3_bucket, "public": True},
                {"storageAccount": ACCOUNT, "container": container},
                {"bucket": gcs_bucket, "object": "sealed.tar", "region": "us-central1"}]
            async with asyncio.timeout(1700):
                while True:
                    if (c := await s.compose.get(cid)).state in ("finished", "failed", "canceled"):
                        break
                    await asyncio.sleep(1)
            assert c.state == "finished", (c.error, c.result and c.result.get("target_results"))
            assert [u["status"] for u in c.upload_statuses] == ["success"] * 3
            # the uploads really happened, with those credentials
            image = c.image_path.read_bytes()
            async with aiohttp.ClientSession() as http, \
                    http.get(c.result["target_results"][0]["options"]["url"]) as r:
                assert r.status == 200 and await r.read() == image
            props = await blobs.get_blob_client(container, "sealed-azure.vhd").get_blob_properties()
            assert props.size == len(image)
            assert fake_compute[0].inserts and "sealed-gce" in fake_compute[0].images
            # the job ended: the sealed credentials are gone from its row
            raw, args = await job_args(s, cid)
            assert "sealed" not in args and in_bytes(raw.encode(), secrets) == []
            served = await weldr_bodies(tmp_path / "weldr.sock", cid)
            scanned_open = scan_dir(state, secrets)   # WAL and shm are there while the database is open
            assert (state / "osbuildd.db-wal").is_file()
        finally:
            if runner is not None:
                await runner.cleanup()
            await s.close()
            await blobs.close()
    assert scanned_open == {}
    assert scan_dir(state, secrets) == {}
    for route, body in served.items():
        assert in_bytes(body, secrets) == [], route
        if route.startswith(("compose/logs", "compose/metadata", "compose/results")):
            for member, content in tar_members(body).items():
                assert in_bytes(content, secrets) == [], (route, member)
    text = logs.read_text()
    assert "upload.done" in text and "org.osbuild.gcp" in text   # the log did capture the uploads
    assert in_bytes(text.encode(), secrets) == []
    # the compose's stored request shows the target settings without their secrets
    assert in_bytes(json.dumps(c.request).encode(), secrets) == []
    print(f"scanned {sum(1 for _ in state.rglob('*'))} paths, {len(text)} log bytes", file=sys.stderr)
