"""Builds a small real RPM repository at test time (rpmbuild + createrepo_c) for the dnf solver."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import need_tool

# name, version, release, extra spec lines
PACKAGES = [
    ("osbd-base", "1.0", "1", ["Summary: base files", "URL: https://example.com/base"]),
    ("osbd-lib", "1.0", "1", ["Summary: library, old"]),
    ("osbd-lib", "2.0", "1", ["Summary: library, new"]),
    ("osbd-app", "1.2", "3", ["Summary: the application", "Requires: osbd-lib >= 2.0", "Requires: osbd-base"]),
    ("osbd-tool", "0.9", "2", ["Summary: a tool", "Conflicts: osbd-app"]),
    ("osbd-broken", "1.0", "1", ["Summary: needs what no one has", "Requires: osbd-nowhere"]),
]


def build_repo(dest: Path, packages: list[tuple[str, str, str, list[str]]] | None = None) -> Path:
    """Write the RPMs (``packages``, default PACKAGES) and repodata under dest/repo; return that directory."""
    rpmbuild = need_tool("rpmbuild")
    createrepo = need_tool("createrepo_c")
    top = dest / "rpmbuild"
    repo = dest / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    for name, version, release, extra in PACKAGES if packages is None else packages:
        spec = dest / f"{name}-{version}.spec"
        lines = [f"Name: {name}", f"Version: {version}", f"Release: {release}", "License: MIT",
                 "BuildArch: noarch", *extra, "%description", f"{name} for osbuildd's dnf tests.", "%files", ""]
        spec.write_text("\n".join(lines))
        subprocess.run([rpmbuild, "-bb", "--nodeps", "--define", f"_topdir {top}", "--define", f"_rpmdir {repo}",
                        str(spec)], check=True, capture_output=True)
    subprocess.run([createrepo, "-q", str(repo)], check=True, capture_output=True)
    return repo
