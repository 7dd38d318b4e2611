"""Distributions: names, aliases, host detection, arches, repositories, image types and their aliases."""

from __future__ import annotations

from pathlib import Path

import pytest

from osbuildd import distro
from osbuildd.distro import Repository, UnknownArch, UnknownDistro, UnknownImageType

ALL = ["centos-10", "centos-9", "debian-12", "debian-13", "fedora-42", "fedora-43", "rhel-10.0", "rhel-9.6"]
RPM_TYPES = {"qcow2", "ami", "vhd", "gce", "tar", "container", "minimal-raw"}
DEBIAN_TYPES = {"tar", "qcow2", "raw", "ami", "vhd", "gce", "vmdk", "container"}


def test_names_sorted_and_complete() -> None:
    assert distro.names() == ALL


@pytest.mark.parametrize(("alias", "name"), [("rhel-9", "rhel-9.6"), ("rhel-10", "rhel-10.0"),
                                             ("fedora43", "fedora-43"), ("debian-12", "debian-12")])
def test_aliases(alias: str, name: str) -> None:
    assert distro.get(alias).name == name


@pytest.mark.parametrize("name", ["rhel-8", "rhel-8.10", "ubuntu-24.04", ""])
def test_unknown_distro(name: str) -> None:
    with pytest.raises(UnknownDistro) as exc:
        distro.get(name)
    assert exc.value.name == name


def _os_release(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "os-release"
    p.write_text(text)
    return p


@pytest.mark.parametrize(("text", "expected"), [
    ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
     "debian-12"),
    ("ID=debian\nVERSION_CODENAME=trixie\n", "debian-13"),
    ('ID=fedora\nVERSION_ID=43\n', "fedora-43"),
    ('ID="centos"\nVERSION_ID="9"\n', "centos-9"),
    ('ID="rhel"\nVERSION_ID="9.6"\n', "rhel-9.6"),
    ('ID=arch\n', "arch"),
])
def test_host_from_os_release(tmp_path: Path, text: str, expected: str) -> None:
    assert distro.host(os_release=_os_release(tmp_path, text)) == expected


def test_host_override_wins(tmp_path: Path) -> None:
    p = _os_release(tmp_path, "ID=debian\nVERSION_ID=12\n")
    assert distro.host("rhel-9", os_release=p) == "rhel-9.6"
    with pytest.raises(UnknownDistro):
        distro.host("nonsense-1", os_release=p)


def test_this_host_is_debian_12() -> None:
    assert distro.host() == "debian-12"


@pytest.mark.parametrize("name", ALL)
def test_arches_and_image_types(name: str) -> None:
    d = distro.get(name)
    assert set(d.arches) == {"x86_64", "aarch64"}
    types = DEBIAN_TYPES if d.family == "debian" else RPM_TYPES
    for arch in d.arches.values():
        assert set(arch.image_types) == types
        assert arch.repositories, f"{name}/{arch.name} has no repositories"
    with pytest.raises(UnknownArch):
        d.arch("ppc64le")


@pytest.mark.parametrize(("name", "alias", "target"), [
    ("debian-12", "guest-image", "qcow2"), ("debian-12", "aws", "ami"), ("debian-12", "azure", "vhd"),
    ("debian-12", "gcp", "gce"), ("debian-12", "vsphere", "vmdk"), ("debian-13", "minimal-raw", "raw"),
    ("fedora-43", "guest-image", "qcow2"), ("fedora-43", "generic-qcow2", "qcow2"), ("rhel-9.6", "aws", "ami"),
    ("centos-9", "gcp", "gce"), ("centos-10", "azure", "vhd"),
])
def test_image_type_aliases(name: str, alias: str, target: str) -> None:
    assert distro.get(name).arch("x86_64").image_type(alias).name == target


def test_unknown_image_type() -> None:
    with pytest.raises(UnknownImageType) as exc:
        distro.get("fedora-43").arch("x86_64").image_type("vmdk")   # not an RPM type here
    assert exc.value.name == "vmdk"


