"""Where the tests' copied facts live (tests/data, see its README.md), and upstream osbuild's schemas.

Every file a test reads is in the repository. A missing data file is an error, never a skip.

Upstream's schemas the tests validate manifests against are not all copied: where the engine ships a
byte-identical copy (``osbuildd/engine/schemas``, ``osbuildd/engine/stages/*.meta.json``) that copy is
used. ``tests/data/osbuild-schemas/SHA256SUMS`` holds upstream's checksum of every schema the tests
use, so an engine copy that drifts from upstream fails loudly instead of quietly changing the reference.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
OSBUILD = DATA / "osbuild"                  # osbuild's samples: monitor stream, --json result, tiny manifest
WELDR = DATA / "weldr"                      # Weldr vectors and recorded osbuild-composer answers
IMAGES = DATA / "images"                    # osbuild/images reference manifests and blueprints
UPSTREAM_SCHEMAS = DATA / "osbuild-schemas"
ENGINE = REPO / "osbuildd" / "engine"


class MissingData(AssertionError):
    """A data file the tests need is not in tests/data."""


def data_file(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.is_file():
        raise MissingData(f"test data missing: {path} (see tests/data/README.md)")
    return path


@functools.cache
def _upstream_sums() -> dict[str, str]:
    sums = {}
    for line in data_file("osbuild-schemas", "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split(maxsplit=1)
        sums[rel] = digest
    return sums


def _engine_copy(rel: str) -> Path:
    kind, _, name = rel.partition("/")
    return ENGINE / "stages" / name if kind == "stages" else ENGINE / "schemas" / rel


@functools.cache
def upstream_schema(rel: str) -> Path:
    """Upstream osbuild's ``schemas/``-relative file ``rel`` (``osbuild2.json``, ``stages/<name>.meta.json``).

    A module upstream has but the tests never needed maps to a path that does not exist, so the
    validator reports it as unknown (copy it into tests/data/osbuild-schemas and add its checksum).
    """
    want = _upstream_sums().get(rel)
    if want is None:
        return UPSTREAM_SCHEMAS / rel
    for candidate in (UPSTREAM_SCHEMAS / rel, _engine_copy(rel)):
        if candidate.is_file() and hashlib.sha256(candidate.read_bytes()).hexdigest() == want:
            return candidate
    raise MissingData(f"no copy of upstream's {rel} with its checksum: the engine's copy changed; copy "
                      f"upstream osbuild's file into {UPSTREAM_SCHEMAS} (see tests/data/README.md)")
