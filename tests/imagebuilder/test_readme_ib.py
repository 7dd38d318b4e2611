"""The README's image-builder API block, run by bash as a user runs it: ``LISTEN_ADDRESS=... osbuildd
serve --state-dir ./state``, the identity header made with printf and base64, ``curl`` for the
distributions, a compose of examples/imagebuilder-compose.json and its status. Only the port and the
state dir are moved into the test's own; the daemon is stopped once the compose is accepted (the E2E
test builds one to the end)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from pathlib import Path

from foundation.daemon_helpers import free_port

REPO = Path(__file__).resolve().parents[2]


def readme_block() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("### The image-builder API (multi-tenant)"):]
    block = section[section.index("```sh\n") + 6:]
    lines = block[:block.index("```")].strip().splitlines()
    joined: list[str] = []   # continuation lines joined, comments dropped
    for line in lines:
        line = re.sub(r"\s+#.*$", "", line)
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1] + " " + line.strip()
        else:
            joined.append(line)
    return joined


async def bash(script: str, **env: str) -> str:
    proc = await asyncio.create_subprocess_exec("bash", "-euo", "pipefail", "-c", script, cwd=REPO,
                                                env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(120):
        out, err = await proc.communicate()
    assert proc.returncode == 0, (script, err.decode())
    return out.decode()


async def test_readme_image_builder_block(tmp_path: Path) -> None:
    lines = readme_block()
    serve, ident, base, distributions, compose, status, download = lines
    assert serve.startswith("LISTEN_ADDRESS=127.0.0.1:8086 .venv/bin/osbuildd serve --state-dir ./state"), serve
    assert download.startswith("curl --unix-socket ./state/api.socket"), download
    port = free_port()
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k not in ("LISTEN_ADDRESS", "OSBUILD_URL", "OSBUILDD_CONFIG")}
    daemon = await asyncio.create_subprocess_exec(
        "bash", "-c", serve.replace("8086", str(port)).replace("./state", str(state)).rstrip(" &"),
        cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    prelude = "\n".join([ident, base.replace("8086", str(port))])
    try:
        for _ in range(600):
            if (state / "api.socket").exists() and daemon.returncode is None:
                try:
                    await bash(prelude + f"\ncurl -sf http://127.0.0.1:{port}/status", **env)
                    break
                except AssertionError:
                    pass
            await asyncio.sleep(0.1)
        listed = json.loads(await bash(prelude + "\n" + distributions.replace("curl -s", "curl -sf"), **env))
        assert "debian-12" in [d["name"] for d in listed], listed
        made = json.loads(await bash(prelude + "\n" + compose.replace("curl -s", "curl -sf"), **env))
        cid = made["id"]
        seen = json.loads(await bash(prelude + "\n" + status.replace("<compose id>", cid)
                                     .replace("curl -s", "curl -sf"), **env))
        assert seen["image_status"]["status"] in ("pending", "building"), seen
        assert seen["request"]["distribution"] == "debian-12", seen
    finally:
        if daemon.returncode is None:
            daemon.send_signal(signal.SIGTERM)
        async with asyncio.timeout(120):
            _, err = await daemon.communicate()
    assert daemon.returncode == 0, err.decode()[-3000:]
