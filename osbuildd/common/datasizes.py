"""The one size parser: config, blueprints, manifests, the engine and its stages.

Stdlib only: stages import it under a build tree's python.

Units are osbuild/images' ``pkg/datasizes`` (case-sensitive: ``kB`` ``MB`` ``GB`` ``TB`` = 10^n,
``KiB`` ``MiB`` ``GiB`` ``TiB`` = 2^n; spaces allowed between number and unit; a fraction is
allowed with a unit as long as the result is whole bytes; a bare number is bytes), plus the short
forms the issue asks for: ``Ki`` ``Mi`` ``Gi`` ``Ti`` = 2^n, ``k``/``K``/``KB`` ``M`` ``G`` ``T`` = 10^n.
Error texts are upstream's.

``org.osbuild.truncate`` is the one exception: upstream's stage hands its ``size`` to coreutils
``truncate --size``, where a single letter means a power of 1024 (``1G`` = 2^30); ``parse_truncate``
keeps that meaning so a manifest means the same thing under both engines.
"""

from __future__ import annotations

import re
from fractions import Fraction

UNITS: dict[str, int] = {
    "": 1,
    "kB": 10**3, "KB": 10**3, "k": 10**3, "K": 10**3, "KiB": 2**10, "Ki": 2**10,
    "MB": 10**6, "M": 10**6, "MiB": 2**20, "Mi": 2**20,
    "GB": 10**9, "G": 10**9, "GiB": 2**30, "Gi": 2**30,
    "TB": 10**12, "T": 10**12, "TiB": 2**40, "Ti": 2**40,
}
# coreutils truncate(1): K,M,G,T (and KiB..) are powers of 1024, KB,MB,GB,TB powers of 1000
TRUNCATE_UNITS: dict[str, int] = {
    "": 1,
    "K": 2**10, "KiB": 2**10, "KB": 10**3, "kB": 10**3,
    "M": 2**20, "MiB": 2**20, "MB": 10**6,
    "G": 2**30, "GiB": 2**30, "GB": 10**9,
    "T": 2**40, "TiB": 2**40, "TB": 10**12,
}
_NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*(\S*)")


def _parse(text: str, units: dict[str, int]) -> int:
    size = text.strip()
    m = _NUMBER.fullmatch(size)
    if not m:
        if not re.match(r"\d", size):
            raise ValueError(f"the size string is not a valid positive float number: {size}")
        raise ValueError(f"unknown data size units in string: {size}")
    number, unit = Fraction(m.group(1)), m.group(2)
    if unit not in units:
        raise ValueError(f"unknown data size units in string: {size}")
    value = number * units[unit]
    if value.denominator != 1:
        raise ValueError(f"cannot have fractional bytes: {size}")
    return int(value)


def parse(value: str | int) -> int:
    """Bytes of ``value``: an int (bytes) or a string such as ``"20 GiB"``, ``"20Gi"``, ``"500MB"``.

    Raises ValueError with upstream's message (negative numbers, floats, bools are refused).
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"failed to convert value \"{value}\" to number")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("cannot be negative")
        return value
    return _parse(value, UNITS)


def parse_limit(value: str | int) -> int | None:
    """A store limit: ``"unlimited"`` is None, anything else as ``parse``."""
    if isinstance(value, str) and value.strip() == "unlimited":
        return None
    return parse(value)


def parse_truncate(value: str | int) -> int:
    """``org.osbuild.truncate``'s ``size`` as coreutils reads it (``1G`` = 2^30)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return parse(value)
    return _parse(str(value), TRUNCATE_UNITS)
