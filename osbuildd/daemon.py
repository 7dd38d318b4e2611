"""``osbuildd serve``: the daemon. Opens the state, attaches the compose service, serves the APIs.

Listeners come from systemd socket activation (``LISTEN_FDS``/``LISTEN_FDNAMES``) when present, else
from the configuration. ``READY=1`` goes to ``NOTIFY_SOCKET`` once every listener serves. SIGTERM or
SIGINT stops accepting, stops the compose service (running builds end FAILED "daemon shutting down"),
closes the database and returns 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import os
import signal
import socket
import ssl
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from osbuildd import statedir
from osbuildd.config import Config, Listen, SecureListenerConfig
from osbuildd.log import get_logger
from osbuildd.services import Services

log = get_logger("osbuildd.daemon")

# API name (also the socket unit's FileDescriptorName) -> config section holding its `listen`
APIS = ("weldr", "cloud", "image-builder", "worker", "web")
SECTIONS = {"cloud": "cloud", "image-builder": "image_builder", "worker": "worker_api", "web": "web"}
SD_LISTEN_FDS_START = 3
SHUTDOWN_TIMEOUT = 5.0  # seconds open requests get to finish after SIGTERM
WELDR_GROUP = "weldr"


class DaemonError(RuntimeError):
    """A start-up failure worth one line (socket in use, path too long, ...)."""


# -- systemd protocol ---------------------------------------------------------------------------

def listen_fds(env: Mapping[str, str] | None = None, *, unset: bool = True) -> dict[str, list[socket.socket]]:
    """Sockets passed by systemd socket activation, by API name (sd_listen_fds_with_names(3)).

    A single unnamed socket is taken as the Weldr socket. Unknown names are a start-up error.
    """
    env = os.environ if env is None else env
    try:
        pid = int(env.get("LISTEN_PID", ""))
        count = int(env.get("LISTEN_FDS", ""))
    except ValueError:
        return {}
    if pid != os.getpid() or count <= 0:
        return {}
    names = env.get("LISTEN_FDNAMES", "").split(":") if env.get("LISTEN_FDNAMES") else []
    if unset:  # children (osbuild, stages) must not think the sockets are theirs
        for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(var, None)
    if not names and count == 1:
        names = ["weldr"]
    out: dict[str, list[socket.socket]] = {}
    for i in range(count):
        fd = SD_LISTEN_FDS_START + i
        name = names[i] if i < len(names) else "unknown"
        if name not in APIS:
            raise DaemonError(f"socket activation: fd {fd} has name {name!r}; expected one of {', '.join(APIS)}"
                              " (FileDescriptorName= in the .socket unit)")
        os.set_inheritable(fd, False)
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        out.setdefault(name, []).append(sock)
    return out


def sd_notify(message: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` (e.g. "READY=1") to $NOTIFY_SOCKET; False when not run under a notify manager."""
    env = os.environ if env is None else env
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        try:
            s.connect(address)
            s.sendall(message.encode())
        except OSError as exc:
            log.warning("sd_notify failed", notify_socket=env.get("NOTIFY_SOCKET"), error=str(exc))
            return False
    return True


# -- listeners ----------------------------------------------------------------------------------

