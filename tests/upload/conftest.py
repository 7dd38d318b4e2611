"""Fixtures for the upload tests: the protocol servers, the fakes on loopback, a real disk image."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from osbuildd.upload import Credentials
from osbuildd.upload.awsclient import create_client

from .fake_azure import ACCOUNT, KEY, FakeARM
from .fake_ec2 import EC2Shim
from .fake_gcp import FakeCompute

AWS_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def need_tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        pytest.fail(f"{name} is not installed: run scripts/setup.sh --test first")
    return found


def _server(var: str) -> str:
    url = os.environ.get(var)
    if not url:
        pytest.fail(f"{var} is not set: start the servers with scripts/test-servers.sh (make test does)")
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=2).close()
    except OSError as e:
        pytest.fail(f"{var}={url} is not reachable ({e}): start scripts/test-servers.sh")
    return url.rstrip("/")


@pytest.fixture(scope="session")
def moto_url() -> str:
    return _server("OSBUILDD_TEST_MOTO")


@pytest.fixture(scope="session")
def azurite_url() -> str:
    return _server("OSBUILDD_TEST_AZURITE")


@pytest.fixture(scope="session")
def gcs_url() -> str:
    return _server("OSBUILDD_TEST_GCS")


@pytest.fixture(scope="session")
def disk_image(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real bootable-shaped disk: GPT + an ext4 partition with files, as raw, VHD and GCE tar.gz."""
    for tool in ("sfdisk", "mkfs.ext4", "qemu-img", "tar"):
        need_tool(tool)
    d = tmp_path_factory.mktemp("image")
    tree = d / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "os-release").write_text('NAME="osbuildd test"\nID=debian\n')
    (tree / "boot").mkdir()
    (tree / "boot" / "payload.bin").write_bytes(os.urandom(6 << 20))   # incompressible data
    raw = d / "disk.raw"
    with open(raw, "wb") as f:
        f.truncate(40 << 20)
    subprocess.run(["sfdisk", "-q", str(raw)], input="label: gpt\nstart=2048, type=linux\n", text=True, check=True)
    part = d / "part.ext4"
    with open(part, "wb") as f:
        f.truncate((40 << 20) - (2048 + 34) * 512)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(part)], check=True)
    subprocess.run(["dd", f"if={part}", f"of={raw}", "bs=512", "seek=2048", "conv=notrunc,sparse", "status=none"],
                   check=True)
    part.unlink()
    vhd = d / "disk.vhd"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size",
                    str(raw), str(vhd)], check=True)
    targz = d / "image.tar.gz"
    subprocess.run(["tar", "-C", str(d), "-Sczf", str(targz), "disk.raw"], check=True)
    return {"raw": raw, "vhd": vhd, "tar.gz": targz}


async def serve(app: web.Application, tls: ssl.SSLContext | None = None) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"{'https' if tls else 'http'}://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def loopback_pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """(CA file, server context) for fakes served over TLS on 127.0.0.1."""
    from .tls_proxy import make_pki, server_context

    ca, cert, key = make_pki(tmp_path_factory.mktemp("pki"))
    return ca, server_context(cert, key)


@pytest.fixture
async def ec2_shim(moto_url: str) -> AsyncIterator[tuple[EC2Shim, str]]:
    shim = EC2Shim(moto_url)
    runner, url = await serve(shim.app())
    yield shim, url
    await runner.cleanup()


@pytest.fixture
async def fake_compute(gcs_url: str) -> AsyncIterator[tuple[FakeCompute, str]]:
    fake = FakeCompute(gcs_url)
    runner, url = await serve(fake.app())
    yield fake, url
    await runner.cleanup()


@pytest.fixture
async def fake_arm(loopback_pki: tuple[Path, ssl.SSLContext]) -> AsyncIterator[tuple[FakeARM, str]]:
    fake = FakeARM(client_id="00000000-0000-0000-0000-00000000c1d0", client_secret="arm-Secret-do-not-log")
    # TLS: azure-identity refuses a plain-http authority
    runner, url = await serve(fake.app(), loopback_pki[1])
    fake.base = url
    yield fake, url
    await runner.cleanup()


@pytest.fixture
def gcp_service_file(tmp_path: Path, fake_compute: tuple[FakeCompute, str]) -> Path:
    """A real service-account key (fresh RSA key); its token_uri is the fake's token endpoint."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = tmp_path / "gcp.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "osbuildd-test", "private_key_id": "k1",
        "private_key": pem, "client_email": "sa@osbuildd-test.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": f"{fake_compute[1]}/token",
    }))
    return path


@pytest.fixture
def credentials(tmp_path: Path, moto_url: str, azurite_url: str, gcs_url: str, ec2_shim: tuple[EC2Shim, str],
                fake_compute: tuple[FakeCompute, str], fake_arm: tuple[FakeARM, str],
                gcp_service_file: Path, loopback_pki: tuple[Path, ssl.SSLContext]) -> Credentials:
    aws_file = tmp_path / "aws-credentials"
    aws_file.write_text("[default]\naws_access_key_id = AKIDFROMFILE\naws_secret_access_key = aws-Secret-do-not-log\n")
    azure_file = tmp_path / "azure-credentials.toml"
    azure_file.write_text(f'client_id = "{fake_arm[0].client_id}"\nclient_secret = "{fake_arm[0].client_secret}"\n')
    creds = Credentials()
    creds.aws.credentials = str(aws_file)
    creds.aws.region = "us-east-1"
    creds.aws.s3_endpoint = moto_url
    creds.aws.ec2_endpoint = ec2_shim[1]
    creds.aws.import_poll_interval = 0.05
    creds.gcp.credentials = str(gcp_service_file)
    creds.gcp.storage_api_root = gcs_url
    creds.gcp.compute_api_root = f"{fake_compute[1]}/compute/v1"
    creds.gcp.poll_interval = 0.05
    creds.azure.credentials = str(azure_file)
    creds.azure.blob_endpoint = azurite_url + "/{account}"
    creds.azure.management_url = fake_arm[1]
    creds.azure.authority_url = fake_arm[1]
    creds.azure.ca_bundle = str(loopback_pki[0])
    creds.azure.poll_interval = 0.05
    return creds


@pytest.fixture
async def s3_bucket(moto_url: str) -> AsyncIterator[str]:
    name = f"osbuildd-{uuid.uuid4().hex[:12]}"
    async with create_client("s3", region="us-east-1", endpoint=moto_url, creds=AWS_KEYS, path_style=True) as s3:
        await s3.create_bucket(Bucket=name)
        yield name
        # moto keeps objects in memory: empty the bucket so a long run does not grow it
        listed = await s3.list_objects_v2(Bucket=name)
        for obj in listed.get("Contents", []):
            await s3.delete_object(Bucket=name, Key=obj["Key"])


@pytest.fixture
async def gcs_bucket(gcs_url: str) -> str:
    name = f"osbuildd-{uuid.uuid4().hex[:12]}"
    async with aiohttp.ClientSession() as s, \
            s.post(f"{gcs_url}/storage/v1/b", params={"project": "osbuildd-test"}, json={"name": name}) as r:
        assert r.status == 200, await r.text()
    return name


def gcp_options_credentials(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


__all__ = ["ACCOUNT", "AWS_KEYS", "KEY", "serve", "gcp_options_credentials"]
