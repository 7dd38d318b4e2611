"""osbuildd.compose.sbom: SPDX 2.3 documents from depsolve results, checked with spdx-tools' parser and
validator. Debian: a real depsolve against the Debian mirror (the run's shared apt cache). RPM: package
specs as dnf resolves them (no dnf on this host), with and without an epoch."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from osbuildd import depsolve
from osbuildd import distro as distros
from osbuildd.compose import sbom
from osbuildd.depsolve import PackageSetRequest, PackageSpec

SHA = "sha256:" + "0123456789abcdef" * 4


def valid(doc: dict[str, Any]) -> None:
    messages = validate_full_spdx_document(JsonLikeDictParser().parse(doc))
    assert messages == [], [m.validation_message for m in messages[:5]]


@pytest.fixture(scope="module")
def debian_packages(shared_state_dir: Path) -> list[PackageSpec]:
    d = distros.get("debian-12")
    sets = {"os": PackageSetRequest(include=["tmux", "libstdc++6", "bsdutils"],
                                    repositories=list(d.arch("x86_64").repositories))}
    # once for the module, in its own loop (no test's loop is running while module fixtures are made)
    solved = asyncio.run(depsolve.depsolve(d, "x86_64", sets, shared_state_dir / "cache" / "depsolve"))
    return solved["os"]


def test_debian_document_validates(debian_packages: list[PackageSpec]) -> None:
    doc = sbom.spdx_document(debian_packages, name="sbom-by-osbuildd-os", key="compose/os", created=1.75e9)
    valid(doc)
    assert doc["spdxVersion"] == "SPDX-2.3" and doc["dataLicense"] == "CC0-1.0"
    assert doc["creationInfo"]["created"] == "2025-06-15T15:06:40Z"
    by_name = {p["name"]: p for p in doc["packages"]}
    assert len(by_name) == len(debian_packages) and {"tmux", "libstdc++6", "bsdutils"} <= set(by_name)
    # every package is described by the document, under a unique id
    described = {r["relatedSpdxElement"] for r in doc["relationships"] if r["relationshipType"] == "DESCRIBES"}
    assert described == {p["SPDXID"] for p in doc["packages"]} and len(described) == len(debian_packages)
    for spec in debian_packages:
        p = by_name[spec.name]
        assert p["versionInfo"] == spec.deb_version
        assert p["checksums"] == [{"algorithm": "SHA256", "checksumValue": spec.checksum.split(":", 1)[1]}]
        assert p["downloadLocation"] == spec.url
        (ref,) = p["externalRefs"]
        assert ref["referenceType"] == "purl" and ref["referenceCategory"] == "PACKAGE-MANAGER"
        assert ref["referenceLocator"].startswith(f"pkg:deb/debian/{spec.name.replace('+', '%2B')}@")
        assert ref["referenceLocator"].endswith(f"?arch={spec.arch}")
    # an epoch stays in the version, a '+' is percent-encoded
    bsdutils = next(s for s in debian_packages if s.name == "bsdutils")
    assert ":" in bsdutils.deb_version
    assert by_name["bsdutils"]["externalRefs"][0]["referenceLocator"] == \
        f"pkg:deb/debian/bsdutils@{bsdutils.deb_version.replace('+', '%2B')}?arch={bsdutils.arch}"
    assert by_name["libstdc++6"]["SPDXID"].endswith("-libstdc-6-amd64")


def test_same_input_same_document(debian_packages: list[PackageSpec]) -> None:
    a = sbom.spdx_document(debian_packages, name="n", key="c1/os", created=0)
    assert sbom.spdx_document(debian_packages, name="n", key="c1/os", created=0) == a
    b = sbom.spdx_document(debian_packages, name="n", key="c2/os", created=0)
    assert b["documentNamespace"] != a["documentNamespace"]
    assert a["documentNamespace"].startswith(sbom.NAMESPACE_BASE + "/n-")


def test_rpm_document_validates() -> None:
    base = "https://dl.fedoraproject.org/pub/fedora/linux/releases/42/Everything/x86_64/os/Packages"
    specs = [
        PackageSpec("bash", 0, "5.2.37", "1.fc42", "x86_64", f"{base}/b/bash-5.2.37-1.fc42.x86_64.rpm", SHA),
        PackageSpec("openssl-libs", 1, "3.2.4", "3.fc42", "x86_64", f"{base}/o/openssl-libs.rpm", "sha512:" + "ab" * 64),
        PackageSpec("local", 0, "1", "1", "noarch", "file:///srv/repo/local-1-1.noarch.rpm", "md5:" + "cd" * 16),
        PackageSpec("mirror", 0, "1", "1", "noarch", "http://127.0.0.1:8080/mirror-1-1.noarch.rpm", "bogus"),
    ]
    doc = sbom.spdx_document(specs, name="sbom-by-osbuildd-build", key="c/build", created=0, vendor="fedora")
    valid(doc)
    p = {x["name"]: x for x in doc["packages"]}
    assert p["bash"]["versionInfo"] == "5.2.37-1.fc42"
    assert p["bash"]["externalRefs"][0]["referenceLocator"] == "pkg:rpm/fedora/bash@5.2.37-1.fc42?arch=x86_64"
    assert p["openssl-libs"]["versionInfo"] == "1:3.2.4-3.fc42"
    assert p["openssl-libs"]["externalRefs"][0]["referenceLocator"] == \
        "pkg:rpm/fedora/openssl-libs@3.2.4-3.fc42?arch=x86_64&epoch=1"
    assert p["openssl-libs"]["checksums"][0]["algorithm"] == "SHA512"
    assert p["local"]["checksums"][0] == {"algorithm": "MD5", "checksumValue": "cd" * 16}
    # a location SPDX cannot take (file:, a loopback mirror) is NOASSERTION; a checksum it cannot
    # read is left out rather than made up
    assert p["local"]["downloadLocation"] == p["mirror"]["downloadLocation"] == "NOASSERTION"
    assert "checksums" not in p["mirror"]
