"""A Cloud API ComposeRequest (already validated against the spec) -> osbuildd ComposeRequests.

Upstream's rules (``cloudapi/v2/compose.go``, ``imagerequest.go``, ``handler.go``): the API's image
type names map onto the distributions' own, ``customizations`` and ``blueprint`` exclude each other,
the blueprint's distro/arch must agree with the request's, every repository needs a location,
``upload_options`` is the image type's default target and ``upload_targets`` add more. Each refusal
is a ``CloudError`` with upstream's id; nothing here touches storage.
"""

from __future__ import annotations

import uuid
from typing import Any

from osbuildd import distro as distros
from osbuildd.blueprint import Blueprint, BlueprintError
from osbuildd.compose import ComposeRequest, UploadTarget
from osbuildd.config import Config

from .errors import CloudError
from .packages import repository

# handler.go imageTypeFromApiImageType; names not listed are the same on both sides
API_TO_INTERNAL = {
    "aws": "ami", "aws-rhui": "ec2", "aws-ha-rhui": "ec2-ha", "aws-sap-rhui": "ec2-sap",
    "gcp": "gce", "gcp-rhui": "gce-rhui", "azure": "vhd", "azure-rhui": "azure-rhui",
    "guest-image": "qcow2", "vsphere": "vmdk", "vsphere-ova": "ova",
    "edge-commit": "rhel-edge-commit", "edge-installer": "rhel-edge-installer",
    "edge-container": "rhel-edge-container",
}
INTERNAL_TO_API = {v: k for k, v in API_TO_INTERNAL.items()}

# the target upload_options stands for, per API image type (imagerequest.go)
DEFAULT_TARGET = {"aws": "aws", "aws-rhui": "aws", "aws-ha-rhui": "aws", "aws-sap-rhui": "aws",
                  "gcp": "gcp", "gcp-rhui": "gcp", "azure": "azure", "azure-rhui": "azure",
                  "azure-eap7-rhui": "azure", "azure-sap-rhui": "azure", "oci": "oci.objectstorage",
                  "edge-container": "container", "iot-container": "container"}
TARGET_NAMES = {"aws": "org.osbuild.aws", "aws.s3": "org.osbuild.aws.s3", "gcp": "org.osbuild.gcp",
                "azure": "org.osbuild.azure.image", "local": "org.osbuild.worker.server"}
API_TARGET = {v: k for k, v in TARGET_NAMES.items()} | {"org.osbuild.local": "local"}
UNSUPPORTED_TARGETS = ("container", "oci.objectstorage", "pulp.ostree")
# upstream builds several images only for Koji; osbuildd builds up to this many in any compose
MAX_IMAGES = 16

# Cloud Customizations keys that are a blueprint's customizations under another name
_RENAMED = {"users": "user", "groups": "group", "custom_repositories": "repositories"}
_TOP_LEVEL = {"packages", "enabled_modules", "containers", "payload_repositories"}
_NOT_SUPPORTED = {"subscription": "Red Hat subscriptions", "rhsm": "Red Hat subscription manager settings"}


def _fail(error_id: int, details: str) -> CloudError:
    return CloudError(error_id, details)


def image_requests(body: dict[str, Any]) -> list[dict[str, Any]]:
    if body.get("koji") is not None:
        raise _fail(42, "koji: Koji composes are not supported by osbuildd")
    if body.get("bootc") is not None:
        raise _fail(42, "bootc: bootc image builds are not supported by osbuildd")
    if body.get("blueprint_id") is not None:
        raise _fail(42, "blueprint_id: stored blueprints are not supported on the Cloud API, send the blueprint")
    single, several = body.get("image_request"), body.get("image_requests")
    if single is not None and several is not None:
        raise _fail(42, "image_request and image_requests: give one of them")
    reqs = [single] if single is not None else list(several or [])
    if not reqs:
        raise _fail(25, "image_request: missing")
    if len(reqs) > MAX_IMAGES:
        raise _fail(25, f"image_requests: {len(reqs)} image requests; at most {MAX_IMAGES} in one compose")
    return reqs


def _blueprint(body: dict[str, Any]) -> tuple[Blueprint, list[dict[str, Any]]]:
    """(the blueprint, payload repositories)."""
    cust, bp = body.get("customizations"), body.get("blueprint")
    if cust is not None and bp is not None:
        raise _fail(39, "customizations and blueprint: give one of them")
    try:
        if bp is not None:
            data = dict(bp)
            data.setdefault("name", "")
            return Blueprint.from_json(data), []
        return _from_customizations(cust or {})
    except BlueprintError as e:
        raise _fail(35, f"{e.field}: {e.message}" if getattr(e, "field", "") else str(e)) from None


def _from_customizations(cust: dict[str, Any]) -> tuple[Blueprint, list[dict[str, Any]]]:
    for key, what in _NOT_SUPPORTED.items():
        if key in cust:
            raise _fail(35, f"customizations.{key}: {what} are not supported by osbuildd")
    data: dict[str, Any] = {"name": "", "packages": [{"name": p} for p in cust.get("packages") or []]}
    if cust.get("enabled_modules"):
        data["enabled_modules"] = cust["enabled_modules"]
    if cust.get("containers"):
        data["containers"] = cust["containers"]
    inner = {_RENAMED.get(k, k): v for k, v in cust.items() if k not in _TOP_LEVEL}
    if inner:
        data["customizations"] = inner
    return Blueprint.from_json(data), list(cust.get("payload_repositories") or [])


