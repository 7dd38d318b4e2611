"""SPDX 2.3 documents made from a depsolve result (what upstream's depsolver attaches to its depsolve
job as ``sbom_docs``, one document per package set / pipeline).

One document describes one package set: a package per resolved package (name, version, download
location, the checksum the repository gave, a purl), each DESCRIBED by the document. Debian packages
get ``pkg:deb/debian/<name>@<version>?arch=<arch>``, RPMs ``pkg:rpm/<vendor>/<name>@<version>-<release>
?arch=<arch>[&epoch=<epoch>]``. The solver's dependency edges are not kept in a depsolve result, so
there are no DEPENDS_ON relationships. Everything is derived from the inputs (no clock, no random):
the same compose always answers the same document.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from osbuildd import __version__
from osbuildd.depsolve import PackageSpec

__all__ = ["NAMESPACE_BASE", "package_purl", "spdx_document"]

SPDX_VERSION = "SPDX-2.3"
NAMESPACE_BASE = "https://osbuild.org/spdxdocs"
NOASSERTION = "NOASSERTION"
# "sha256:<hex>" prefixes -> SPDX checksum algorithm names
_ALGORITHMS = {"md5": "MD5", "sha1": "SHA1", "sha224": "SHA224", "sha256": "SHA256", "sha384": "SHA384",
               "sha512": "SHA512"}
_NOT_IDSTRING = re.compile(r"[^A-Za-z0-9.-]+")
_NS = uuid.UUID("7b6e3cf4-5d1a-4c52-9a0e-0c3f6a0d5b21")   # osbuildd's namespace for document uuids


def _pct(text: str) -> str:
    # purl: percent-encode everything but unreserved characters; ':' may stay (packageurl does so)
    return quote(text, safe="").replace("%3A", ":")


def is_deb(p: PackageSpec) -> bool:
    return bool(p.deb_version)


def package_version(p: PackageSpec) -> str:
    """The version as the package manager writes it: Debian's exact version, RPM's [epoch:]version-release."""
    return p.evr()


def package_purl(p: PackageSpec, vendor: str = "") -> str:
    if is_deb(p):
        return f"pkg:deb/debian/{_pct(p.name)}@{_pct(p.deb_version)}?arch={_pct(p.arch)}"
    vr = f"{p.version}-{p.release}" if p.release else p.version
    purl = f"pkg:rpm/{_pct(vendor or 'rpm')}/{_pct(p.name)}@{_pct(vr)}?arch={_pct(p.arch)}"
    return purl + (f"&epoch={p.epoch}" if p.epoch else "")


def _checksums(p: PackageSpec) -> list[dict[str, str]]:
    algo, sep, value = (p.checksum or "").partition(":")
    name = _ALGORITHMS.get(algo.lower())
    if not sep or name is None or not re.fullmatch(r"[0-9a-fA-F]+", value):
        return []
    return [{"algorithm": name, "checksumValue": value.lower()}]


def _location(url: str) -> str:
    """The package's URL when SPDX's grammar takes it (a network URL on a host name with a top-level
    domain), else NOASSERTION: a file: repository or a mirror on 127.0.0.1/localhost has no location
    a reader of the document could use."""
    try:
        parts = urlsplit(url or "")
        host = parts.hostname or ""
    except ValueError:
        return NOASSERTION
    if parts.scheme not in ("http", "https", "ftp") or any(c.isspace() for c in url):
        return NOASSERTION
    labels = host.split(".")
    if len(labels) < 2 or not re.fullmatch(r"[a-z]{2,5}", labels[-1], re.IGNORECASE):
        return NOASSERTION
    return url


def _spdx_id(index: int, p: PackageSpec) -> str:
    return f"SPDXRef-Package-{index}-{_NOT_IDSTRING.sub('-', p.name)}-{_NOT_IDSTRING.sub('-', p.arch)}"


def _package(index: int, p: PackageSpec, vendor: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "SPDXID": _spdx_id(index, p),
        "name": p.name,
        "versionInfo": package_version(p),
        "supplier": NOASSERTION,
        "downloadLocation": _location(p.url),
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                          "referenceLocator": package_purl(p, vendor)}],
    }
    checksums = _checksums(p)
    if checksums:
        out["checksums"] = checksums
    return out


def _timestamp(created: float) -> str:
    return datetime.datetime.fromtimestamp(int(created), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def spdx_document(packages: Sequence[PackageSpec], *, name: str, key: str, created: float,
                  vendor: str = "") -> dict[str, Any]:
    """The SPDX 2.3 JSON document of ``packages``. ``name``: the document's name; ``key`` makes its
    namespace unique (e.g. "<compose id>/<pipeline>"); ``created``: when the set was resolved (epoch
    seconds); ``vendor``: the purl namespace of RPMs ("fedora", "redhat", "centos")."""
    pkgs = [_package(i, p, vendor) for i, p in enumerate(packages)]
    doc_uuid = uuid.uuid5(_NS, key)
    return {
        "spdxVersion": SPDX_VERSION,
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": f"{NAMESPACE_BASE}/{_NOT_IDSTRING.sub('-', name)}-{doc_uuid}",
        "creationInfo": {"created": _timestamp(created), "creators": [f"Tool: osbuildd-{__version__}"]},
        "packages": pkgs,
        "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                           "relatedSpdxElement": p["SPDXID"]} for p in pkgs],
    }
