"""The README's remote worker in three commands, as a user runs them: ``osbuildd gen-certs``,
``osbuildd serve --config examples/worker-composer.toml``, ``osbuildd worker HOST:PORT`` with
gen-certs' worker certificate where upstream's worker looks for it (here: passed with --cert/--key/--ca,
the only paths moved into the test's directory, with the port and the Weldr socket). A Weldr compose is
built by the worker (the fake osbuild of test_client) and its image downloads from the composer."""

from __future__ import annotations

import tomllib
from pathlib import Path

import aiohttp
import pytest
import tomli_w
from cloud.cloud_daemon import Client
from cloud.tlsutil import gen_certs, serve, stop
from foundation.daemon_helpers import free_port

from .test_client import BP, LIMIT, WorkerProc, filename_of, share, until, worker_toml

REPO = Path(__file__).resolve().parents[2]


async def test_readme_worker_in_three_commands(tmp_path: Path, shared_state_dir: Path) -> None:
    certs = gen_certs(tmp_path / "etc-osbuildd")
    config = tomllib.loads((REPO / "examples" / "worker-composer.toml").read_text())
    assert set(config) == {"worker_api", "builder"}, "the example sets only [worker_api] and [builder]"
    assert config["builder"] == {"local_executor": False}
    port = free_port()
    config["worker_api"]["listen"] = f"127.0.0.1:{port}"
    config["worker_api"] |= {"cert": str(certs / "composer-crt.pem"), "key": str(certs / "composer-key.pem"),
                             "ca": str(certs / "ca-crt.pem")}
    share(tmp_path / "state", shared_state_dir, ("cache",))   # the run's warm apt cache
    socket = tmp_path / "weldr.socket"
    config |= {"state_dir": str(tmp_path / "state"), "weldr": {"socket": str(socket)}}
    path = tmp_path / "worker-composer.toml"
    path.write_text(tomli_w.dumps(config))
    proc, notify, log = await serve(path, tmp_path)
    worker = WorkerProc(tmp_path, "w1", artifact=filename_of("debian-12", "tar"))
    worker_toml(tmp_path)
    try:
        await notify.wait_for("READY=1", proc)
        await worker.start(f"localhost:{port}", "--cert", str(certs / "worker-crt.pem"),
                           "--key", str(certs / "worker-key.pem"), "--ca", str(certs / "ca-crt.pem"))
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket))) as s:
            w = Client(s)
            assert (await w.post("/api/v1/blueprints/new", BP)).status == 200
            r = await w.post("/api/v1/compose", {"blueprint_name": BP["name"], "compose_type": "tar", "branch": ""})
            assert r.status == 200, r.body
            cid = r.json()["build_id"]

            async def status() -> str | None:
                st = (await w.get(f"/api/v1/compose/status/{cid}")).json()["uuids"][0]["queue_status"]
                if st == "FAILED":
                    pytest.fail(f"compose failed: {(await w.get(f'/api/v1/compose/info/{cid}')).json()['error']}")
                return st if st == "FINISHED" else None

            await until(status, "the worker finished the compose", LIMIT)
            image = await s.get(f"http://localhost/api/v1/compose/image/{cid}")
            assert image.status == 200
            assert await image.read() == worker.outputs()[0]   # what the worker built, byte for byte
    finally:
        if worker.proc is not None:
            assert await worker.stop() == 0, worker.log.read_text()
        assert await stop(proc) == 0, log.read_text()
        notify.close()
