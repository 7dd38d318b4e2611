"""image-builder's distributions (DISTRIBUTIONS_DIR) and allow list (ALLOW_FILE): osbuildd.imagebuilder.distributions."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from testdata import data_file

from osbuildd import distro as osbuildd_distro
from osbuildd.imagebuilder import ImageBuilderError
from osbuildd.imagebuilder.distributions import (
    SHIPPED_DIR,
    AllowFileError,
    AllowList,
    ArchitectureNotSupported,
    DistributionFileError,
    DistributionForbidden,
    DistributionNotFound,
    DistributionRegistry,
    Package,
)


def repo(id: str, **kw: Any) -> dict[str, Any]:
    return {"id": id, "baseurl": f"https://example.com/{id}", "rhsm": False, **kw}


def distro_doc(name: str, *, arches: tuple[str, ...] = ("x86_64", "aarch64"), repos: list[dict[str, Any]] | None = None,
               **info: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"module_platform_id": "platform:x", "oscap_name": "x",
                           "distribution": {"name": name, "description": f"{name} description", **info}}
    for a in arches:
        doc[a] = {"image_types": ["guest-image", "aws"], "repositories": repos if repos is not None else [repo("base")]}
    return doc


def write(root: Path, name: str, doc: Any, packages: dict[str, Any] | None = None) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / f"{name}.json").write_text(json.dumps(doc))
    for fname, content in (packages or {}).items():
        (d / fname).write_text(json.dumps(content))
    return d


@pytest.fixture
def dists(tmp_path: Path) -> Path:
    """A directory like upstream's test data: standard (tagged repo, package lists), no-packages,
    restricted-access, needs-entitlement (rhsm), an alias symlink, a plain file, a stray README."""
    root = tmp_path / "distributions"
    std_pkgs = {
        "standard-x86_64-base-packages.json": [{"name": "pkg-base-1", "summary": "one"},
                                               {"name": "pkg-base-2", "summary": "two"}],
        "standard-x86_64-other-packages.json": [{"name": "pkg-other-1", "summary": "tagged repo"}],
        "standard-aarch64-base-packages.json": {"data": [{"name": "pkg-base-arm", "summary": "data form"}]},
        "standard-aarch64-other-packages.json": [],
    }
    write(root, "standard", distro_doc("standard", repos=[repo("base", gpgkey="KEY", check_gpg=True),
                                                        repo("other", image_type_tags=["aws"])]), std_pkgs)
    write(root, "no-packages", distro_doc("no-packages", no_package_list=True))
    write(root, "restricted-access", distro_doc("restricted-access", restricted_access=True))
    write(root, "needs-entitlement", distro_doc("needs-entitlement", repos=[repo("base", rhsm=True)],
                                                composer_name="rhel-9.6", no_package_list=True))
    (root / "std-alias").symlink_to("standard")
    (root / "single.json").write_text(json.dumps(distro_doc("single", arches=("x86_64",), no_package_list=True)))
    (root / "README.txt").write_text("not a distribution")
    return root


def test_shipped_rpm_files_are_image_builders_unchanged() -> None:
    for line in data_file("imagebuilder", "distributions.SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        shipped = SHIPPED_DIR / name[:-5] / name
        assert hashlib.sha256(shipped.read_bytes()).hexdigest() == digest, shipped


def test_shipped_directory_loads_with_its_alias() -> None:
    reg = DistributionRegistry.load()
    assert reg.directory == SHIPPED_DIR
    assert {"centos-9", "fedora-43", "rhel-9.8", "debian-12", "debian-13", "rhel-9"} <= set(reg.names())
    alias, target = reg.get("rhel-9"), reg.get("rhel-9.8")
    assert (SHIPPED_DIR / "rhel-9").is_symlink()
    assert alias.name == "rhel-9" and alias.file_name == "rhel-9.8" == target.name
    assert alias.composer_distribution == "rhel-9.8"
    assert [a.to_api() for a in alias.architectures()] == [a.to_api() for a in target.architectures()]
    assert alias.to_api()["name"] == "rhel-9" and alias.description == target.description


@pytest.mark.parametrize("name", ["debian-12", "debian-13"])
def test_shipped_debian_files_carry_osbuildds_distro(name: str) -> None:
    d = DistributionRegistry.load().get(name)
    own = osbuildd_distro.get(name)
    raw = json.loads((SHIPPED_DIR / name / f"{name}.json").read_text())
    assert raw["distribution"]["name"] == name and d.no_package_list and not d.restricted_access
    assert d.buildable and not d.needs_entitlement
    assert sorted(d.arches) == sorted(own.arches)
    for arch in d.architectures():
        mine = own.arch(arch.name)
        assert [(r.id, [r.baseurl], r.extra["suite"], r.extra["components"], r.extra["signed_by"], r.rhsm)
                for r in arch.repositories] == [
            (r.id, r.baseurl, r.suite, r.components, r.signed_by, False) for r in mine.repositories]
        assert arch.image_types, arch.name
        # every image type the file offers is one osbuildd builds, and names its osbuildd type
        assert d.buildable_image_types(arch.name) == arch.image_types
        for t in arch.image_types:
            assert d.osbuildd_image_type(arch.name, t) == mine.image_type(t).name
        # the Cloud API repositories carry only the fields image-builder sends
        assert all(set(r.to_composer()) <= {"baseurl", "metalink", "rhsm", "gpgkey", "check_gpg"}
                   for r in arch.repositories)


def test_every_shipped_distribution_knows_what_osbuildd_builds() -> None:
    for d in DistributionRegistry.load().all():
        try:
            own: osbuildd_distro.Distro | None = osbuildd_distro.get(d.composer_distribution)
        except osbuildd_distro.UnknownDistro:
            own = None
        assert d.buildable == (own is not None)
        for a in d.architectures():
            buildable = d.buildable_image_types(a.name)
            assert set(buildable) <= set(a.image_types)
            if own is None:
                assert buildable == []
    centos = DistributionRegistry.load().get("centos-9")
    assert "edge-commit" in centos.architecture("x86_64").image_types
    assert "edge-commit" not in centos.buildable_image_types("x86_64")   # no ostree images in osbuildd
    assert centos.osbuildd_image_type("x86_64", "guest-image") == "qcow2"


def test_listing_aliases_plain_files_and_skipped_entries(dists: Path) -> None:
    reg = DistributionRegistry.load(dists)
    assert reg.names() == ["needs-entitlement", "no-packages", "restricted-access", "single", "standard", "std-alias"]
    single = reg.get("single")
    assert single.path == dists / "single.json" and list(single.arches) == ["x86_64"]
    assert single.to_api() == {"name": "single", "description": "single description"}


def test_architectures_list_base_repositories_only(dists: Path) -> None:
    d = DistributionRegistry.load(dists).get("standard")
    archs = [a.to_api() for a in d.architectures()]
    assert [a["arch"] for a in archs] == ["x86_64", "aarch64"]
    assert archs[0] == {"arch": "x86_64", "image_types": ["guest-image", "aws"],
                        "repositories": [{"baseurl": "https://example.com/base", "rhsm": False}]}
    x86 = d.architecture("x86_64")
    assert [r.id for r in x86.repositories_for("aws")] == ["base", "other"]
    assert [r.id for r in x86.repositories_for("guest-image")] == ["base"]
    assert x86.repositories[0].to_composer() == {"baseurl": "https://example.com/base", "rhsm": False,
                                                 "gpgkey": "KEY", "check_gpg": True}
    metalink = DistributionRegistry.load().get("fedora-43").architecture("x86_64").repositories[0]
    assert set(metalink.to_api()) == {"metalink", "rhsm"}


def test_architecture_not_supported(dists: Path) -> None:
    d = DistributionRegistry.load(dists).get("single")
    for arch in ("unsupported", "aarch64"):
        with pytest.raises(ArchitectureNotSupported) as exc:
            d.architecture(arch)
        assert str(exc.value) == "Architecture not supported" and exc.value.status == 400


def test_packages(dists: Path) -> None:
    reg = DistributionRegistry.load(dists)
    std = reg.get("standard")
    assert std.architecture("x86_64").find_packages("pkg-base") == [Package("pkg-base-1", "one"),
                                                                    Package("pkg-base-2", "two")]
    assert std.architecture("x86_64").find_packages("-2") == [Package("pkg-base-2", "two")]
    # repositories with image type tags are not searched
    assert std.architecture("x86_64").find_packages("other") == []
    assert std.architecture("aarch64").find_packages("pkg") == [Package("pkg-base-arm", "data form")]
    # an alias reads the target's package lists
    assert reg.get("std-alias").architecture("x86_64").find_packages("pkg-base-1") == [Package("pkg-base-1", "one")]
    assert reg.get("no-packages").architecture("x86_64").packages is None
    assert reg.get("no-packages").architecture("x86_64").find_packages("") == []
    # a distribution with package lists but a missing file: that repository has none
    assert reg.get("restricted-access").architecture("x86_64").packages == {"base": []}
    assert reg.get("restricted-access").architecture("x86_64").find_packages("") == []


def test_unknown_distribution(dists: Path) -> None:
    reg = DistributionRegistry.load(dists)
    for call in (lambda: reg.get("none"), lambda: reg.get_for("none", "000000", True)):
        with pytest.raises(DistributionNotFound) as exc:
            call()
        assert str(exc.value) == "distribution not available" and exc.value.status == 400
        assert isinstance(exc.value, ImageBuilderError)


def test_entitlement_hides_rhsm_distributions(dists: Path) -> None:
    reg = DistributionRegistry.load(dists)
    ent = reg.get("needs-entitlement")
    assert ent.needs_entitlement and ent.composer_distribution == "rhel-9.6"
    assert "needs-entitlement" not in [d.name for d in reg.available(False)]
    assert "needs-entitlement" in [d.name for d in reg.available(True)]
    assert reg.get_for("needs-entitlement", "000000", True) is ent
    with pytest.raises(DistributionNotFound):
        reg.get_for("needs-entitlement", "000000", False)


def test_restricted_without_allow_file_is_refused_to_everyone(dists: Path) -> None:
    reg = DistributionRegistry.load(dists)
    assert "restricted-access" not in [d.name for d in reg.visible("000000", True)]
    with pytest.raises(DistributionForbidden) as exc:
        reg.get_for("restricted-access", "000000", True)
    assert exc.value.status == 403
    assert str(exc.value) == "This account's organization is not authorized to build restricted-access images"
    assert reg.get_for("standard", "000000", False).name == "standard"


def test_allow_file_upstream_vectors(tmp_path: Path) -> None:
    """The vectors' /architectures/fedora-39 (org 000000 allowed by "fedora-*", 000001 refused) and
    POST /compose fedora-42 (403 and its detail), with upstream's test allow file."""
    root = tmp_path / "d"
    for name in ("fedora-39", "fedora-42", "centos-9"):
        write(root, name, distro_doc(name, restricted_access=True, no_package_list=True))
    reg = DistributionRegistry.load(root, allow_file=data_file("imagebuilder", "allow.json"))
    cases = json.loads(data_file("imagebuilder", "vectors.json").read_text())
    checked = 0
    for case in cases:
        path = case["path"]
        if path.startswith("/api/image-builder/v1/architectures/"):
            name = path.rsplit("/", 1)[1]
        elif case["method"] == "POST" and case["status"] == 403 and path.endswith("/compose"):
            name = case["body"]["distribution"]
        else:
            continue
        org = _org_id(case["headers"]["x-rh-identity"])
        if case["status"] == 200:
            assert reg.get_for(name, org, True).name == name
            assert name in [d.name for d in reg.visible(org, True)]
        else:
            with pytest.raises(DistributionForbidden) as exc:
                reg.get_for(name, org, True)
            answer = {"title": str(exc.value.status), "detail": str(exc.value)}
            assert case["expected_subset"]["errors"][0].items() <= answer.items()
            assert name not in [d.name for d in reg.visible(org, True)]
        checked += 1
    assert checked == 3


