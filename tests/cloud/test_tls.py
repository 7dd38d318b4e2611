"""The Cloud API over TLS with client certificates (upstream's ``[koji]`` mTLS), on ``osbuildd serve``'s
real TCP listener and on a socket inherited from systemd: the chain is verified in the handshake, the
leaf's names against ``allowed_domains`` (Cloud 403 id 2), per connection."""

from __future__ import annotations

import asyncio
import ssl
import sys
from pathlib import Path

import aiohttp
import pytest
from conftest import need_tool
from foundation.daemon_helpers import NotifySocket, daemon_env, free_port

from osbuildd.api.tls import PeerNames

from .tlsutil import (
    CLOUD,
    REPO,
    TLSDaemon,
    client_context,
    cloud_daemon_tls,
    cloud_error,
    expired_client,
    foreign_client,
    get,
    mtls_section,
    named_client,
    passed_auth,
    serve,
    stop,
    write_config,
)

REFUSED = (aiohttp.ClientError, ssl.SSLError, ConnectionError)


async def _refused(daemon: TLSDaemon, ctx: ssl.SSLContext) -> None:
    """The TLS handshake (or, with TLS 1.3, the first read after it) fails: no HTTP answer at all."""
    async with daemon.client(ctx) as session:
        with pytest.raises(REFUSED):
            await get(session, f"{daemon.base}/composes/")


async def test_client_certificate_passes_keep_alive(mtls_cloud: TLSDaemon) -> None:
    async with mtls_cloud.client() as session:
        for _ in range(3):   # one connection, several requests (the check is cached per connection)
            answer = await get(session, f"{mtls_cloud.base}/composes/")
            assert passed_auth(answer), answer
        answer = await get(session, f"{mtls_cloud.base}/errors/4")
        assert passed_auth(answer), answer
    assert "Traceback" not in mtls_cloud.log_text()


async def test_refusals_in_the_handshake(mtls_cloud: TLSDaemon, certs: Path, tmp_path: Path) -> None:
    await _refused(mtls_cloud, client_context(certs, None))                       # no certificate
    crt, key = foreign_client(tmp_path / "foreign")
    await _refused(mtls_cloud, client_context(certs, cert=crt, key=key))          # another CA
    crt, key = expired_client(certs, tmp_path / "expired")
    await _refused(mtls_cloud, client_context(certs, cert=crt, key=key))          # expired
    # the daemon is still fine afterwards
    async with mtls_cloud.client() as session:
        assert passed_auth(await get(session, f"{mtls_cloud.base}/composes/"))
    assert "Traceback" not in mtls_cloud.log_text()


async def test_names_not_in_allowed_domains_403(mtls_cloud: TLSDaemon, certs: Path) -> None:
    # gen-certs' worker certificate (DNS:localhost, DNS:worker) is from the right CA but not allowed
    async with mtls_cloud.client(client_context(certs, "worker")) as session:
        for path in ("/composes/", "/errors/4", "/openapi"):   # mTLS has no public routes
            body = cloud_error(await get(session, mtls_cloud.base + path), 403, 2)
            assert "DNS:localhost, DNS:worker" in body["details"], body


async def test_wildcard_and_cn_names(tmp_path: Path, certs: Path) -> None:
    wild = named_client(certs, tmp_path, "ignored", ["*.clients.example"], "wild")
    cn_only = named_client(certs, tmp_path, "cn.example", [], "cn")
    section = mtls_section(certs, allowed_domains=["b1.clients.example", "cn.example"])
    async with cloud_daemon_tls(tmp_path, section, certs=certs) as daemon:
        for crt, key in (wild, cn_only):
            async with daemon.client(client_context(certs, cert=crt, key=key)) as session:
                assert passed_auth(await get(session, f"{daemon.base}/composes/"))
        async with daemon.client() as session:   # client.osbuild.org: not in this list
            cloud_error(await get(session, f"{daemon.base}/composes/"), 403, 2)


def test_go_verify_hostname_rules() -> None:
    names = PeerNames(("*.example.com", "exact.test"), ("10.0.0.1", "0:0:0:0:0:0:0:1"), "cn.test", "CN=cn.test")
    assert names.matches("a.example.com") and names.matches("A.Example.COM") and names.matches("exact.test.")
    assert not names.matches("example.com") and not names.matches("a.b.example.com")
    assert names.matches("10.0.0.1") and names.matches("::1") and names.matches("[::1]")
    assert not names.matches("10.0.0.2") and not names.matches("cn.test")   # CN only without SANs
    assert PeerNames((), (), "cn.test", "").matches("cn.test")
    assert not PeerNames(("a.*.example",), (), "", "").matches("a.b.example")
    assert not names.allowed([])


