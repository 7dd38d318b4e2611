"""The ``osbuildd`` command: ``serve`` and ``gen-certs`` here; ``build`` and ``manifest`` dispatched to their modules."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from osbuildd import __version__

if TYPE_CHECKING:
    from osbuildd.config import Config

# sub-command -> module with ``main(argv) -> int`` (written by other parts, imported lazily)
DISPATCH = {
    "build": "osbuildd.cli_build",
    "manifest": "osbuildd.cli_manifest",
    "worker": "osbuildd.cli_worker",
}


def _err(message: str) -> None:
    print(f"osbuildd: {message}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="osbuildd", description="OSBuild + Image Builder as one daemon, with a bundled build engine.")
    parser.add_argument("--version", action="version", version=f"osbuildd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the daemon (Weldr, Cloud, image-builder and worker APIs)")
    serve.add_argument("--config", metavar="FILE",
                       help="TOML configuration (default: $OSBUILDD_CONFIG, else /etc/osbuildd/osbuildd.toml)")
    serve.add_argument("--state-dir", metavar="DIR",
                       help="state folder; without --config: the embedded default "
                            "(Weldr socket DIR/api.socket, no TCP listeners)")
    serve.add_argument("--composer-config", metavar="FILE",
                       help="osbuild-composer's osbuild-composer.toml: [koji] -> [cloud], [worker] -> "
                            "[worker_api], [distro_aliases] (default: /etc/osbuild-composer/"
                            "osbuild-composer.toml when it exists; \"\" = none); --config's keys win")
    certs = sub.add_parser("gen-certs", help="make a CA and composer (server), worker and client certificates")
    certs.add_argument("directory", metavar="DIR")
    certs.add_argument("--san", action="append", default=[], metavar="NAME",
                       help="another DNS name or IP address for the server certificate (repeatable; "
                            "always: localhost, composer, 127.0.0.1, ::1)")
    certs.add_argument("--force", action="store_true", help="replace existing files")
    for name in DISPATCH:
        sub.add_parser(name, help=f"see `osbuildd {name} --help`", add_help=False)
    return parser


def _dispatch(command: str, argv: list[str]) -> int:
    try:
        module = importlib.import_module(DISPATCH[command])
    except ModuleNotFoundError as exc:
        if exc.name != DISPATCH[command]:
            raise  # the module exists but one of its imports is missing: a real bug, show it
        _err(f"'{command}' is not available")
        return 2
    return int(module.main(argv) or 0)


def _serve(args: argparse.Namespace) -> int:
    import sqlite3

    from osbuildd import composerconfig, daemon, log, statedir
    from osbuildd.config import Config, ConfigError, apply_image_builder_env
    from osbuildd.queue import DatabaseUnavailable, MigrationError

    try:
        composer = composerconfig.load(args.composer_config)
        base = composer.table if composer else None
        source = composer.path if composer else ""
        if args.config is None and args.state_dir is not None:
            config = Config.embedded(args.state_dir, base=base, base_source=source)
        else:
            config = Config.load(args.config, base=base, base_source=source)
            if args.state_dir is not None:
                config.state_dir = statedir.absolute(args.state_dir)
        # image-builder's environment (LISTEN_ADDRESS, OSBUILD_URL, QUOTA_FILE, ...) over [image_builder]
        config.image_builder, ib_env = apply_image_builder_env(config.image_builder)
    except ConfigError as exc:
        _err(str(exc))
        return 2
    statedir.private_umask()   # the database, logs and results are the owner's only
    log.setup(config.log_level, config.log_format)
    if ib_env:   # names only: values may be secrets (PGPASSWORD, COMPOSER_OFFLINE_TOKEN)
        log.get_logger("osbuildd.config").info("image-builder environment applied", variables=ib_env)
    where = _database_where(config)
    if where[0] != "sqlite":   # the embedded default stays quiet
        log.get_logger("osbuildd.config").info("database", backend=where[0], location=where[1])
    if composer is not None:
        logger = log.get_logger("osbuildd.config")
        logger.info("osbuild-composer config read", file=str(composer.path))
        if composer.ignored:   # names only: values may be secrets (pg_password)
            logger.warning("osbuild-composer config keys not used by osbuildd, ignored",
                           file=str(composer.path), keys=composer.ignored)
    try:
        return daemon.run(config)
    except statedir.StateDirBusy as exc:   # another daemon (or build) owns the state: touch nothing
        _err(str(exc))
        return 2
    except daemon.DaemonError as exc:
        _err(str(exc))
        return 1
    except OSError as exc:  # state dir not writable, disk full, ...
        _err(f"{exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}")
        return 1
    except (sqlite3.Error, MigrationError, DatabaseUnavailable) as exc:  # corrupt file, server away
        _err(f"{_database_where(config)[1]}: {exc}")
        return 1
    except Exception as exc:
        import asyncpg  # a PostgreSQL refusal at start (bad password, no such database)
        if isinstance(exc, asyncpg.PostgresError):
            _err(f"{_database_where(config)[1]}: PostgreSQL: {exc}")
            return 1
        raise
    except KeyboardInterrupt:
        return 0


def _database_where(config: Config) -> tuple[str, str]:
    """(backend, where) for messages: the SQLite file, or the server's URL without its password."""
    from urllib.parse import urlsplit

    from osbuildd.queue.db import database_url
    url = database_url(config)
    if not url:
        return "sqlite", str(config.db_path)
    parts = urlsplit(url)
    host = parts.hostname or ""
    where = f"postgresql://{parts.username + '@' if parts.username else ''}{host}"
    return "postgresql", f"{where}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def _gen_certs(args: argparse.Namespace) -> int:
    from osbuildd import certs

    try:
        written = certs.generate(args.directory, args.san, force=args.force)
    except (certs.CertsExist, ValueError) as exc:
        _err(f"gen-certs: {exc}")
        return 2
    except OSError as exc:
        _err(f"gen-certs: {exc.filename or args.directory}: {exc.strerror or exc}")
        return 1
    for path in written:
        print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DISPATCH:
        return _dispatch(argv[0], argv[1:])
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed usage + error already
        return int(exc.code or 0)
    if args.command == "serve":
        return _serve(args)
    if args.command == "gen-certs":
        return _gen_certs(args)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