def _org_id(header: str) -> str:
    ident = json.loads(base64.b64decode(header))["identity"]
    return str(ident.get("org_id") or ident["internal"]["org_id"])


def test_allow_list_matching() -> None:
    allow = AllowList.load(data_file("imagebuilder", "allow.json"))
    assert allow.is_allowed("000000", "fedora-43") and allow.is_allowed("000000", "centos-10")
    assert not allow.is_allowed("000001", "fedora-43")
    assert allow.is_allowed("000001", "rhel-9.6-nightly")        # "*" applies to every organisation
    assert allow.is_allowed("000000", "my-rhel-10-nightly-x")     # unanchored, as Go's regexp.Match
    assert not allow.is_allowed("999999", "fedora-43")
    assert not AllowList.load("").is_allowed("000000", "fedora-43")


def test_allow_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(AllowFileError, match=f"^no allow file found at {missing}"):
        AllowList.load(missing)
    bad = tmp_path / "bad.json"
    for text in ("{", '{"000000": "fedora-*"}', '["fedora-*"]'):
        bad.write_text(text)
        with pytest.raises(AllowFileError, match=f'^failed to unmarshal allow file "{bad}"'):
            AllowList.load(bad)
    bad.write_text('{"000000": ["fedora-("]}')
    with pytest.raises(AllowFileError, match="invalid regular expression"):
        AllowList.load(bad)


