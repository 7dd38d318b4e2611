"""The Cloud API's metadata routes on the real daemon (unix listener): ``/openapi``, ``/errors``,
``/errors/{id}``, ``/distributions``, ``/distributions/{distro}``, against the spec's shapes and
upstream's recorded answers (tests/data/cloud/recorded/074, 075, 078, 079 — 078/079 trimmed to one
entry; the recordings are Fedora's images-library image types, so keys are compared, not names)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import osbuildd.distro
from osbuildd.api.cloud.errors import TABLE

from .cloud_daemon import CLOUD, SPEC, Daemon, cloud_daemon, conforms, error_id

RECORDED = Path(__file__).resolve().parents[1] / "data" / "cloud" / "recorded"
CLOUD_NAMES = {"ami": "aws", "gce": "gcp", "vhd": "azure", "qcow2": "guest-image", "vmdk": "vsphere",
               "ova": "vsphere-ova", "ec2": "aws-rhui"}


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())["response"]["body"]


@pytest.fixture
async def daemon(repo_root: Path, tmp_path: Path, shared_state_dir: Path):
    async with cloud_daemon(repo_root, tmp_path, shared_state_dir) as d:
        yield d


async def test_openapi_is_the_spec(daemon: Daemon) -> None:
    r = await daemon.cloud.get(f"{CLOUD}/openapi")
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
    assert r.json() == yaml.safe_load(SPEC.read_text())
    assert "/distributions/{distro}" in r.json()["paths"]


async def test_error_list_pages(daemon: Daemon) -> None:
    table = [str(e.id) for e in TABLE]
    r = await daemon.cloud.get(f"{CLOUD}/errors")
    assert r.status == 200, r.body
    body = r.json()
    conforms(body, "ErrorList")
    assert (body["kind"], body["page"], body["size"], body["total"]) == ("ErrorList", 0, len(table), len(table))
    assert [e["id"] for e in body["items"]] == table
    assert all(set(e) == {"href", "id", "kind", "code", "reason", "operation_id"} for e in body["items"])
    assert len({e["operation_id"] for e in body["items"]}) == 1 and body["items"][0]["operation_id"]

    r = await daemon.cloud.get(f"{CLOUD}/errors?page=2&size=10")
    body = r.json()
    assert (body["page"], body["size"], body["total"]) == (2, 10, len(table))
    assert [e["id"] for e in body["items"]] == table[20:30]
    last = (len(table) - 1) // 10
    r = await daemon.cloud.get(f"{CLOUD}/errors?page={last}&size=10")
    assert [e["id"] for e in r.json()["items"]] == table[last * 10:]
    r = await daemon.cloud.get(f"{CLOUD}/errors?page=100")
    assert (r.json()["size"], r.json()["items"]) == (0, [])
    r = await daemon.cloud.get(f"{CLOUD}/errors?page=-1")
    assert (r.json()["page"], r.json()["items"]) == (-1, [])
    r = await daemon.cloud.get(f"{CLOUD}/errors?page=x")
    assert (r.status, error_id(r)) == (400, "18")
    r = await daemon.cloud.get(f"{CLOUD}/errors?size=1.5")
    assert (r.status, error_id(r)) == (400, "19")


async def test_error_list_is_upstreams(daemon: Daemon) -> None:
    """The whole list as upstream answered it (074): same ids, order, reasons, statuses' hrefs."""
    want = recorded("074-cloud-errors.json")
    body = (await daemon.cloud.get(f"{CLOUD}/errors")).json()
    assert {k: body[k] for k in ("kind", "page", "size", "total")} == \
        {k: want[k] for k in ("kind", "page", "size", "total")}
    strip = [{k: v for k, v in e.items() if k != "operation_id"} for e in body["items"]]
    assert strip == [{k: v for k, v in e.items() if k != "operation_id"} for e in want["items"]]


async def test_error_by_id(daemon: Daemon) -> None:
    want = recorded("075-cloud-error-5.json")
    r = await daemon.cloud.get(f"{CLOUD}/errors/5")
    assert r.status == 200
    conforms(r.json(), "Error")
    got = r.json()
    assert set(got) == set(want) and got["operation_id"] and got["operation_id"] != want["operation_id"]
    assert {k: v for k, v in got.items() if k != "operation_id"} == {k: v for k, v in want.items() if k != "operation_id"}
    r = await daemon.cloud.get(f"{CLOUD}/errors/five")
    assert (r.status, error_id(r)) == (400, "16")
    r = await daemon.cloud.get(f"{CLOUD}/errors/12")   # a gap in the table
    assert (r.status, error_id(r)) == (404, "17")