def _name(options: dict[str, Any], key: str) -> str:
    return str(options.get(key) or f"composer-api-{uuid.uuid4()}")


def _target(kind: str, options: dict[str, Any], where: str) -> UploadTarget:
    if kind in UNSUPPORTED_TARGETS:
        raise _fail(38, f"{where}: the {kind} upload target is not supported by osbuildd")
    if kind not in TARGET_NAMES:
        raise _fail(38, f"{where}: unknown upload target {kind!r}")
    key = f"composer-api-{uuid.uuid4()}"
    o: dict[str, Any]
    if kind == "aws":
        o = {"region": options.get("region", ""), "key": key,
             "shareWithAccounts": list(options.get("share_with_accounts") or [])}
        return UploadTarget(TARGET_NAMES[kind], _name(options, "snapshot_name"), o)
    if kind == "aws.s3":
        o = {"region": options.get("region", ""), "key": key, "public": bool(options.get("public"))}
        return UploadTarget(TARGET_NAMES[kind], key, o)
    if kind == "gcp":
        o = {"region": options.get("region", ""), "object": key,
             "shareWithAccounts": list(options.get("share_with_accounts") or [])}
        if options.get("bucket"):
            o["bucket"] = options["bucket"]
        return UploadTarget(TARGET_NAMES[kind], _name(options, "image_name"), o)
    if kind == "azure":
        o = {k: options.get(k, "") for k in ("tenant_id", "subscription_id", "resource_group", "location")}
        if options.get("hyper_v_generation"):
            o["hyperv_generation"] = options["hyper_v_generation"]
        return UploadTarget(TARGET_NAMES[kind], _name(options, "image_name"), o)
    return UploadTarget(TARGET_NAMES["local"], "", {})


def _targets(ir: dict[str, Any], api_type: str) -> list[UploadTarget]:
    out = []
    if ir.get("upload_options") is not None:
        kind = DEFAULT_TARGET.get(api_type, "aws.s3")
        opts = ir["upload_options"]
        if kind == "aws.s3" and not (isinstance(opts, dict) and "region" in opts):
            kind = "local" if opts == {} else kind
        out.append(_target(kind, opts if isinstance(opts, dict) else {}, "image_request.upload_options"))
    for i, t in enumerate(ir.get("upload_targets") or []):
        out.append(_target(str(t.get("type", "")), t.get("upload_options") or {}, f"image_request.upload_targets[{i}]"))
    return out


def compose_requests(body: dict[str, Any], config: Config, channel: str) -> list[ComposeRequest]:
    """One compose service request per image the Cloud request asks for, in its order."""
    irs = image_requests(body)
    bp, payload = _blueprint(body)
    reqs = [_image(body, ir, bp, payload, config, channel) for ir in irs]
    if len(reqs) > 1:
        for i, r in enumerate(reqs):
            r.cloud_group = {"index": i, "size": len(reqs)}
    return reqs


def _image(body: dict[str, Any], ir: dict[str, Any], bp: Blueprint, payload: list[dict[str, Any]],
           config: Config, channel: str) -> ComposeRequest:
    name = str(body.get("distribution") or "")
    if bp.distro and name and bp.distro != name:
        raise _fail(40, f"blueprint.distro {bp.distro!r} is not the request's distribution {name!r}")
    name = config.distros.aliases.get(bp.distro or name, bp.distro or name)
    try:
        d = distros.get(name)
    except distros.UnknownDistro:
        raise _fail(4, f"distribution {name!r}; known: {', '.join(distros.names())}") from None
    arch_name = str(ir.get("architecture") or "")
    if bp.arch and bp.arch != arch_name:
        raise _fail(41, f"blueprint.architecture {bp.arch!r} is not the request's architecture {arch_name!r}")
    try:
        arch = d.arch(arch_name)
    except distros.UnknownArch:
        raise _fail(5, f"architecture {arch_name!r} for {d.name}; known: {', '.join(sorted(d.arches))}") from None
    api_type = str(ir.get("image_type") or "")
    internal = API_TO_INTERNAL.get(api_type, api_type)
    if internal not in arch.image_type_names():
        known = ", ".join(sorted(INTERNAL_TO_API.get(t, t) for t in arch.image_type_names()))
        raise _fail(6, f"image type {api_type!r} for {d.name}/{arch.name}; known: {known}")
    repos = [repository(d, arch, i, raw) for i, raw in enumerate(ir.get("repositories") or [])]
    for i, raw in enumerate(payload):
        if not raw.get("baseurl"):
            raise _fail(24, f"customizations.payload_repositories[{i}]: baseurl must be specified")
        # upstream adds them to the payload's package set; here they join the compose's repositories
        repos.append(repository(d, arch, len(repos), raw))
    size = ir.get("size")
    return ComposeRequest(
        distro=d.name, arch=arch.name, image_type=internal, blueprint=bp,
        size=int(size) if size else None, repositories=repos or None, targets=_targets(ir, api_type),
        channel=channel, origin="cloud", api_request=body)
