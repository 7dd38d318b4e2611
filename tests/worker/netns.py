"""Network namespaces for the multi-host tests: one composer "host" and one per worker, joined by veth pairs.

Addresses are the test's own (10.213.0.0/16, nothing else is touched):

- the composer namespace holds ``10.213.0.1/32`` on its loopback (the one address every worker dials)
  and, per worker ``i`` (1-based), the composer end of a veth pair, ``10.213.i.1/24``;
- worker namespace ``i`` holds the other end, ``10.213.i.2/24``, and a route to ``10.213.0.1`` over it.

The way out (the Debian mirror) is an HTTP proxy the test runs in the root namespace on
``10.213.254.1:3128``, over a veth to the composer namespace (``10.213.254.2``), which forwards for the
workers; processes get ``http_proxy`` (``proxy_env``). No NAT, the host's own forwarding untouched; one run
at a time (the root namespace holds the proxy address and a route to 10.213.0.0/16 while it runs).

``link_down(i)`` / ``link_up(i)`` set the worker end of its veth down/up: the worker host loses its network,
its processes live on. Processes are started with ``nsenter --net=/run/netns/NAME``: they change network
namespace only, not mount namespace (``ip netns exec`` would give each its own mount namespace, so
mounts a build leaves behind would be invisible to the test and to a restarted worker, unlike on a real
host). Every process is a session leader (its own process group).

Names are ``osbw-<pid>-c`` / ``osbw-<pid>-w<i>`` (interfaces ``obw<pid>c<i>`` / ``obw<pid>w<i>``), unique per
run; ``remove_stale()`` deletes those of runs whose pid is gone (killing what still runs in them).
``Hosts.close()`` kills every process it started and every process left in its namespaces, then deletes
them; it is safe to call twice and is called by the fixtures' finalizers also after a failed test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

PREFIX = "osbw-"
COMPOSER_ADDR = "10.213.0.1"
NETNS_DIR = Path("/run/netns")
# the way out to the Debian mirror: an HTTP proxy in the root namespace on a veth to the composer
# namespace (which forwards for the workers); nothing is NATed, the host's forwarding is untouched
PROXY_ADDR, UPLINK_ADDR, PROXY_PORT = "10.213.254.1", "10.213.254.2", 3128


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def _ns_pids(ns: str) -> list[int]:
    out = _ip("netns", "pids", ns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_all_in(ns: str) -> None:
    """SIGKILL every process in ``ns`` until none is left (children forked meanwhile included)."""
    for _ in range(50):
        pids = _ns_pids(ns)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def _delete_ns(ns: str) -> None:
    _kill_all_in(ns)
    _ip("netns", "delete", ns, check=False)


def namespaces() -> list[str]:
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def remove_stale() -> list[str]:
    """Delete the namespaces of earlier runs whose process is gone; returns their names."""
    removed = []
    for ns in namespaces():
        if not ns.startswith(PREFIX):
            continue
        try:
            pid = int(ns[len(PREFIX):].split("-")[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            _delete_ns(ns)
            removed.append(ns)
    return removed


@dataclass
class Proc:
    """A process started in a namespace, with its log file."""

    name: str
    ns: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        """SIGKILL this process only (not its group: what it started is left behind, as after a crash)."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()

    def kill_group(self) -> None:
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait()

    def terminate(self, timeout: float = 60) -> int:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill_group()
        return self.popen.returncode

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@dataclass
class Hosts:
    """The composer namespace and ``workers`` worker namespaces of this run."""

    workers: int
    tag: str = field(default_factory=lambda: str(os.getpid()))
    procs: list[Proc] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    proxy: subprocess.Popen[bytes] | None = None

    @property
    def composer(self) -> str:
        return f"{PREFIX}{self.tag}-c"

    def worker(self, i: int) -> str:
        return f"{PREFIX}{self.tag}-w{i}"

    def worker_addr(self, i: int) -> str:
        return f"10.213.{i}.2"

    def _veth(self, side: str, i: int) -> str:
        return f"obw{self.tag}{side}{i}"[-15:]

    def setup(self) -> Hosts:
        remove_stale()
        for ns in [self.composer, *(self.worker(i) for i in range(1, self.workers + 1))]:
            if ns in namespaces():
                _delete_ns(ns)
            _ip("netns", "add", ns)
            self.created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", self.composer, "addr", "add", f"{COMPOSER_ADDR}/32", "dev", "lo")
        self._uplink()
        for i in range(1, self.workers + 1):
            c, w = self._veth("c", i), self._veth("w", i)
            _ip("link", "add", c, "netns", self.composer, "type", "veth", "peer", "name", w, "netns", self.worker(i))
            _ip("-n", self.composer, "addr", "add", f"10.213.{i}.1/24", "dev", c)
            _ip("-n", self.composer, "link", "set", c, "up")
            _ip("-n", self.worker(i), "addr", "add", f"{self.worker_addr(i)}/24", "dev", w)
            _ip("-n", self.worker(i), "link", "set", w, "up")
            _ip("-n", self.worker(i), "route", "add", f"{COMPOSER_ADDR}/32", "via", f"10.213.{i}.1")
            _ip("-n", self.worker(i), "route", "add", f"{PROXY_ADDR}/32", "via", f"10.213.{i}.1")
        return self

    def _uplink(self) -> None:
        """veth root <-> composer namespace (10.213.254.0/30), the composer namespace forwarding
        between the workers and the proxy, the root namespace's way back to the workers over it."""
        r, c = self._veth("r", 0), self._veth("c", 0)
        _ip("link", "add", r, "type", "veth", "peer", "name", c, "netns", self.composer)
        _ip("addr", "add", f"{PROXY_ADDR}/30", "dev", r)
        _ip("link", "set", r, "up")
        _ip("-n", self.composer, "addr", "add", f"{UPLINK_ADDR}/30", "dev", c)
        _ip("-n", self.composer, "link", "set", c, "up")
        self.run(self.composer, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]).check_returncode()
        _ip("route", "add", "10.213.0.0/16", "via", UPLINK_ADDR, "dev", r)

    @property
    def proxy_env(self) -> dict[str, str]:
        url = f"http://{PROXY_ADDR}:{PROXY_PORT}"
        bypass = f"{COMPOSER_ADDR},localhost,127.0.0.1"
        return {"http_proxy": url, "HTTP_PROXY": url, "no_proxy": bypass, "NO_PROXY": bypass}

    def start_proxy(self, log: Path) -> subprocess.Popen[bytes]:
        """The HTTP proxy (this file run as a script) in the root namespace, on PROXY_ADDR."""
        with open(log, "ab") as out:
            popen = subprocess.Popen([sys.executable, __file__, "proxy", PROXY_ADDR, str(PROXY_PORT)], stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.proxy = popen
        for _ in range(100):
            try:
                socket.create_connection((PROXY_ADDR, PROXY_PORT), timeout=1).close()
                return popen
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"proxy did not start: {log.read_text(errors='replace')[-2000:]}")

    def argv(self, ns: str, argv: Sequence[str]) -> list[str]:
        return ["nsenter", f"--net={NETNS_DIR / ns}", "--", *argv]

    def start(self, name: str, ns: str, argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None,
              cwd: Path | None = None) -> Proc:
        """``argv`` in namespace ``ns``, stdout+stderr appended to ``log``, its own session."""
        log.parent.mkdir(parents=True, exist_ok=True)
        out: IO[bytes]
        with open(log, "ab") as out:
            popen = subprocess.Popen(self.argv(ns, argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True)
        proc = Proc(name, ns, popen, log)
        self.procs.append(proc)
        return proc

    def run(self, ns: str, argv: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A short command in ``ns``, waited for."""
        return subprocess.run(self.argv(ns, argv), capture_output=True, text=True, timeout=timeout)

    def link_down(self, i: int) -> None:
        _ip("-n", self.worker(i), "link", "set", self._veth("w", i), "down")

    def link_up(self, i: int) -> None:
        _ip("-n", self.worker(i), "link", "set", self._veth("w", i), "up")
        # the route over the link went with it
        _ip("-n", self.worker(i), "route", "replace", f"{COMPOSER_ADDR}/32", "via", f"10.213.{i}.1")

    def pids_in(self, ns: str) -> list[int]:
        return _ns_pids(ns)

    def close(self) -> None:
        if self.proxy is not None and self.proxy.poll() is None:
            self.proxy.kill()
            self.proxy.wait()
        _ip("link", "delete", self._veth("r", 0), check=False)
        for proc in self.procs:
            if proc.alive():
                proc.kill_group()
        for ns in reversed(self.created):
            _delete_ns(ns)
        self.created.clear()


# -- what runs where (read from /proc, independently of the processes' own logs) ---------------------

def ns_inode(ns: str) -> int:
    return os.stat(NETNS_DIR / ns).st_ino


def pid_ns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def environ_has(pid: int, entry: bytes) -> bool:
    try:
        return entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def marked(state_dir: Path, job_id: str | None = None) -> list[int]:
    """Pids whose environment carries the runner's marker ``OSBUILDD_STATE_DIR=<state_dir>`` (and
    ``OSBUILDD_JOB_ID=<job_id>`` if given): the build processes a worker with that state dir started."""
    want = f"OSBUILDD_STATE_DIR={os.path.abspath(state_dir)}".encode()
    want_job = f"OSBUILDD_JOB_ID={job_id}".encode() if job_id else None
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        pid = int(d.name)
        if environ_has(pid, want) and (want_job is None or environ_has(pid, want_job)):
            out.append(pid)
    return out


def mounts_below(root: Path) -> list[str]:
    """Mount points at or below ``root`` (symlinks resolved) in this mount namespace."""
    r = str(root.resolve()).rstrip("/")
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        parts = line.split(" ")
        if len(parts) > 4:
            mp = parts[4].replace("\\040", " ")
            if mp == r or mp.startswith(r + "/"):
                found.append(mp)
    return found


def loops_below(root: Path) -> list[str]:
    """Loop devices whose backing file is below ``root``."""
    r = str(root.resolve()).rstrip("/") + "/"
    out = []
    for bf in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            if bf.read_text().strip().startswith(r):
                out.append(bf.parent.parent.name)
        except OSError:
            continue
    return out


# -- the HTTP proxy (run as ``python netns.py proxy ADDR PORT``) -----------------------------------

async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def _proxy_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One request: ``GET http://host[:port]/path`` forwarded in origin form with ``Connection: close``
    (``CONNECT host:port`` tunnels), the answer piped back."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        line, *headers = head.decode("latin-1").split("\r\n")
        method, target, version = line.split(" ")
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            up_r, up_w = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            url = urlsplit(target)
            up_r, up_w = await asyncio.open_connection(url.hostname, url.port or 80)
            path = url.path or "/"
            if url.query:
                path += "?" + url.query
            kept = [h for h in headers if h and not h.lower().startswith(("connection:", "proxy-", "keep-alive:"))]
            up_w.write(("\r\n".join([f"{method} {path} {version}", *kept, "Connection: close"]) + "\r\n\r\n")
                       .encode("latin-1"))
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        return
    await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))


def _serve_proxy(addr: str, port: int) -> None:
    async def main() -> None:
        server = await asyncio.start_server(_proxy_client, addr, port, limit=1 << 20)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "proxy":
    _serve_proxy(sys.argv[2], int(sys.argv[3]))