async def test_distribution_list(daemon: Daemon) -> None:
    r = await daemon.cloud.get(f"{CLOUD}/distributions")
    assert r.status == 200
    body = r.json()
    # upstream answers distro -> arch -> image type -> [repository] (078), one level deeper than the
    # spec's DistributionList says; the repositories are the spec's BlueprintRepository
    assert sorted(body) == osbuildd.distro.names()
    shape = recorded("078-cloud-distributions.json")
    (rec_arches,) = shape.values()
    for name in osbuildd.distro.names():
        d = osbuildd.distro.get(name)
        assert sorted(body[name]) == sorted(d.arches)
        for arch_name, arch in d.arches.items():
            assert sorted(body[name][arch_name]) == sorted(CLOUD_NAMES.get(t, t) for t in arch.image_types)
            for it, repos in body[name][arch_name].items():
                assert isinstance(repos, list) and len(repos) >= 1, (name, arch_name, it)
                for repo in repos:
                    conforms(repo, "BlueprintRepository")
    # same nesting as upstream's answer: distro -> arch -> image type -> [repository]
    (rec_types,) = rec_arches.values()
    (rec_repos,) = rec_types.values()
    assert isinstance(rec_repos, list) and {"name", "gpgkeys"} <= set(rec_repos[0])
    qcow2 = body["debian-12"]["x86_64"]["guest-image"]
    assert {"id", "baseurls"} <= set(qcow2[0])
    assert "qcow2" not in body["debian-12"]["x86_64"]


async def test_distribution_details(daemon: Daemon) -> None:
    want = recorded("079-cloud-distribution-f44.json")
    r = await daemon.cloud.get(f"{CLOUD}/distributions/fedora-43")
    assert r.status == 200, r.body
    body = r.json()
    conforms(body["architectures"]["x86_64"], "ArchitectureInfo")
    for arch in body["architectures"].values():
        for info in arch["image_types"].values():
            conforms(info, "ImageTypeInfo")
    d = osbuildd.distro.get("fedora-43")
    assert set(body) == set(want)   # kind, href, id, name, codename, releasever, os_version, ...
    assert (body["kind"], body["id"], body["name"], body["href"]) == \
        ("DistributionDetails", "fedora-43", "fedora-43", f"{CLOUD}/distributions/fedora-43")
    assert (body["product"], body["os_version"], body["releasever"], body["module_platform_id"]) == \
        (d.product, d.os_version, d.release_version, d.module_platform_id)
    assert sorted(body["architectures"]) == sorted(d.arches)
    x86 = body["architectures"]["x86_64"]
    assert set(x86) == set(want["architectures"]["x86_64"]) == {"name", "image_types"}
    assert sorted(x86["image_types"]) == sorted(CLOUD_NAMES.get(t, t) for t in d.arches["x86_64"].image_types)
    guest = x86["image_types"]["guest-image"]
    rec = next(iter(want["architectures"]["x86_64"]["image_types"].values()))
    assert set(guest) - {"iso_label", "base_partition_table"} <= set(rec)
    it = d.arches["x86_64"].image_types["qcow2"]
    assert (guest["name"], guest["filename"], guest["mime_type"], guest["default_size"], guest["exports"]) == \
        ("guest-image", it.filename, it.mime_type, it.default_size, it.exports)
    assert "qcow2" in guest["aliases"]

    # filters: architecture and image type (Cloud or osbuildd name)
    r = await daemon.cloud.get(f"{CLOUD}/distributions/fedora-43?architecture=aarch64&image_type=qcow2&image_type=aws")
    body = r.json()
    assert list(body["architectures"]) == ["aarch64"]
    assert sorted(body["architectures"]["aarch64"]["image_types"]) == ["aws", "guest-image"]


async def test_distribution_alias_and_unknown(daemon: Daemon) -> None:
    alias, target = next(iter(osbuildd.distro.aliases().items()))
    r = await daemon.cloud.get(f"{CLOUD}/distributions/{alias}")
    assert r.status == 200 and r.json()["name"] == target
    r = await daemon.cloud.get(f"{CLOUD}/distributions/nodistro-1")
    assert (r.status, error_id(r)) == (404, "21")
    assert "nodistro-1" in r.json()["details"]