async def test_unix_listener_is_local_and_plain(tmp_path: Path, repo_root: Path) -> None:
    # TLS keys left at their defaults (files that do not exist): a unix listener never uses them
    config, _, _ = write_config(tmp_path, {"listen": f"unix:{tmp_path}/run/cloud.sock"})
    proc, notify, log = await serve(config, tmp_path)
    try:
        await notify.wait_for("READY=1", proc)
        connector = aiohttp.UnixConnector(path=str(tmp_path / "run" / "cloud.sock"))
        async with aiohttp.ClientSession(connector=connector) as session:
            assert passed_auth(await get(session, f"http://localhost{CLOUD}/composes/"))
    finally:
        assert await stop(proc) == 0, log.read_text()
        notify.close()


async def test_plain_tcp_without_tls(tmp_path: Path) -> None:
    async with cloud_daemon_tls(tmp_path, {"enable_tls": False}, certs=None) as daemon:
        assert daemon.base.startswith("http://")
        async with daemon.client() as session:
            assert passed_auth(await get(session, f"{daemon.base}/composes/"))


@pytest.mark.parametrize("case", ["missing-cert", "key-mismatch", "missing-ca", "not-pem"])
async def test_bad_certificate_files_one_line_error(tmp_path: Path, certs: Path, case: str) -> None:
    section = mtls_section(certs)
    if case == "missing-cert":
        section["cert"] = str(tmp_path / "nope-crt.pem")
    elif case == "key-mismatch":
        section["key"] = str(certs / "worker-key.pem")
    elif case == "missing-ca":
        section["ca"] = str(tmp_path / "nope-ca.pem")
    else:
        (tmp_path / "junk.pem").write_text("not a certificate\n")
        section["cert"] = str(tmp_path / "junk.pem")
    config, state, weldr = write_config(tmp_path, {"listen": f"127.0.0.1:{free_port()}", **section})
    proc, notify, log = await serve(config, tmp_path)
    async with asyncio.timeout(60):
        rc = await proc.wait()
    notify.close()
    text = log.read_text()
    assert rc == 1, text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("osbuildd: [cloud]") and "Traceback" not in text, text
    assert not weldr.exists() and not (state / "osbuildd.db").exists()   # nothing was touched


async def test_systemd_socket_wrapped_in_tls(tmp_path: Path, certs: Path) -> None:
    activate = need_tool("systemd-socket-activate")
    port = free_port()
    # the configured listen address is not used: the inherited socket "cloud" takes precedence
    config, _, weldr = write_config(tmp_path, {"listen": f"127.0.0.1:{free_port()}", **mtls_section(certs)})
    notify = NotifySocket(tmp_path / "notify.sock")
    env = daemon_env(REPO, notify)
    setenv = [f"-E{k}={env[k]}" for k in ("PYTHONPATH", "NOTIFY_SOCKET", "PATH") if k in env]
    proc = await asyncio.create_subprocess_exec(
        activate, "-l", f"127.0.0.1:{port}", "--fdname=cloud", *setenv,
        sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(config), "--composer-config", "",
        cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    output: list[str] = []
    listening = asyncio.Event()

    async def drain() -> None:
        while line := await proc.stderr.readline():
            output.append(line.decode())
            if "Listening on" in output[-1]:
                listening.set()

    reader = asyncio.create_task(drain())
    try:
        async with asyncio.timeout(60):
            await listening.wait()
        base = f"https://localhost:{port}{CLOUD}"
        # the first connection starts the daemon (as systemd would): it is answered over TLS
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context(certs))) as session:
            first = asyncio.ensure_future(get(session, f"{base}/composes/"))
            await notify.wait_for("READY=1", proc)
            async with asyncio.timeout(60):
                assert passed_auth(await first)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context(certs, "worker"))) as s:
            cloud_error(await get(s, f"{base}/composes/"), 403, 2)
        async with aiohttp.ClientSession() as session:   # plain HTTP on the TLS socket: no answer
            with pytest.raises(REFUSED):
                await get(session, f"http://localhost:{port}{CLOUD}/composes/")
    finally:
        rc = await stop(proc)
        await reader
        notify.close()
    assert rc == 0, "".join(output)
    assert "Traceback" not in "".join(output)
    assert any("(TLS)" in x and "cloud" in x for x in output), output