@pytest.mark.parametrize("repos, message", [
    ([{"id": "x", "rhsm": False}], "repository must always have one of these properties: baseurl, metalink"),
    ([{"id": "x", "baseurl": "https://a", "metalink": "https://b"}],
     "repository must always have one of these properties: baseurl, metalink"),
    ([{"id": "x", "baseurl": 3}], "repositories[0].baseurl must be a string"),
    ([{"id": "x", "baseurl": "https://a", "rhsm": "yes"}], "repositories[0].rhsm must be a boolean"),
    ([{"id": "x", "baseurl": "https://a", "image_type_tags": "aws"}], "image_type_tags must be a list of strings"),
    (["not an object"], "repositories[0] must be an object"),
])
def test_bad_repositories(tmp_path: Path, repos: list[Any], message: str) -> None:
    write(tmp_path, "bad", distro_doc("bad", repos=repos, no_package_list=True))
    with pytest.raises(DistributionFileError) as exc:
        DistributionRegistry.load(tmp_path)
    assert message in str(exc.value) and str(tmp_path / "bad" / "bad.json") in str(exc.value)


@pytest.mark.parametrize("doc, message", [
    ("{", "not JSON"),
    ([], "must be a JSON object"),
    ({"distribution": {}}, "distribution.name must be a non-empty string"),
    ({"distribution": {"name": "x", "restricted_access": "yes"}}, "distribution.restricted_access must be a boolean"),
    ({"distribution": {"name": "x"}, "x86_64": {"image_types": "aws"}}, "x86_64.image_types must be a list of strings"),
    ({"distribution": {"name": "x"}, "x86_64": []}, "x86_64 must be an object"),
])
def test_bad_distribution_files(tmp_path: Path, doc: Any, message: str) -> None:
    d = tmp_path / "x"
    d.mkdir()
    (d / "x.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(DistributionFileError, match="x.json: ") as exc:
        DistributionRegistry.load(tmp_path)
    assert message in str(exc.value)


def test_bad_package_list(tmp_path: Path) -> None:
    write(tmp_path, "p", distro_doc("p", arches=("x86_64",)),
          {"p-x86_64-base-packages.json": [{"summary": "no name"}]})
    with pytest.raises(DistributionFileError, match="p-x86_64-base-packages.json: must be a list"):
        DistributionRegistry.load(tmp_path)


def test_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(DistributionFileError, match="cannot read the distributions directory"):
        DistributionRegistry.load(tmp_path / "missing")
    (tmp_path / "README").write_text("x")
    with pytest.raises(DistributionFileError, match="no distributions defined"):
        DistributionRegistry.load(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DistributionFileError, match="no distribution file empty.json"):
        DistributionRegistry.load(tmp_path)


def test_alias_copied_instead_of_linked(tmp_path: Path, dists: Path) -> None:
    """An install that dereferences symlinks (a wheel) turns an alias into a copy of the directory."""
    root = tmp_path / "copied"
    shutil.copytree(dists, root, symlinks=False)
    assert not (root / "std-alias").is_symlink()
    alias = DistributionRegistry.load(root).get("std-alias")
    assert alias.file_name == "standard"
    assert alias.architecture("x86_64").find_packages("pkg-base-2") == [Package("pkg-base-2", "two")]
