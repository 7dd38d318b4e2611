"""osbuildd.imagebuilder.mapping: IB requests -> Cloud requests, Cloud statuses -> IB statuses, redaction,
the composer's refusals, blueprint composes and export (upstream image-builder-crc internal/v1)."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from osbuildd.api.cloud.validation import operations
from osbuildd.api.openapi import first_error
from osbuildd.compose.cloud.request import compose_requests
from osbuildd.config import Config, ImageBuilderConfig
from osbuildd.imagebuilder import ImageBuilderError
from osbuildd.imagebuilder.composer import ComposerError
from osbuildd.imagebuilder.distributions import Architecture, Distribution, DistributionRegistry, Repository
from osbuildd.imagebuilder.mapping import (
    FS_MAX_SIZE,
    blueprint_compose_requests,
    cloud_compose_request,
    compose_status,
    composer_refusal,
    export_blueprint,
    redacted,
)

CFG = ImageBuilderConfig(aws_region="eu-west-1", gcp_region="europe-west3", gcp_bucket="ib-bucket",
                         azure_location="westeurope")
AZURE = {"tenant_id": "t-1", "subscription_id": "s-1", "resource_group": "rg", "image_name": "img",
         "hyper_v_generation": "V2"}


@pytest.fixture(scope="module")
def registry() -> DistributionRegistry:
    return DistributionRegistry.load()


def ib(distribution: str, image_type: str, upload_type: str, options: dict[str, Any] | None = None,
       **extra: Any) -> dict[str, Any]:
    ir: dict[str, Any] = {"architecture": extra.pop("arch", "x86_64"), "image_type": image_type,
                          "upload_request": {"type": upload_type, "options": options or {}}}
    ir.update(extra.pop("ir", {}))
    return {"distribution": distribution, "image_requests": [ir], **extra}


def cloud(registry: DistributionRegistry, body: dict[str, Any], cfg: ImageBuilderConfig = CFG,
          **kw: Any) -> dict[str, Any]:
    return cloud_compose_request(body, registry.get(body["distribution"]), cfg, **kw)


def refused(registry: DistributionRegistry, body: dict[str, Any], **kw: Any) -> ImageBuilderError:
    with pytest.raises(ImageBuilderError) as e:
        cloud(registry, body, **kw)
    return e.value


def cloud_spec_error(req: dict[str, Any]) -> str | None:
    op = next(o for (m, p), o in operations().items() if m == "POST" and p.endswith("/compose"))
    assert op.body is not None
    err = first_error(op.body, req)
    return None if err is None else err.message


# -- the upload type x image type table ----------------------------------------------------------

@pytest.mark.parametrize(("image_type", "upload", "options", "cloud_type", "cloud_options"), [
    ("aws", "aws", {"share_with_accounts": ["123456789012"]}, "aws",
     {"region": "eu-west-1", "share_with_accounts": ["123456789012"]}),
    ("ami", "aws", {"share_with_accounts": ["123456789012"]}, "aws",
     {"region": "eu-west-1", "share_with_accounts": ["123456789012"]}),
    ("guest-image", "aws.s3", {}, "guest-image", {"region": "eu-west-1"}),
    ("edge-commit", "aws.s3", {}, "edge-commit", {"region": "eu-west-1"}),
    ("rhel-edge-commit", "aws.s3", {}, "edge-commit", {"region": "eu-west-1"}),
    ("rhel-edge-installer", "aws.s3", {}, "edge-installer", {"region": "eu-west-1"}),
    ("vsphere-ova", "aws.s3", {}, "vsphere-ova", {"region": "eu-west-1"}),
    ("wsl", "aws.s3", {}, "wsl", {"region": "eu-west-1"}),
    ("gcp", "gcp", {"share_with_accounts": ["user:a@example.com"]}, "gcp",
     {"region": "europe-west3", "bucket": "ib-bucket", "share_with_accounts": ["user:a@example.com"]}),
    ("azure", "azure", AZURE, "azure", {**AZURE, "location": "westeurope"}),
    ("vhd", "azure", AZURE, "azure", {**AZURE, "location": "westeurope"}),
    ("oci", "oci.objectstorage", {}, "oci", {}),
])
def test_upload_table(registry: DistributionRegistry, image_type: str, upload: str, options: dict[str, Any],
                      cloud_type: str, cloud_options: dict[str, Any]) -> None:
    req = cloud(registry, ib("centos-9", image_type, upload, options), check_buildable=False)
    ir = req["image_request"]
    assert (ir["image_type"], ir["upload_options"]) == (cloud_type, cloud_options)
    assert req["distribution"] == "centos-9" and ir["architecture"] == "x86_64"
    assert "koji" not in req and "customizations" not in req
    assert cloud_spec_error(req) is None


@pytest.mark.parametrize(("image_type", "upload"), [
    ("guest-image", "aws"), ("aws", "aws.s3"), ("aws", "gcp"), ("gcp", "azure"), ("azure", "oci.objectstorage"),
    ("oci", "aws.s3"), ("vhd", "gcp"),
])
def test_invalid_image_type_for_upload_target(registry: DistributionRegistry, image_type: str, upload: str) -> None:
    e = refused(registry, ib("centos-9", image_type, upload, {"share_with_accounts": ["1"], **AZURE}))
    assert (e.status, e.reason) == (400, "Invalid image type for upload target")


def test_upload_refusals(registry: DistributionRegistry) -> None:
    e = refused(registry, ib("centos-9", "aws", "aws", {}))
    assert (e.status, e.reason) == (400, "Expected at least one source or account to share the image with")
    e = refused(registry, ib("centos-9", "aws", "aws", {"share_with_accounts": []}))
    assert e.reason == "Expected at least one source or account to share the image with"
    e = refused(registry, ib("centos-9", "azure", "azure", {"resource_group": "rg"}))
    assert (e.status, e.reason) == (400, "Request must contain tenant and subscription ids.")
    e = refused(registry, ib("centos-9", "azure", "azure", {"resource_group": "rg", "tenant_id": "t"}))
    assert e.reason == "Request must contain tenant and subscription ids."
    e = refused(registry, ib("centos-9", "aws", "aws", {"share_with_sources": ["12345"]}))
    assert e.status == 400 and "share_with_sources" in e.reason
    e = refused(registry, ib("centos-9", "aws", "nfs"))
    assert (e.status, e.reason) == (400, "Unknown UploadRequest type nfs")
    e = refused(registry, ib("centos-9", "aws", ""))
    assert (e.status, e.reason) == (400, "Exactly one upload request should be included")


def test_unconfigured_regions(registry: DistributionRegistry) -> None:
    bare = ImageBuilderConfig()
    e = refused(registry, ib("centos-9", "aws", "aws", {"share_with_accounts": ["1"]}), cfg=bare)
    assert e.status == 400 and "aws_region" in e.reason
    e = refused(registry, ib("centos-9", "gcp", "gcp"), cfg=bare)
    assert e.status == 400 and "gcp_region" in e.reason
    # aws.s3 without a region: the Cloud API's local upload ({}), the image stays with the compose
    req = cloud(registry, ib("centos-9", "guest-image", "aws.s3"), cfg=bare)
    assert req["image_request"]["upload_options"] == {}
    assert cloud_spec_error(req) is None


def test_snapshot_date_and_content_template(registry: DistributionRegistry) -> None:
    both = ib("centos-9", "guest-image", "aws.s3", ir={"snapshot_date": "2025-01-01", "content_template": "x"})
    e = refused(registry, both)
    assert (e.status, e.reason) == (400, "Either a snapshot date or content template can be specified, but not both")
    e = refused(registry, ib("centos-9", "guest-image", "aws.s3", ir={"snapshot_date": "2025-01-01"}))
    assert e.status == 400 and e.reason.startswith("image_requests[0].snapshot_date:")


def test_size_limits(registry: DistributionRegistry) -> None:
    big = ib("centos-9", "aws", "aws", {"share_with_accounts": ["1"]}, ir={"size": FS_MAX_SIZE + 1})
    e = refused(registry, big)
    assert (e.status, e.reason) == (400, f"Total AWS image size cannot exceed {FS_MAX_SIZE} bytes")
    fs = {"filesystem": [{"mountpoint": "/var", "min_size": FS_MAX_SIZE}, {"mountpoint": "/opt", "min_size": 1}]}
    e = refused(registry, ib("centos-9", "vhd", "azure", AZURE, customizations=fs))
    assert e.reason == f"Total Azure image size cannot exceed {FS_MAX_SIZE} bytes"
    ok = cloud(registry, ib("centos-9", "guest-image", "aws.s3", ir={"size": FS_MAX_SIZE + 1}))
    assert ok["image_request"]["size"] == FS_MAX_SIZE + 1


def test_architecture_not_in_the_file(registry: DistributionRegistry) -> None:
    e = refused(registry, ib("centos-9", "guest-image", "aws.s3", arch="s390x"))
    assert (e.status, e.reason) == (400, "Architecture not supported")


def test_image_types_osbuildd_cannot_build(registry: DistributionRegistry) -> None:
    e = refused(registry, ib("centos-9", "wsl", "aws.s3"))
    assert e.status == 400 and "wsl" in e.reason and "cannot be built by osbuildd" in e.reason
    assert "guest-image" in e.reason   # says what it can build
    e = refused(registry, ib("rhel-9", "guest-image", "aws.s3"))
    assert (e.status, e.reason) == (400, "osbuildd cannot build rhel-9 images")
    # a remote composer decides for itself
    assert cloud(registry, ib("rhel-9", "guest-image", "aws.s3"), check_buildable=False)["distribution"] == "rhel-9.8"


def test_repositories_from_the_file_filtered_by_tags(registry: DistributionRegistry) -> None:
    base = Repository(id="baseos", baseurl="https://example.com/baseos", gpgkey="KEY", check_gpg=True)
    edge = Repository(id="edge", metalink="https://example.com/edge", rhsm=True, image_type_tags=("edge-commit",))
    d = Distribution(name="el-test", file_name="el-test", description="", composer_name="el-9.9",
                     arches={"x86_64": Architecture("x86_64", ["guest-image", "edge-commit"], [base, edge])})
    req = cloud_compose_request(ib("el-test", "guest-image", "aws.s3"), d, CFG, check_buildable=False)
    assert req["distribution"] == "el-9.9"
    assert req["image_request"]["repositories"] == [
        {"rhsm": False, "baseurl": "https://example.com/baseos", "gpgkey": "KEY", "check_gpg": True}]
    req = cloud_compose_request(ib("el-test", "edge-commit", "aws.s3"), d, CFG, check_buildable=False)
    assert [r.get("baseurl") or r.get("metalink") for r in req["image_request"]["repositories"]] == [
        "https://example.com/baseos", "https://example.com/edge"]
    assert req["image_request"]["repositories"][1]["rhsm"] is True
    # the shipped centos-9: its repositories for the arch
    shipped = registry.get("centos-9")
    req = cloud(registry, ib("centos-9", "guest-image", "aws.s3"))
    want = [r.to_composer() for r in shipped.architecture("x86_64").repositories_for("guest-image")]
    assert req["image_request"]["repositories"] == want and want


def test_ostree_passed_through(registry: DistributionRegistry) -> None:
    ostree = {"url": "http://example.com/repo", "ref": "centos/9/x86_64/edge", "parent": "abc", "rhsm": False}
    req = cloud(registry, ib("centos-9", "edge-commit", "aws.s3", ir={"ostree": ostree}), check_buildable=False)
    assert req["image_request"]["ostree"] == ostree


# -- customizations ------------------------------------------------------------------------------

FULL: dict[str, Any] = {
    "packages": ["vim", "tmux"],
    "enabled_modules": [{"name": "nodejs", "stream": "22"}],
    "users": [{"name": "alice", "ssh_key": "ssh-ed25519 AAA", "password": "secret", "groups": ["wheel"]},
              {"name": "bob", "ssh_key": "ssh-rsa BBB", "password": ""}],
    "groups": [{"name": "devs", "gid": 1100}],
    "payload_repositories": [{"baseurl": "https://example.com/repo", "rhsm": False, "check_gpg": False}],
    "custom_repositories": [{"id": "extra", "name": "Extra", "baseurl": ["https://example.com/extra"],
                             "check_gpg": False, "enabled": True}],
    "filesystem": [{"mountpoint": "/var", "min_size": 2147483648}],
    "services": {"enabled": ["sshd"], "disabled": ["cups"], "masked": ["telnet"]},
    "hostname": "host1",
    "kernel": {"name": "kernel-debug", "append": "nosmt=force"},
    "timezone": {"timezone": "Europe/Berlin", "ntpservers": ["pool.ntp.org"]},
    "locale": {"languages": ["en_US.UTF-8"], "keyboard": "us"},
    "firewall": {"ports": ["22:tcp"], "services": {"enabled": ["ssh"], "disabled": ["telnet"]}},
    "files": [{"path": "/etc/motd", "data": base64.b64encode(b"hello\n").decode(), "data_encoding": "base64",
               "mode": "0644", "user": "root", "group": 0, "ensure_parents": True},
              {"path": "/etc/plain", "data": "plain"}],
    "directories": [{"path": "/etc/mydir", "mode": "0755", "user": "root", "group": "root", "ensure_parents": True}],
    "fips": {"enabled": True},
    "installation_device": "/dev/sda",
    "partitioning_mode": "lvm",
    "openscap": {"profile_id": "xccdf_org.ssgproject.content_profile_cis", "profile_name": "CIS"},
}


def test_customizations_field_by_field(registry: DistributionRegistry) -> None:
    body = ib("centos-9", "guest-image", "aws.s3", customizations=copy.deepcopy(FULL))
    c = cloud(registry, body)["customizations"]
    same = ("packages", "enabled_modules", "groups", "payload_repositories", "custom_repositories", "filesystem",
            "services", "hostname", "kernel", "timezone", "locale", "firewall", "directories", "fips",
            "installation_device", "partitioning_mode")
    assert {k: c[k] for k in same} == {k: FULL[k] for k in same}
    assert c["users"] == [{"name": "alice", "key": "ssh-ed25519 AAA", "password": "secret", "groups": ["wheel"]},
                          {"name": "bob", "key": "ssh-rsa BBB"}]
    assert c["files"] == [{"path": "/etc/motd", "data": "hello\n", "mode": "0644", "user": "root", "group": 0,
                           "ensure_parents": True}, {"path": "/etc/plain", "data": "plain"}]
    assert c["openscap"] == {"profile_id": "xccdf_org.ssgproject.content_profile_cis"}
    assert body["customizations"] == FULL   # the input is left as it was
    req = cloud(registry, body)
    assert cloud_spec_error(req) is None
    # osbuildd's Cloud API takes all of it but a file's ensure_parents (its blueprints lack the key)
    for node in req["customizations"]["files"]:
        node.pop("ensure_parents", None)
    [built] = compose_requests(req, Config(), "org-1")
    assert built.image_type == "qcow2" and built.distro == "centos-9"
    assert [p.name for p in built.blueprint.packages] == ["vim", "tmux"]


def test_customizations_refused_with_the_field(registry: DistributionRegistry) -> None:
    cases = {
        "customizations.openscap.policy_id": {"openscap": {"policy_id": "fef25b3c-b970-46da-a4e1-cc4d855b98dc"}},
        "customizations.aap_registration": {"aap_registration": {"ansible_callback_url": "u", "host_config_key": "k"}},
        "customizations.payload_repositories[0].id": {"payload_repositories": [{"id": "cs-uuid", "rhsm": False}]},
        "customizations.files[0].data": {"files": [{"path": "/x", "data": "!!!", "data_encoding": "base64"}]},
    }
    for field, cust in cases.items():
        e = refused(registry, ib("centos-9", "guest-image", "aws.s3", customizations=cust))
        assert e.status == 400 and e.reason.startswith(field) and e.field == field, (field, e.reason)


def test_subscription_dropped_unless_the_composer_registers(registry: DistributionRegistry) -> None:
    sub = {"organization": 2040324, "activation-key": "key", "server-url": "subscription.rhsm.redhat.com",
           "base-url": "http://cdn.redhat.com/", "insights": True, "rhc": True}
    cust = {"subscription": sub, "openscap": {"profile_id": "p"}}
    body = ib("centos-9", "guest-image", "aws.s3", customizations=cust)
    assert "subscription" not in cloud(registry, body)["customizations"]
    c = cloud(registry, body, subscription=True)["customizations"]
    assert c["subscription"] == {"organization": "2040324", "activation_key": "key",
                                 "server_url": "subscription.rhsm.redhat.com", "base_url": "http://cdn.redhat.com/",
                                 "insights": True, "rhc": True}
    assert c["services"] == {"enabled": ["rhcd"]}


# -- Debian --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["debian-12", "debian-13"])
def test_debian_request_is_one_osbuildds_cloud_api_builds(registry: DistributionRegistry, name: str) -> None:
    body = ib(name, "guest-image", "aws.s3", customizations={"packages": ["curl"], "hostname": "deb"})
    req = cloud(registry, body)
    # no repository lines: they would lose their suites; the distribution's own apply
    assert req["image_request"]["repositories"] == []
    assert req["distribution"] == name
    assert cloud_spec_error(req) is None
    [built] = compose_requests(req, Config(), "org-1")
    assert (built.distro, built.arch, built.image_type) == (name, "x86_64", "qcow2")
    assert built.repositories is None   # the distro's defaults, with their suites
    assert built.targets and built.targets[0].name == "org.osbuild.aws.s3"


def test_debian_aws_request(registry: DistributionRegistry) -> None:
    req = cloud(registry, ib("debian-12", "aws", "aws", {"share_with_accounts": ["123456789012"]}, arch="aarch64"))
    assert req["image_request"]["repositories"] == []
    [built] = compose_requests(req, Config(), "org-1")
    assert (built.arch, built.image_type) == ("aarch64", "ami")
    assert built.targets[0].options["shareWithAccounts"] == ["123456789012"]


# -- status --------------------------------------------------------------------------------------

def test_status_passes_through_and_converts_uploads() -> None:
    cs = {"id": "x", "kind": "ComposeStatus", "status": "success",
          "image_status": {"status": "success", "progress": {"done": 3, "total": 5,
                                                             "subprogress": {"done": 1, "total": 2}},
                           "upload_status": {"status": "success", "type": "aws",
                                             "options": {"ami": "ami-1", "region": "eu-west-1", "extra": 1}}}}
    request = {"distribution": "centos-9", "customizations": {"users": [{"name": "a", "password": "p"}]}}
    out = compose_status(cs, request)
    assert out["image_status"] == {"status": "success",
                                   "progress": {"done": 3, "total": 5, "subprogress": {"done": 1, "total": 2}},
                                   "upload_status": {"status": "success", "type": "aws",
                                                     "options": {"ami": "ami-1", "region": "eu-west-1"}}}
    assert out["request"]["customizations"]["users"] == [{"name": "a", "hasPassword": True}]
    for kind, opts, want in [
        ("aws.s3", {"url": "https://s3/x"}, {"url": "https://s3/x"}),
        ("gcp", {"image_name": "i", "project_id": "p"}, {"image_name": "i", "project_id": "p"}),
        ("azure", {"image_name": "i"}, {"image_name": "i"}),
        ("oci.objectstorage", {"url": "https://oci/x"}, {"url": "https://oci/x"}),
    ]:
        st = compose_status({"image_status": {"status": "building",
                                              "upload_status": {"status": "running", "type": kind, "options": opts}}})
        assert st == {"image_status": {"status": "building",
                                       "upload_status": {"status": "running", "type": kind, "options": want}}}


def test_status_error_unwrapped_to_the_root_cause() -> None:
    root = {"id": 22, "reason": "osbuild build failed", "details": ["stage org.osbuild.rpm failed"]}
    nested = {"id": 9, "reason": "Manifest dependency failed",
              "details": [{"id": 5, "reason": "depsolve dependency failed", "details": [root]}]}
    wrapped = {"id": 26, "reason": "dependency failed", "details": [{"id": 28, "reason": "target", "details": [nested]}]}
    out = compose_status({"image_status": {"status": "failure", "error": wrapped}})
    assert out["image_status"]["error"] == root
    # other ids, empty or non-object details: as they are
    for err in ({"id": 10, "reason": "r", "details": [{"id": 1, "reason": "x"}]},
                {"id": 5, "reason": "r", "details": []}, {"id": 9, "reason": "r", "details": ["text"]},
                {"id": 26, "reason": "r", "details": "text"}, {"id": 28, "reason": "r"}):
        assert compose_status({"image_status": {"status": "failure", "error": err}})["image_status"]["error"] == err


def test_redacted() -> None:
    stored: dict[str, Any] = {"distribution": "centos-9", "customizations": {"users": [
        {"name": "a", "password": "$6$hash", "ssh_key": "k"}, {"name": "b", "ssh_key": "k"},
        {"name": "c", "password": ""}]}}
    out = redacted(stored)
    assert out["customizations"]["users"] == [{"name": "a", "ssh_key": "k", "hasPassword": True},
                                              {"name": "b", "ssh_key": "k", "hasPassword": False},
                                              {"name": "c", "hasPassword": True}]
    assert stored["customizations"]["users"][0]["password"] == "$6$hash"   # a copy
    assert redacted({"distribution": "centos-9"}) == {"distribution": "centos-9"}


# -- the composer's refusals ---------------------------------------------------------------------

@pytest.mark.parametrize(("status", "body", "want_status", "want"), [
    (400, {"id": "10", "reason": "Error resolving OSTree repo x", "details": "d"}, 400, "Error resolving OSTree repo"),
    (400, {"id": "24", "reason": "BaseURL must be specified for payload repositories"}, 400,
     "BaseURL must be specified for payload repositories"),
    (400, {"id": "29", "reason": "Repository gpg key must be set"}, 400, "Repository gpg key must be set"),
    (400, {"id": "35", "reason": "Invalid customization", "details": "customizations.rpm: no"}, 400,
     "Invalid customization: customizations.rpm: no"),
    (400, {"id": "6", "reason": "Unsupported image type"}, 400, "Unsupported image type"),
    (500, {"id": "1000", "reason": "Internal server error", "details": "boom"}, 500,
     "Failed posting compose request to osbuild-composer. Internal server error: boom"),
    (503, {"reason": "composer unreachable: connection refused"}, 500,
     "Failed posting compose request to osbuild-composer. composer unreachable: connection refused"),
])
def test_composer_refusal(status: int, body: dict[str, Any], want_status: int, want: str) -> None:
    e = composer_refusal(ComposerError(status, body))
    assert (e.status, e.reason) == (want_status, want)


# -- blueprints ----------------------------------------------------------------------------------

BLUEPRINT: dict[str, Any] = {
    "name": "bp", "description": "my blueprint", "distribution": "centos-9",
    "image_requests": [
        {"architecture": "x86_64", "image_type": "guest-image", "upload_request": {"type": "aws.s3", "options": {}},
         "snapshot_date": "2025-01-01"},
        {"architecture": "x86_64", "image_type": "aws",
         "upload_request": {"type": "aws", "options": {"share_with_accounts": ["1"]}}},
    ],
    "customizations": {"users": [{"name": "u", "password": "$6$x", "ssh_key": "k"}],
                       "cacerts": {"pem_certs": ["PEM"]},
                       "subscription": {"organization": 1, "activation-key": "secret", "server-url": "s",
                                        "base-url": "b", "insights": False},
                       "aap_registration": {"ansible_callback_url": "u", "host_config_key": "hck"},
                       "files": [{"path": "/usr/local/sbin/register-satellite", "data": "token"},
                                 {"path": "/etc/keep", "data": "x"}],
                       "packages": ["vim"]},
}


def test_blueprint_compose_requests() -> None:
    reqs = blueprint_compose_requests(BLUEPRINT, None)
    assert [r["image_requests"][0]["image_type"] for r in reqs] == ["guest-image", "aws"]
    assert reqs[1] == {"distribution": "centos-9", "customizations": BLUEPRINT["customizations"],
                       "image_requests": [BLUEPRINT["image_requests"][1]], "image_name": "bp",
                       "image_description": "my blueprint", "client_id": "api"}
    assert [r["image_requests"][0]["image_type"] for r in blueprint_compose_requests(BLUEPRINT, ["aws"])] == ["aws"]
    assert blueprint_compose_requests(BLUEPRINT, ["wsl"]) == []   # upstream skips, no error
    assert blueprint_compose_requests(BLUEPRINT, None, client_id="ui")[0]["client_id"] == "ui"


def test_export_blueprint() -> None:
    meta = {"parent_id": "3f0c7e4a-0000-4000-8000-000000000000", "exported_at": "2025-01-01 00:00:00 +0000 UTC"}
    out = export_blueprint(BLUEPRINT, meta)
    assert out == {
        "name": "bp", "description": "my blueprint", "distribution": "centos-9", "snapshot_date": "2025-01-01",
        "metadata": {**meta, "is_on_prem": False},
        "customizations": {"users": [{"name": "u", "ssh_key": "k", "hasPassword": True}],
                           "aap_registration": {"ansible_callback_url": "u", "host_config_key": ""},
                           "files": [{"path": "/etc/keep", "data": "x"}], "packages": ["vim"]}}
    assert "id" not in out and "image_requests" not in out
    assert BLUEPRINT["customizations"]["users"][0]["password"] == "$6$x"   # the stored body is untouched
