"""Running ``osbuildd serve`` as a real child process, with a NOTIFY_SOCKET the test owns."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp

STARTUP_LIMIT = 60.0  # a hang guard, not a timing assertion


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NotifySocket:
    """The receiving end of sd_notify(3): a datagram socket bound at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[str] = []

    async def wait_for(self, key: str, proc: asyncio.subprocess.Process | None = None) -> str:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(STARTUP_LIMIT):
            while True:
                recv = asyncio.ensure_future(loop.sock_recv(self.sock, 4096))
                waiters: set[asyncio.Future] = {recv}
                if proc is not None:
                    waiters.add(asyncio.ensure_future(proc.wait()))
                done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for p in pending:
                    p.cancel()
                if recv not in done:
                    raise AssertionError(f"daemon exited with {proc.returncode} before {key}")
                message = recv.result().decode()
                self.messages.append(message)
                if any(line.startswith(key) for line in message.splitlines()):
                    return message

    def drain(self) -> list[str]:
        """Messages already delivered but not read yet (e.g. after the daemon exited)."""
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    def close(self) -> None:
        self.sock.close()


def daemon_env(repo_root: Path, notify: NotifySocket, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(repo_root), NOTIFY_SOCKET=str(notify.path), **extra)
    env.pop("OSBUILDD_CONFIG", None)
    return env


async def start_serve(repo_root: Path, config: Path, notify: NotifySocket,
                      stderr_path: Path) -> asyncio.subprocess.Process:
    with await asyncio.to_thread(open, stderr_path, "wb") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(config),
            cwd=repo_root, env=daemon_env(repo_root, notify), stderr=err, stdout=err)


async def get_json(url: str, unix: Path | None = None) -> tuple[int, dict]:
    connector = aiohttp.UnixConnector(path=str(unix)) if unix else None
    async with aiohttp.ClientSession(connector=connector) as session, session.get(url) as resp:
        return resp.status, await resp.json(content_type=None)


async def unix_call(sock: Path, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A JSON request over a unix socket; the answer's JSON (or its bytes when it is not JSON)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock)),
                                     timeout=aiohttp.ClientTimeout(total=600)) as s, \
            s.request(method, "http://localhost" + path, headers=headers,
                      data=None if body is None else json.dumps(body)) as r:
        raw = await r.read()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw
