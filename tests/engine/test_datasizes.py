"""The one size parser (osbuildd.common.datasizes) and every place that reads a size through it."""

from __future__ import annotations

import pytest

from osbuildd.blueprint import parse_size as blueprint_size
from osbuildd.common import datasizes
from osbuildd.config import parse_size as config_size
from osbuildd.engine.objectstore import parse_size as store_size
from osbuildd.engine.stages.org_osbuild_truncate import parse_size as truncate_size
from osbuildd.manifest.customizations import parse_size as minsize
from osbuildd.runner.run import cache_size_arg

GOOD = [
    ("0", 0), ("1048576", 1048576), (" 42 ", 42), (512, 512),
    ("1kB", 1000), ("1KiB", 1024), ("1 MB", 10**6), ("1 MiB", 2**20),
    ("20GB", 20 * 10**9), ("20GiB", 20 * 2**30), ("20 GiB", 20 * 2**30), ("2TB", 2 * 10**12), ("1TiB", 2**40),
    ("1.5 GiB", 3 * 2**29), ("0.5kB", 500),
    # short forms named by the issue
    ("20Gi", 20 * 2**30), ("4 Mi", 4 * 2**20), ("1Ki", 1024), ("1Ti", 2**40),
    ("20G", 20 * 10**9), ("3M", 3 * 10**6), ("1k", 1000), ("1K", 1000), ("1KB", 1000), ("1T", 10**12),
]
BAD = [
    ("lots", "not a valid positive float number"), ("", "not a valid positive float number"),
    ("-1", "not a valid positive float number"), ("20 gigs", "unknown data size units"),
    ("1gib", "unknown data size units"),       # units are case-sensitive, as upstream
    ("1 B", "unknown data size units"),        # upstream has no "B" suffix
    ("1.5", "cannot have fractional bytes"), ("1.0001kB", "cannot have fractional bytes"),
    (-1, "cannot be negative"), (True, "failed to convert"), (1.5, "failed to convert"),
]


@pytest.mark.parametrize("text, value", GOOD)
def test_parse_table(text, value):
    assert datasizes.parse(text) == value
    # config, blueprints, filesystem minsize and the engine's store all answer the same
    assert config_size(text) == value
    assert minsize(text, "customizations.filesystem[0].minsize") == value
    assert store_size(text) == value
    if isinstance(text, str):
        assert blueprint_size(text) == value


@pytest.mark.parametrize("text, message", BAD)
def test_parse_refuses(text, message):
    with pytest.raises(ValueError, match=message):
        datasizes.parse(text)
    with pytest.raises(ValueError, match=message):
        config_size(text)


def test_unlimited_only_for_store_limits():
    assert datasizes.parse_limit("unlimited") is None and store_size("unlimited") is None
    with pytest.raises(ValueError):
        datasizes.parse("unlimited")


def test_truncate_keeps_coreutils_meaning():
    # upstream's org.osbuild.truncate runs `truncate --size`: a single letter is a power of 1024
    assert truncate_size("1G") == 2**30 and truncate_size("10M") == 10 * 2**20
    assert truncate_size("1GB") == 10**9 and truncate_size("2GiB") == 2 * 2**30
    assert truncate_size("4294967296") == 4294967296


@pytest.mark.parametrize("value, arg", [
    ("20Gi", "21474836480"), ("20GiB", "21474836480"), ("20G", "20000000000"), ("1 MB", "1000000"),
    ("unlimited", "unlimited"), (1024, "1024"),
])
def test_runner_passes_bytes_upstream_accepts(value, arg):
    # upstream osbuild's --cache-max-size takes kB..TiB or bare bytes; "20Gi" must go as bytes
    assert cache_size_arg(value) == arg