@pytest.mark.parametrize(("name", "type_", "filename", "mime", "export"), [
    ("fedora-43", "qcow2", "disk.qcow2", "application/x-qemu-disk", "qcow2"),
    ("fedora-43", "ami", "image.raw", "application/octet-stream", "image"),
    ("rhel-9.6", "vhd", "disk.vhd", "application/x-vhd", "vpc"),
    ("centos-9", "gce", "image.tar.gz", "application/gzip", "archive"),
    ("centos-10", "tar", "root.tar.xz", "application/x-tar", "archive"),
    ("rhel-10.0", "container", "container.tar", "application/x-tar", "container"),
    ("fedora-42", "minimal-raw", "disk.raw.xz", "application/xz", "xz"),
    ("debian-12", "raw", "disk.raw", "application/octet-stream", "image"),
    ("debian-12", "vmdk", "disk.vmdk", "application/x-vmdk", "vmdk"),
])
def test_filenames_mime_exports(name: str, type_: str, filename: str, mime: str, export: str) -> None:
    it = distro.get(name).arch("x86_64").image_type(type_)
    assert (it.filename, it.mime_type, it.exports) == (filename, mime, [export])


def test_boot_modes_and_targets() -> None:
    a = distro.get("rhel-9.6").arch("x86_64")
    assert a.image_type("qcow2").boot_mode == "hybrid"
    assert a.image_type("gce").boot_mode == "uefi"
    assert a.image_type("tar").boot_mode == "none" and not a.image_type("tar").bootable
    assert a.image_type("ami").default_target == "org.osbuild.aws"
    assert a.image_type("vhd").default_target == "org.osbuild.azure.image"
    assert a.image_type("gce").default_target == "org.osbuild.gcp"
    assert a.image_type("qcow2").partition_table is not None
    assert a.image_type("container").partition_table is None


def test_debian_repositories() -> None:
    repos = distro.get("debian-12").arch("x86_64").repositories
    assert [(r.baseurl, r.suite, r.components) for r in repos] == [
        (["http://deb.debian.org/debian"], "bookworm", ["main"]),
        (["http://deb.debian.org/debian"], "bookworm-updates", ["main"]),
        (["http://security.debian.org/debian-security"], "bookworm-security", ["main"]),
    ]
    assert {r.signed_by for r in repos} == {"/usr/share/keyrings/debian-archive-keyring.gpg"}
    assert [r.suite for r in distro.get("debian-13").arch("aarch64").repositories] == [
        "trixie", "trixie-updates", "trixie-security"]
    assert distro.dpkg_arch("aarch64") == "arm64"


def test_rpm_repositories() -> None:
    rhel = distro.get("rhel-9.6").arch("aarch64").repositories
    assert all(r.rhsm and r.check_gpg for r in rhel)
    assert rhel[0].baseurl == ["https://cdn.redhat.com/content/dist/rhel9/9.6/aarch64/baseos/os"]
    assert "BEGIN PGP PUBLIC KEY BLOCK" in rhel[0].gpgkeys[0]
    # the google-compute-engine repository exists for x86_64 only and only for gce images
    c9 = {r.id: r for r in distro.get("centos-9").arch("x86_64").repositories}
    assert c9["google-compute-engine"].for_image_type("gce")
    assert not c9["google-compute-engine"].for_image_type("qcow2")
    assert "google-compute-engine" not in {r.id for r in distro.get("centos-9").arch("aarch64").repositories}
    f43 = distro.get("fedora-43").arch("aarch64").repositories
    assert f43[0].metalink == "https://mirrors.fedoraproject.org/metalink?repo=fedora-43&arch=aarch64"


def test_repository_dict_round_trip() -> None:
    r = distro.get("debian-12").arch("x86_64").repositories[1]
    assert Repository.from_dict(r.to_dict()) == r
    r2 = distro.get("rhel-10.0").arch("x86_64").repositories[0]
    assert Repository.from_dict(r2.to_dict()) == r2
    assert r2.to_dict()["rhsm"] is True


def test_supported_customizations() -> None:
    deb = distro.get("debian-12").arch("x86_64")
    assert "fips" not in deb.image_type("qcow2").supported_customizations
    assert "user" in deb.image_type("qcow2").supported_customizations
    assert "filesystem" not in deb.image_type("tar").supported_customizations
    assert "fips" in distro.get("rhel-9.6").arch("x86_64").image_type("qcow2").supported_customizations
