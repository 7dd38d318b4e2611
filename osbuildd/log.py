"""structlog setup: JSON lines for services and files, readable console output on a terminal.

Secrets never reach the output: a processor masks values of keys that look like credentials, at any
depth of the event (dicts and lists inside it too).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

# the one redactor (osbuildd.common.redact); its names stay importable from here
from osbuildd.common.redact import REDACTED, is_secret_key, redact

SDK_LOGGERS = ("botocore", "aiobotocore", "boto3", "s3transfer", "urllib3", "azure", "google", "gcloud",
               "aiosqlite")

__all__ = ["REDACTED", "SDK_LOGGERS", "get_logger", "is_secret_key", "redact_secrets", "setup"]


def redact_secrets(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: mask secret-looking keys (``password``, ``aws_secret_key``, ``token``...)."""
    out: dict[str, Any] = redact(event_dict)
    return out


def setup(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure structlog (and the stdlib root logger, for aiohttp's messages) once per process."""
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # stdlib loggers (aiohttp.access, asyncio) go through the same rendering
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # one line per HTTP request is noise at info level
    logging.getLogger("aiohttp.access").setLevel(max(numeric, logging.WARNING))
    # at debug these print request headers (AWS key ids, session tokens), signed URLs (SAS) and SQL
    # parameters: never below info, whatever the level asked for
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.INFO))


def get_logger(name: str = "osbuildd", **bound: Any) -> structlog.typing.FilteringBoundLogger:
    """A structlog logger with ``bound`` context (``job_id=...``, ``compose_id=...``).

    Lazy: safe at module level, it renders with whatever :func:`setup` configured later (a proxy
    with the filtering bound logger's methods, which is what setup() configures)."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(**{"logger_name": name, **bound})
    return logger
