"""The README's Cloud API over mTLS in three commands, as a user runs them: ``osbuildd gen-certs``,
``osbuildd serve --config examples/cloud-mtls.toml``, then ``curl`` with gen-certs' client certificate
posting examples/cloud-compose.json and reading its status. Only the paths the example takes from the
host (/etc/osbuildd, /var/lib/osbuildd, port 8443, /run/weldr) are moved into the test's directory;
nothing builds here (the E2E test builds a compose over mTLS)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import tomllib
from pathlib import Path

import tomli_w
from foundation.daemon_helpers import free_port

from .tlsutil import CLOUD, gen_certs, serve, stop

REPO = Path(__file__).resolve().parents[2]


def curl(certs: Path, url: str, *args: str) -> tuple[int, dict]:
    out = subprocess.run(["curl", "-sS", "--cacert", str(certs / "ca-crt.pem"), "--cert", str(certs / "client-crt.pem"),
                          "--key", str(certs / "client-key.pem"), "-w", "\n%{http_code}", *args, url],
                         capture_output=True, text=True, check=True, timeout=60)
    body, _, code = out.stdout.rpartition("\n")
    return int(code), json.loads(body)


async def test_readme_mtls_in_three_commands(tmp_path: Path) -> None:
    certs = gen_certs(tmp_path / "etc-osbuildd")
    config = tomllib.loads((REPO / "examples" / "cloud-mtls.toml").read_text())
    port = free_port()
    config["cloud"]["listen"] = f"127.0.0.1:{port}"
    config["cloud"] |= {"cert": str(certs / "composer-crt.pem"), "key": str(certs / "composer-key.pem"),
                        "ca": str(certs / "ca-crt.pem")}
    assert set(config) == {"cloud"}, "the example sets only [cloud]"
    config |= {"state_dir": str(tmp_path / "state"), "weldr": {"socket": str(tmp_path / "weldr.socket")},
               "builder": {"local_executor": False}}
    path = tmp_path / "cloud-mtls.toml"
    path.write_text(tomli_w.dumps(config))
    proc, notify, log = await serve(path, tmp_path)
    try:
        await notify.wait_for("READY=1", proc)
        url = f"https://localhost:{port}{CLOUD}"
        status, made = await asyncio.to_thread(
            curl, certs, f"{url}/compose", "-H", "Content-Type: application/json",
            "--data", f"@{REPO / 'examples' / 'cloud-compose.json'}")
        assert status == 201 and made["kind"] == "ComposeId", made
        status, seen = await asyncio.to_thread(curl, certs, f"{url}/composes/{made['id']}")
        assert status == 200 and seen["status"] == "pending", seen
        # without the client certificate the handshake fails: curl exits non-zero
        bare = await asyncio.to_thread(subprocess.run, ["curl", "-sS", "--cacert", str(certs / "ca-crt.pem"),
                                                         f"{url}/composes/"], capture_output=True, text=True, timeout=60)
        assert bare.returncode != 0, bare.stdout
    finally:
        assert await stop(proc) == 0, log.read_text()
        notify.close()
