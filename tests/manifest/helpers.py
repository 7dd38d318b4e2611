"""Shared bits of the manifest tests: blueprints and synthetic depsolve results for RPM distros.

Fedora/CentOS/RHEL mirrors are unreachable here, so RPM manifests are generated from package lists
made from the requested package sets (names as requested, a fixed version, a checksum of the name).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from testdata import data_file, upstream_schema

from osbuildd.blueprint import Blueprint
from osbuildd.depsolve import PackageSetRequest, PackageSpec

SCHEMAS = upstream_schema      # upstream osbuild's schemas (see tests/testdata.py)
RPM_DISTROS = ["fedora-42", "fedora-43", "centos-9", "centos-10", "rhel-9.6", "rhel-10.0"]
RPM_TYPES = ["qcow2", "ami", "vhd", "gce", "tar", "container", "minimal-raw"]
DEBIAN_TYPES = ["tar", "qcow2", "raw", "ami", "vhd", "gce", "vmdk", "container"]


def synthetic_depsolve(sets: dict[str, PackageSetRequest], arch: str = "x86_64",
                       release: str = "1.el9") -> dict[str, list[PackageSpec]]:
    out = {}
    for name, req in sets.items():
        names = [n for n in req.include if not n.startswith("@")] + ["kernel-core"]
        pkgs = []
        for n in dict.fromkeys(names):
            repo = req.repositories[0] if req.repositories else None
            base = (repo.baseurl or ["https://mirror.example.com/"])[0] if repo else "https://mirror.example.com/"
            pkgs.append(PackageSpec(
                name=n, epoch=0, version="1.0", release=release, arch=arch,
                url=f"{base.rstrip('/')}/Packages/{n}-1.0-{release}.{arch}.rpm",
                checksum="sha256:" + hashlib.sha256(n.encode()).hexdigest(), size=1000,
                repo_id=repo.id if repo else "", check_gpg=True))
        out[name] = pkgs
    return out


def all_customizations_raw() -> dict[str, Any]:
    raw = json.loads(data_file("images", "configs", "all-customizations.json").read_text())["blueprint"]
    raw = copy.deepcopy(raw)
    raw["version"] = "1.0.0"     # the reference file's "1.0" is not semver
    return raw


def blueprint(raw: dict[str, Any] | None = None, drop: tuple[str, ...] = ()) -> Blueprint:
    raw = copy.deepcopy(raw or {"name": "empty", "version": "0.0.1"})
    for key in drop:
        (raw.get("customizations") or {}).pop(key, None)
    bp = Blueprint.from_json(raw)
    bp.initialize()
    return bp


def supported_only(raw: dict[str, Any], image_type: Any) -> dict[str, Any]:
    """The blueprint minus the customizations this image type does not support."""
    raw = copy.deepcopy(raw)
    c = raw.get("customizations") or {}
    for key in list(c):
        if key not in image_type.supported_customizations:
            del c[key]
    return raw
