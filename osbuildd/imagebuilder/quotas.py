"""image-builder's build quotas: ``QUOTA_FILE`` (upstream ``internal/common/quota.go``).

The file is JSON: organisation id (or ``"default"``) -> ``{"quota": <builds>, "slidingWindow": <ns>}``,
the window in nanoseconds (a Go ``time.Duration``), e.g.
``{"000001": {"quota": 2, "slidingWindow": 1209600000000000}, "default": {"quota": 100, ...}}``.
An organisation may start a build while the composes it started in the last window (deleted ones
too) are fewer than its quota; else ``POST /compose`` answers 403 "Quota of N builds per D days
exceeded for user" and nothing is queued.

- No ``QUOTA_FILE`` (empty): no quota.
- The organisation's entry, else ``"default"``'s, else upstream's defaults (100 builds per 14 days).
  (Upstream's ``CheckQuota`` answers 500 "no default values in the quotas file ..." in that last case
  and does not use its ``DefaultQuota``/``DefaultSlidingWindow`` constants; osbuildd applies them.)
- A set ``QUOTA_FILE`` that cannot be read or parsed fails the compose (500, upstream's messages).

Upstream reads the file on every compose; :class:`QuotaFile` re-reads it when its size or mtime
changes, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osbuildd.errors import ErrorKind
from osbuildd.imagebuilder import ImageBuilderError

__all__ = [
    "DEFAULT_QUOTA", "DEFAULT_SLIDING_WINDOW", "Quota", "QuotaExceeded", "QuotaFile", "QuotaFileError",
    "QuotaResult", "Quotas",
]

NS_PER_SECOND = 1_000_000_000
DAY = 24 * 3600
DEFAULT_QUOTA = 100                       # upstream DefaultQuota
DEFAULT_SLIDING_WINDOW = 14 * DAY         # seconds; upstream DefaultSlidingWindow (2 weeks)


class QuotaExceeded(ImageBuilderError):
    kind = ErrorKind.INVALID
    status = 403
    error_id = "QuotaExceeded"

    def __init__(self, result: QuotaResult) -> None:
        super().__init__(result.message)
        self.result = result


class QuotaFileError(ImageBuilderError):
    """``QUOTA_FILE`` missing or malformed: the compose fails with 500 (upstream's messages)."""

    error_id = "QuotaFileError"


@dataclass(frozen=True)
class Quota:
    quota: int                 # builds allowed in the window
    sliding_window_ns: int     # the window, in nanoseconds as in the file

    @property
    def window_seconds(self) -> float:
        return self.sliding_window_ns / NS_PER_SECOND

    @property
    def window_days(self) -> int:
        """Whole days, as upstream's message counts them (``int(hours / 24)``)."""
        return int(self.sliding_window_ns / NS_PER_SECOND / 3600 / 24)


DEFAULT = Quota(DEFAULT_QUOTA, DEFAULT_SLIDING_WINDOW * NS_PER_SECOND)


@dataclass(frozen=True)
class QuotaResult:
    ok: bool
    limit: int
    used: int
    window_days: int

    @property
    def message(self) -> str:
        """What upstream answers (403) when not ``ok``."""
        return f"Quota of {self.limit} builds per {self.window_days} days exceeded for user"


class Quotas:
    """A parsed quota file."""

    def __init__(self, entries: dict[str, Quota]) -> None:
        self.entries = dict(entries)

    @classmethod
    def parse(cls, text: str, source: str = "<quota file>") -> Quotas:
        def bad(reason: str) -> QuotaFileError:
            return QuotaFileError(f"failed to unmarshal quota file {json.dumps(source)}: {reason}")

        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise bad(str(exc)) from None
        if not isinstance(data, dict):
            raise bad("must be an object of organisation ids")
        entries = {}
        for org, raw in data.items():
            if not isinstance(raw, dict):
                raise bad(f"{org!r}: must be an object")
            values = [raw.get(k, 0) for k in ("quota", "slidingWindow")]
            if not all(_is_int(v) for v in values):
                raise bad(f"{org!r}: quota and slidingWindow must be integers")
            entries[org] = Quota(int(values[0]), int(values[1]))
        return cls(entries)

    @classmethod
    def load(cls, path: str | Path) -> Quotas:
        """Read ``path`` (blocking)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise QuotaFileError(f"no config file for quotas found at {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise QuotaFileError(f"failed to read quota file {json.dumps(str(path))}: {exc}") from None
        return cls.parse(text, str(path))

    def quota_for(self, org_id: str) -> Quota:
        """The organisation's entry, else ``"default"``, else upstream's 100 per 14 days."""
        for key in (org_id, "default"):
            if key in self.entries:
                return self.entries[key]
        return DEFAULT

    def check(self, org_id: str, count_in_window: int) -> QuotaResult:
        """``count_in_window``: the composes ``org_id`` started in ``quota_for(org_id)``'s window."""
        q = self.quota_for(org_id)
        return QuotaResult(ok=count_in_window < q.quota, limit=q.quota, used=count_in_window,
                           window_days=q.window_days)

    def enforce(self, org_id: str, count_in_window: int) -> QuotaResult:
        """:meth:`check`, raising :class:`QuotaExceeded` (403) when over."""
        result = self.check(org_id, count_in_window)
        if not result.ok:
            raise QuotaExceeded(result)
        return result


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class QuotaFile:
    """The ``QUOTA_FILE`` setting; ``""``: no quota. :meth:`get` returns the current :class:`Quotas`."""

    def __init__(self, path: str | Path = "") -> None:
        self.path = str(path)
        self._stamp: tuple[int, int] | None = None
        self._quotas: Quotas | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.path)

    def get_blocking(self) -> Quotas | None:
        if not self.path:
            return None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise QuotaFileError(f"no config file for quotas found at {self.path}") from None
        except OSError as exc:
            raise QuotaFileError(f"failed to read quota file {json.dumps(self.path)}: {exc}") from None
        stamp = (st.st_mtime_ns, st.st_size)
        if self._quotas is None or stamp != self._stamp:
            self._quotas, self._stamp = Quotas.load(self.path), stamp
        return self._quotas

    async def get(self) -> Quotas | None:
        """The file's quotas (read again when it changed), None when there is no quota file."""
        if not self.path:
            return None
        return await asyncio.to_thread(self.get_blocking)
