"""The repository stands on its own: no tracked file points a reader (test, script, bench, doc) at the
reference material beside the checkout, and the data the tests read is in tests/data."""

from __future__ import annotations

import re
import subprocess

from testdata import DATA, REPO, data_file, upstream_schema

# "../shared", "/work/shared", or a path built as <something>.parent / "shared" / parents[N] / "shared/..."
OUTSIDE = re.compile(r"\.\./shared|/work/shared|(?:parent|\])\s*/\s*[\"']shared")
TEXT = (".py", ".sh", ".md", ".toml", ".json", ".cfg", ".ini", ".yml", ".yaml", ".txt", "Makefile", "run")


def _tracked() -> list[str]:
    out = subprocess.run(["git", "-C", str(REPO), "ls-files"], check=True, capture_output=True, text=True).stdout
    me = "tests/foundation/test_self_contained.py"   # its patterns would match themselves
    return [p for p in out.splitlines() if p.endswith(TEXT) and not p.startswith("tests/data/") and p != me]


def test_no_tracked_file_points_outside_the_repository() -> None:
    for bad in ('SHARED = REPO.parent / "shared"', 'parents[3] / "shared/notes/x.json"', "see ../shared/DESIGN.md"):
        assert OUTSIDE.search(bad), bad
    assert not OUTSIDE.search('shared_state_dir / "store"')
    files = _tracked()
    assert "tests/conftest.py" in files and "docs/CONTRACTS.md" in files
    offenders = []
    for rel in files:
        path = REPO / rel
        if not path.is_file():        # deleted in the work tree, not yet committed
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []


def test_data_files_are_found_and_missing_ones_fail() -> None:
    assert data_file("osbuild", "tiny-tar.manifest.json").is_relative_to(DATA)
    assert len(list((DATA / "weldr" / "recorded").glob("0*.json"))) == 72
    try:
        data_file("osbuild", "no-such-file.json")
    except AssertionError as exc:
        assert "tests/data/README.md" in str(exc)
    else:
        raise AssertionError("a missing data file must fail the test")


def test_upstream_schemas_resolve_inside_the_repository() -> None:
    sums = (DATA / "osbuild-schemas" / "SHA256SUMS").read_text().split("\n")
    rels = [line.split(maxsplit=1)[1] for line in sums if line.strip()]
    assert "osbuild2.json" in rels and "stages/org.osbuild.rpm.meta.json" in rels
    for rel in rels:
        assert upstream_schema(rel).is_relative_to(REPO), rel
    assert not upstream_schema("stages/org.osbuild.does-not-exist.meta.json").exists()
