"""Debian versions in upstream's epoch/version/release fields and back; copyright -> license."""

from __future__ import annotations

import pytest

from osbuildd.blueprint.freeze import evra
from osbuildd.depsolve import PackageSpec
from osbuildd.depsolve.debmeta import license_of
from osbuildd.depsolve.debversion import (
    VersionError,
    parse,
    request_candidates,
    split_arch,
    vercmp,
    weldr_evr,
    weldr_fields,
)


@pytest.mark.parametrize(("text", "fields"), [
    ("3.3a-3", (0, "3.3a", "3")),
    ("1:2.38.1-5+deb12u3", (1, "2.38.1", "5+deb12u3")),
    ("3.134", (0, "3.134", "0")),                      # native: dpkg's implicit revision 0
    ("1.2-3-4", (0, "1.2-3", "4")),                    # the revision starts after the LAST hyphen
    ("2:1.0~rc1-0ubuntu1~22.04", (2, "1.0~rc1", "0ubuntu1~22.04")),
    ("1.0~beta2", (0, "1.0~beta2", "0")),
    ("0:1.0-1", (0, "1.0", "1")),
    ("1:2:3-4", (1, "2:3", "4")),                      # the epoch ends at the FIRST colon
])
def test_weldr_fields(text: str, fields: tuple[int, str, str]) -> None:
    assert weldr_fields(text) == fields


@pytest.mark.parametrize("text", ["3.3a-3", "1:2.38.1-5+deb12u3", "3.134", "1.2-3-4", "2:1.0~rc1-0u1"])
def test_bootstrap_stage_metadata_splits_the_same_way(text: str) -> None:
    from osbuildd.engine.stages.org_osbuildd_debian_bootstrap import _weldr_fields

    assert _weldr_fields(text) == weldr_fields(text)


def test_parse_round_trips_and_refuses_bad_epochs() -> None:
    for text in ("3.3a-3", "1:2.38.1-5+deb12u3", "3.134", "1.2-3-4", "1.0~rc1-2"):
        assert str(parse(text)) == text
    assert parse("3.134").revision == ""
    with pytest.raises(VersionError):
        parse("x:1.0-1")


@pytest.mark.parametrize(("text", "split"), [
    ("3.3a-3.amd64", ("3.3a-3", "amd64")),
    ("1:2.38.1-5+deb12u3.amd64", ("1:2.38.1-5+deb12u3", "amd64")),
    ("3.134-0.all", ("3.134-0", "all")),
    ("1.2-3.fc39.x86_64", ("1.2-3.fc39", "x86_64")),
    ("2.0-1.noarch", ("2.0-1", "noarch")),
    ("1.2.3", ("1.2.3", "")),                          # dots of the version itself stay
    ("2.36-9+deb12u4", ("2.36-9+deb12u4", "")),
    ("3.3*", ("3.3*", "")),
    (".amd64", (".amd64", "")),
])
def test_split_arch_only_strips_real_arches(text: str, split: tuple[str, str]) -> None:
    assert split_arch(text) == split


def test_native_frozen_form_maps_back() -> None:
    assert request_candidates("3.134-0") == ["3.134-0", "3.134"]
    assert request_candidates("3.3a-3") == ["3.3a-3"]


@pytest.mark.parametrize(("a", "b", "sign"), [
    ("1.0", "1.0-0", 0), ("1.0~rc1", "1.0", -1), ("1:0.1", "2.0", 1), ("2.36-9+deb12u4", "2.36-9", 1),
    ("1.2-3-4", "1.2-3-10", -1), ("3.3a-3", "3.3-3", 1),
])
def test_dpkg_ordering(a: str, b: str, sign: int) -> None:
    got = vercmp(a, b)
    assert (got > 0) - (got < 0) == sign


def test_specs_old_and_new_read_the_same() -> None:
    new = PackageSpec(name="bsdutils", epoch=1, version="2.38.1", release="5+deb12u3", arch="amd64", url="",
                      checksum="", deb_version="1:2.38.1-5+deb12u3")
    old = {"name": "bsdutils", "epoch": 1, "version": "2.38.1-5+deb12u3", "release": "", "arch": "amd64"}
    assert weldr_evr(new) == weldr_evr(old) == (1, "2.38.1", "5+deb12u3")
    assert evra(new) == evra(old) == "1:2.38.1-5+deb12u3.amd64"
    assert new.evr() == "1:2.38.1-5+deb12u3" and new.nevra() == "bsdutils-1:2.38.1-5+deb12u3.amd64"
    native = PackageSpec(name="adduser", epoch=0, version="3.134", release="0", arch="all", url="", checksum="",
                         deb_version="3.134")
    assert native.evr() == "3.134" and evra(native) == "3.134-0.all"
    rpm = {"name": "tmux", "epoch": 0, "version": "3.3a", "release": "3.fc39", "arch": "x86_64"}
    assert weldr_evr(rpm) == (0, "3.3a", "3.fc39") and evra(rpm) == "3.3a-3.fc39.x86_64"


DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: demo

Files: *
Copyright: 2020 Someone
License: ISC

Files: compat/*
Copyright: 2001 Other
License: BSD-2-clause or ISC

Files: debian/*
Copyright: 2022 Packager
License: ISC

License: ISC
 Permission to use, copy, modify ...
"""


def test_license_from_copyright() -> None:
    assert license_of(DEP5, "demo") == "ISC and (BSD-2-clause or ISC)"
    free = "This package is free software; see /usr/share/common-licenses/GPL-2.\nAlso /usr/share/common-licenses/LGPL-2.1\n"
    assert license_of(free, "x") == "GPL-2 and LGPL-2.1"
    assert license_of("All rights reserved by someone.\n", "x") == "see /usr/share/doc/x/copyright"