def _unix_listener(path: Path, *, mode: int, group: str | None) -> socket.socket:
    """Bind a unix stream socket at ``path`` (parent created, a stale socket file replaced)."""
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o755)   # the socket's group must reach it; `serve` runs with umask 077
    if len(os.fsencode(path)) > 107:
        raise DaemonError(f"{path}: unix socket path longer than 107 bytes")
    with contextlib.suppress(FileNotFoundError):
        st = path.lstat()
        if not stat.S_ISSOCK(st.st_mode):
            raise DaemonError(f"{path}: exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # nobody answers: left over by a dead process
        else:
            raise DaemonError(f"{path}: another process is listening on it")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, mode)
        if group:
            with contextlib.suppress(KeyError):  # the group is optional
                os.chown(path, -1, grp.getgrnam(group).gr_gid)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise DaemonError(f"{path}: cannot listen: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def _tcp_listener(addr: Listen) -> socket.socket:
    assert addr.host is not None and addr.port is not None
    try:
        infos = socket.getaddrinfo(addr.host, addr.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise DaemonError(f"{addr}: cannot resolve: {exc.strerror}") from None
    family, type_, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        what = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise DaemonError(f"{addr}: cannot listen: {what}") from None
    sock.setblocking(False)
    return sock


@dataclass
class Listener:
    api: str
    sock: socket.socket
    created_path: Path | None  # a unix socket file this process made (removed at exit)

    def describe(self) -> str:
        name = self.sock.getsockname()
        if isinstance(name, tuple):
            return f"{name[0]}:{name[1]}"
        return f"unix:{name}" if name else "unix:(unnamed)"


def open_listeners(config: Config, inherited: dict[str, list[socket.socket]]) -> list[Listener]:
    """Inherited sockets win over configured addresses for the same API."""
    out: list[Listener] = []
    try:
        for api in APIS:
            if api in inherited:
                out += [Listener(api, s, None) for s in inherited[api]]
                continue
            if api == "weldr":
                path = config.weldr.socket
                out.append(Listener(api, _unix_listener(path, mode=0o660, group=WELDR_GROUP), path))
                continue
            addr = getattr(config, SECTIONS[api]).address
            if addr is None:
                continue
            if addr.path is not None:
                out.append(Listener(api, _unix_listener(addr.path, mode=0o660, group=None), addr.path))
            else:
                out.append(Listener(api, _tcp_listener(addr), None))
    except BaseException:
        close_listeners(out)
        raise
    return out


def check_web_listeners(config: Config, listeners: list[Listener]) -> None:
    """Local mode gives the built-in organisation to anyone who connects: an inherited socket must be
    loopback too (the configured address is checked with the config)."""
    from osbuildd.config import is_loopback

    if config.web.mode != "local" or config.web.trust_proxy:
        return
    for x in listeners:
        name = x.sock.getsockname()
        if x.api == "web" and isinstance(name, tuple) and not is_loopback(str(name[0])):
            raise DaemonError(f"web.listen: the socket {x.describe()} is not a loopback address: local mode "
                              "gives anyone who connects the built-in organisation (set trust_proxy or mode)")


def close_listeners(listeners: list[Listener]) -> None:
    for listener in listeners:
        listener.sock.close()
        if listener.created_path is not None:
            with contextlib.suppress(OSError):
                listener.created_path.unlink()


def tls_contexts(config: Config, listeners: list[Listener]) -> dict[int, ssl.SSLContext]:
    """Server TLS contexts by listener socket fd: every TCP listener (configured or inherited from
    systemd) of an API whose section has ``enable_tls``; unix sockets are local and stay plain.
    Also loads each section's JWT ACL and CA files so a bad file fails the start in one line.
    Blocking (reads files): run it in a thread."""
    from osbuildd.api.jwtauth import ACL
    from osbuildd.api.tls import TLSSetupError, server_context

    out: dict[int, ssl.SSLContext] = {}
    built: dict[str, ssl.SSLContext] = {}
    for x in listeners:
        name = SECTIONS.get(x.api, "")
        section = getattr(config, name, None)
        if not isinstance(section, SecureListenerConfig) or x.sock.family == socket.AF_UNIX:
            continue
        if section.enable_jwt:
            try:
                ACL.load(section.jwt_acl_file)
                if section.jwt_ca_file:
                    ssl.create_default_context(cafile=section.jwt_ca_file)
            except (ValueError, OSError, ssl.SSLError) as exc:
                raise DaemonError(f"[{name}] jwt_acl_file / jwt_ca_file: {exc}") from None
        if not section.enable_tls:
            continue
        if name not in built:
            try:
                built[name] = server_context(section, name)
            except TLSSetupError as exc:
                raise DaemonError(str(exc)) from None
        out[x.sock.fileno()] = built[name]
    return out


def create_apps(services: Services, wanted: frozenset[str] = frozenset(APIS)) -> dict[str, web.Application]:
    """The applications of the ``wanted`` APIs. The web UI's is an image-builder application of its
    own (its middleware injects the local identity; the API listener's must not), over the same
    services and database, so both listeners see the same blueprints and composes."""
    # Imported here: each API package is owned by another part and may grow heavy imports.
    from osbuildd import web as web_ui
    from osbuildd.api import cloud, imagebuilder, weldr, worker

    config = services.config
    makers: dict[str, Callable[[], web.Application]] = {
        "weldr": lambda: weldr.create_app(services),
        "cloud": lambda: cloud.create_app(services),
        "image-builder": lambda: imagebuilder.create_app(services),
        "worker": lambda: worker.create_app(services),
        "web": lambda: imagebuilder.create_app(services),
    }
    apps = {api: make() for api, make in makers.items() if api in wanted}
    if "image-builder" in apps and config.image_builder.web:
        web_ui.install(apps["image-builder"], config.web, local=False)
    if "web" in apps:
        addr = config.web.address
        web_ui.install(apps["web"], config.web, local=config.web.mode == "local",
                       listen_host=addr.host if addr is not None else None)
    return apps


# -- the daemon ---------------------------------------------------------------------------------

def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed (a fifth to a half less daemon CPU per Weldr request than
    asyncio's in bench/routes.py), else None: asyncio's own. ``OSBUILDD_EVENT_LOOP=asyncio`` forces
    asyncio's."""
    if os.environ.get("OSBUILDD_EVENT_LOOP", "") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(config: Config) -> int:
    """``serve(config)`` on the event loop event_loop_factory() picks."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(serve(config))


async def serve(config: Config, *, on_ready: Callable[[list[Listener]], object] | None = None,
                stop: asyncio.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set). Returns the exit code.

    Raises ``statedir.StateDirBusy`` when another process holds the state dir: checked before the
    listeners and before crash recovery, which would otherwise fail that process's running builds.
    """
    lock = await asyncio.to_thread(statedir.acquire, config.state_dir)
    try:
        return await _serve_locked(config, on_ready=on_ready, stop=stop)
    finally:
        lock.release()


async def _serve_locked(config: Config, *, on_ready: Callable[[list[Listener]], object] | None,
                        stop: asyncio.Event | None) -> int:
    from osbuildd.executor import start_local

    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    # Sockets first: a listener that cannot be had fails the start before any state is touched.
    listeners = await asyncio.to_thread(open_listeners, config, listen_fds())
    runners: list[web.AppRunner] = []
    try:
        check_web_listeners(config, listeners)
        contexts = await asyncio.to_thread(tls_contexts, config, listeners)
        for name in sorted({SECTIONS[x.api] for x in listeners if x.sock.fileno() in contexts}):
            if getattr(config, name).mtls and not getattr(config, name).allowed_domains:
                log.warning("mTLS with an empty allowed_domains refuses every client certificate (as upstream)",
                            section=name)
        services = await Services.open(config)
    except BaseException:
        await asyncio.to_thread(close_listeners, listeners)
        raise
    try:
        # crash leftovers removed always; builds taken only with [builder] local_executor
        await start_local(services)
        await services.leader.start()
        leader = services.leader
        services.jobs.start_heartbeat_watcher(config.worker_api.job_watch_interval,
                                              leading=lambda: leader.leading)
        apps = create_apps(services, frozenset(x.api for x in listeners))
        for api in APIS:
            mine = [x for x in listeners if x.api == api]
            if not mine:
                continue
            runner = web.AppRunner(apps[api], shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=None)
            await runner.setup()
            runners.append(runner)
            for x in mine:   # the runner has the shutdown timeout
                await web.SockSite(runner, x.sock, ssl_context=contexts.get(x.sock.fileno())).start()
        log.info("ready", listeners={x.api: x.describe() + (" (TLS)" if x.sock.fileno() in contexts else "")
                                     for x in listeners},
                 state_dir=str(config.state_dir), pid=os.getpid())
        sd_notify(f"READY=1\nSTATUS=serving {', '.join(sorted({x.api for x in listeners}))}\nMAINPID={os.getpid()}")
        if on_ready is not None:
            on_ready(listeners)
        await stop.wait()
        log.info("shutting down")
        sd_notify("STOPPING=1")
    finally:
        for runner in runners:  # stop accepting; open requests get SHUTDOWN_TIMEOUT to finish
            await runner.cleanup()
        await asyncio.to_thread(close_listeners, listeners)
        await services.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("stopped")
    return 0
