"""``osbuildd worker``: a remote worker, as upstream's osbuild-worker (see osbuildd.worker)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from osbuildd.worker.config import (
    DEFAULT_CONFIG,
    DEFAULT_STATE_DIR,
    WorkerConfigError,
    WorkerSettings,
    apply_file,
    composer_urls,
    read_file,
    validate,
)


def _err(message: str) -> None:
    print(f"osbuildd worker: {message}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:   # type: ignore[override]
        raise WorkerConfigError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="osbuildd worker", description="Take build, depsolve and search jobs from a composer's "
                "worker API (osbuild-composer's or osbuildd's), as upstream's osbuild-worker.")
    p.add_argument("address", nargs="*", metavar="ADDRESS",
                   help="the composer's worker API, host:port (https); several (or a comma-separated list): "
                   "daemons sharing one database, used one at a time, the next when one stops answering")
    p.add_argument("--composer", "--server", metavar="URL", action="append", dest="composer",
                   help="the composer as a URL, http(s)://host[:port]; repeatable, or a comma-separated list")
    p.add_argument("--config", metavar="FILE", help=f"osbuild-worker.toml (default: {DEFAULT_CONFIG} if it exists)")
    p.add_argument("--cert", metavar="FILE", help="client certificate (default: /etc/osbuild-composer/worker-crt.pem)")
    p.add_argument("--key", metavar="FILE", help="its key (default: /etc/osbuild-composer/worker-key.pem)")
    p.add_argument("--ca", metavar="FILE", help="CA of the composer's certificate (default: "
                   "/etc/osbuild-composer/ca-crt.pem)")
    p.add_argument("--token-url", metavar="URL", help="OAuth2 token endpoint (instead of a client certificate)")
    p.add_argument("--client-id", metavar="ID")
    secret = p.add_mutually_exclusive_group()
    secret.add_argument("--client-secret-file", metavar="FILE", help="client_credentials grant")
    secret.add_argument("--offline-token-file", metavar="FILE", help="refresh_token grant with an offline token")
    p.add_argument("--state-dir", metavar="DIR", help=f"the worker's own state (default: {DEFAULT_STATE_DIR})")
    p.add_argument("--store", metavar="DIR", help="osbuild store (default: STATE_DIR/store)")
    p.add_argument("--arch", metavar="ARCH", help="architecture of the builds taken (default: this host's)")
    p.add_argument("--base-path", metavar="PATH", help="the worker API's path (default: /api/worker/v1)")
    p.add_argument("--poll-interval", metavar="SECONDS", type=float,
                   help="how often a running job's status is checked (heartbeat, cancel; default 5)")
    p.add_argument("--osbuild", metavar="PATH", help="osbuild to run (default: \"auto\", as [builder] osbuild)")
    return p


def settings_from(argv: Sequence[str]) -> tuple[WorkerSettings, list[str]]:
    """The settings of the command line over osbuild-worker.toml; (settings, unknown file keys)."""
    args = _parser().parse_args(list(argv))
    settings = WorkerSettings()
    config = Path(args.config) if args.config else DEFAULT_CONFIG
    data = read_file(config, explicit=args.config is not None)
    unknown = apply_file(settings, data, str(config)) if data else []
    settings.config_file = config if data or args.config else None
    if args.address and args.composer:
        raise WorkerConfigError("give ADDRESS or --composer, not both")
    if args.address or args.composer:
        settings.composers = composer_urls(args.address or args.composer)
        if not settings.composers:
            raise WorkerConfigError("no composer: the addresses given are empty")
        settings.composer = settings.composers[0]
    for opt, attr in (("cert", "cert"), ("key", "key"), ("ca", "ca"), ("token_url", "token_url"),
                      ("client_id", "client_id"), ("client_secret_file", "client_secret_file"),
                      ("offline_token_file", "offline_token_file"), ("base_path", "base_path"),
                      ("arch", "arch"), ("osbuild", "osbuild")):
        value = getattr(args, opt)
        if value is not None:
            setattr(settings, attr, value)
    if args.client_secret_file:
        settings.offline_token_file = ""
    if args.offline_token_file:
        settings.client_secret_file = ""
    if args.poll_interval is not None:
        settings.poll_interval = args.poll_interval
    if args.state_dir:
        settings.state_dir = Path(args.state_dir).absolute()
    if args.store:
        settings.store = Path(args.store).absolute()
    if settings.osbuild != "auto" and not settings.osbuild.startswith("/"):
        raise WorkerConfigError(f"--osbuild: must be \"auto\" or an absolute path, got {settings.osbuild!r}")
    validate(settings)
    return settings, unknown


def main(argv: Sequence[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        _parser().print_help()
        return 0
    try:
        settings, unknown = settings_from(argv)
        from osbuildd.worker.client import ssl_context
        try:
            tls = ssl_context(settings)
        except (OSError, ValueError) as exc:
            raise WorkerConfigError(f"TLS: {getattr(exc, 'strerror', None) or exc}") from None
    except WorkerConfigError as exc:
        _err(str(exc))
        return 2
    from osbuildd import log, statedir
    from osbuildd.worker.main import Fatal, run
    statedir.private_umask()
    log.setup("info", "auto")
    if unknown:
        log.get_logger("osbuildd.worker").info("osbuild-worker.toml keys not used, ignored", keys=unknown)
    try:
        return run(settings, tls)
    except statedir.StateDirBusy as exc:
        _err(str(exc))
        return 2
    except Fatal as exc:
        _err(str(exc))
        return 1
    except OSError as exc:
        _err(f"{exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}")
        return 1
    except KeyboardInterrupt:
        return 0
