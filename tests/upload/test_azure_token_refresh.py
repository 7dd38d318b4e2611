"""org.osbuild.azure.image keeps a valid ARM token through a long upload.

The real upload module against azurite (the VHD) and the fake ARM/AAD (``fake_azure.py``, over TLS on
loopback). The fake's tokens live 1 s and an ARM call with an expired token is a 401, so the upload
only succeeds if azure-identity's credential fetches new tokens while it runs. The client secret is
looked for in the daemon's own log (structlog + stdlib loggers, as ``osbuildd.log.setup`` wires them).
"""

from __future__ import annotations

import os
from pathlib import Path

from osbuildd.compose.model import UploadTarget
from osbuildd.upload import Credentials, upload

from .fake_azure import FakeARM
from .test_azure import download
from .test_secrets_at_rest import CapturedLogs

SECRET = "arm-Secret-do-not-log"


async def test_token_is_refreshed_during_the_upload(credentials: Credentials, azurite_url: str, tmp_path: Path,
                                                    fake_arm: tuple[FakeARM, str]) -> None:
    fake = fake_arm[0]
    assert fake.client_secret == SECRET and fake_arm[1].startswith("https://")
    fake.token_lifetime = 1          # azure-identity must fetch a new token once this one expired
    fake.polls_until_done = 12       # Images.CreateOrUpdate runs for ~12 polls
    credentials.azure.poll_interval = 0.25
    fake.keys_delay = 1.2            # so the token of listKeys is stale by Images.CreateOrUpdate
    vhd = tmp_path / "small.vhd"
    vhd.write_bytes(os.urandom(3 * (4 << 20) + 512))   # 4 pages, the last one partial
    target = UploadTarget("org.osbuild.azure.image", "refresh-test",
                          {"tenant_id": "tenant-1", "subscription_id": "sub-1", "resource_group": "rg-1"})
    log_file = tmp_path / "daemon.log"
    with CapturedLogs(log_file):
        result = await upload(target, vhd, credentials, None)
    assert result == {"image_name": "refresh-test"}

    assert fake.rejected == []                     # no ARM call carried an expired or unknown token
    calls = fake.used
    assert len(calls) == 3 + 1 + 12                # rg, accounts, listKeys, create, 12 polls
    assert fake.token_requests >= 3                # ~3 s of calls with 1 s tokens
    assert len(set(calls)) == fake.token_requests  # every token fetched was used
    assert fake.token_requests < len(calls)        # and reused while valid: the credential caches
    assert calls[2] != calls[3]                    # listKeys and Images.Create: a refresh around the blob upload

    _, data, _ = await download(azurite_url, "imagebuilder", "refresh-test.vhd")
    assert data == vhd.read_bytes()
    text = log_file.read_text()
    assert "upload.azure.image" in text and "ClientSecretCredential" in text   # both log paths were captured
    assert SECRET not in text
