"""A Cloud API ComposeRequest (already validated against the spec) -> osbuildd ComposeRequests, one per
image request.

Upstream's rules (``cloudapi/v2/compose.go``, ``imagerequest.go``, ``handler.go``): the API's image
type names map onto the distributions' own (``API_TO_INTERNAL``); ``customizations`` and
``blueprint`` exclude each other (39); the blueprint's ``distro`` overrides ``distribution``;
aliases come from ``[distros.aliases]``; an unknown distribution is 4, architecture 5, image type 6;
every repository needs a baseurl, mirrorlist or metalink (7), ``check_gpg`` needs a ``gpgkey`` (29),
payload repositories need a baseurl (24); ``upload_options`` is the image type's default target
(``DEFAULT_TARGET``), ``upload_targets`` add more, each allowed only for the image types upstream
allows it for (38). The blueprint is initialised as upstream's (version 0.0.0, passwords hashed)
before anything is stored.

osbuildd's answers where upstream has no rule for it:
- ``koji``, ``bootc`` and ``blueprint_id`` are refused (42) with the reason, as are the ``container``,
  ``oci.objectstorage`` and ``pulp.ostree`` targets (38) and the ``subscription`` customization (35):
  osbuildd does not have them. A customization osbuildd's blueprints cannot hold is 35 naming it,
  never silently dropped.
- ``upload_options: {}`` for an image type whose default target needs options (aws.s3 needs
  ``region``) is the spec's LocalUploadOptions: the image stays in the compose's results and
  ``/download`` serves it. Neither ``upload_options`` nor ``upload_targets``: 42 (upstream: 500 1004).
- ``local_save`` (not in the spec's UploadOptions, so the validator refuses it first) is honoured
  with ``OSBUILD_LOCALSAVE`` set, as upstream, else 36.
- Several image requests (upstream: Koji only) are several composes under one id (at most MAX_IMAGES).
- ``upload_targets`` keep the request's order, then the ``upload_options`` target (upstream prepends
  each upload target, reversing them).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import os
import uuid
from typing import Any

from osbuildd import distro as distros
from osbuildd.blueprint import Blueprint, BlueprintError
from osbuildd.compose import ComposeRequest, ComposeRequestError, ComposeService, UploadTarget
from osbuildd.config import Config
from osbuildd.distro import Arch, Distro, ImageType, Repository

from .errors import CloudRequestError
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

_AWS = frozenset({"aws", "aws-rhui", "aws-ha-rhui", "aws-sap-rhui"})
_AZURE = frozenset({"azure", "azure-cvm", "azure-rhui", "azure-eap7-rhui", "azure-sap-rhui", "azure-sapapps-rhui"})
_GCP = frozenset({"gcp", "gcp-rhui"})
_S3 = frozenset({"edge-commit", "edge-installer", "guest-image", "image-installer", "iot-bootable-container",
                 "iot-commit", "iot-installer", "iot-raw-image", "iot-simplified-installer", "live-installer",
                 "minimal-raw", "vsphere", "vsphere-ova", "wsl"})
_CONTAINER = frozenset({"edge-container", "iot-bootable-container", "iot-container"})
# imagerequest.go getDefaultTarget: the target ``upload_options`` stands for
DEFAULT_TARGET = ({t: "aws" for t in _AWS} | {t: "azure" for t in _AZURE} | {t: "gcp" for t in _GCP}
                  | {t: "aws.s3" for t in _S3 - {"iot-bootable-container"}} | {t: "container" for t in _CONTAINER}
                  | {"oci": "oci.objectstorage"})
# imagerequest.go targetSupportMap: the image types each upload target may take
TARGET_SUPPORT = {
    "aws": _AWS, "aws.s3": _S3, "gcp": _GCP, "azure": _AZURE, "container": _CONTAINER,
    "oci.objectstorage": frozenset({"oci"}),
    # osbuildd: tar images too (an osbuildd image type, kept with the compose for /download)
    "local": _AWS | _AZURE | _S3 | _CONTAINER | {"oci", "tar"},
}
TARGET_NAMES = {"aws": "org.osbuild.aws", "aws.s3": "org.osbuild.aws.s3", "gcp": "org.osbuild.gcp",
                "azure": "org.osbuild.azure.image", "local": "org.osbuild.worker.server"}
API_TARGET = {v: k for k, v in TARGET_NAMES.items()} | {"org.osbuild.local": "local"}
UNSUPPORTED_TARGETS = ("container", "oci.objectstorage", "pulp.ostree")
# what each target's upload options must name for it to be that target (the spec's required keys)
_REQUIRED = {"aws": ("region",), "aws.s3": ("region",), "gcp": ("region",),
             "azure": ("tenant_id", "subscription_id", "resource_group")}
# upstream builds several images only for Koji; osbuildd builds up to this many in any compose
MAX_IMAGES = 16
LOCALSAVE_ENV = "OSBUILD_LOCALSAVE"
BOOTC_TYPES = frozenset({"bootable-container-iso", "iot-bootable-container"})
EMPTY_BLUEPRINT = "empty blueprint"   # upstream's name of the blueprint made of customizations


def _fail(error_id: int, details: str) -> CloudRequestError:
    return CloudRequestError(error_id, details)


# -- the request ---------------------------------------------------------------------------------


def image_requests(body: dict[str, Any]) -> list[dict[str, Any]]:
    if body.get("koji") is not None:
        raise _fail(42, "koji: Koji composes are not supported by osbuildd")
    if body.get("bootc") is not None:
        raise _fail(42, "bootc: bootc image builds are not supported by osbuildd")
    if body.get("blueprint_id") is not None:
        raise _fail(42, "blueprint_id: stored blueprints are not supported on the Cloud API, send the blueprint")
    single, several = body.get("image_request"), body.get("image_requests")
    if single is not None and several is not None:
        raise _fail(25, "image_request and image_requests: give one of them")
    reqs = [single] if single is not None else list(several or [])
    if not reqs:
        raise _fail(25, "image_request: missing")
    if len(reqs) > MAX_IMAGES:
        raise _fail(25, f"image_requests: {len(reqs)} image requests; at most {MAX_IMAGES} in one compose")
    return reqs


def has_password(body: dict[str, Any]) -> bool:
    """Whether translating ``body`` hashes a password (CPU-heavy: worth a thread)."""
    users = [*((body.get("customizations") or {}).get("users") or []),
             *(((body.get("blueprint") or {}).get("customizations") or {}).get("user") or [])]
    return any(isinstance(u, dict) and u.get("password") for u in users)


def compose_requests(body: dict[str, Any], config: Config, channel: str) -> list[ComposeRequest]:
    """One compose service request per image the Cloud request asks for, in its order. Raises
    CloudRequestError with upstream's id. Pure (may hash passwords: see has_password)."""
    if body.get("customizations") is not None and body.get("blueprint") is not None:
        raise _fail(39, "customizations and blueprint: give one of them")
    irs = image_requests(body)
    bp, payload = blueprint_of(body)
    d = _distro(bp.distro or str(body.get("distribution") or ""), config)
    kept = stored_request(body, bp)
    return [_image(kept, i if len(irs) > 1 else None, ir, bp, payload, d, channel) for i, ir in enumerate(irs)]


def stored_request(body: dict[str, Any], bp: Blueprint) -> dict[str, Any]:
    """The request as osbuildd keeps it (``/metadata``'s ``request``): as sent, but a user's password
    is kept as the hash the image gets (the spec takes a crypted password as well), never in clear."""
    if not has_password(body):
        return body
    hashed = {u.name: u.password for u in (bp.customizations.user if bp.customizations else [])}
    out = copy.deepcopy(body)
    for users in ((out.get("customizations") or {}).get("users") or [],
                  ((out.get("blueprint") or {}).get("customizations") or {}).get("user") or []):
        for u in users:
            if isinstance(u, dict) and u.get("password"):
                crypted = hashed.get(str(u.get("name")))
                if crypted:
                    u["password"] = crypted
                else:
                    u.pop("password")
    return out


def _distro(name: str, config: Config) -> Distro:
    canonical = config.distros.aliases.get(name, name)
    try:
        return distros.get(canonical)
    except distros.UnknownDistro:
        raise _fail(4, f"distribution {name!r}; known: {', '.join(distros.names())}") from None


def _image(body: dict[str, Any], index: int | None, ir: dict[str, Any], bp: Blueprint,
           payload: list[dict[str, Any]], d: Distro, channel: str) -> ComposeRequest:
    at = "image_request" if index is None else f"image_requests[{index}]"
    arch_name = str(ir.get("architecture") or "")
    try:
        arch = d.arch(arch_name)
    except distros.UnknownArch:
        raise _fail(5, f"{at}.architecture {arch_name!r} for {d.name}; known: {', '.join(sorted(d.arches))}") from None
    api_type = str(ir.get("image_type") or "")
    if api_type in BOOTC_TYPES:
        raise _fail(6, f"{at}.image_type {api_type!r}: bootc image types are not supported by osbuildd")
    try:
        it = arch.image_type(API_TO_INTERNAL.get(api_type, api_type))
    except distros.UnknownImageType:
        known = ", ".join(sorted(INTERNAL_TO_API.get(t, t) for t in arch.image_type_names()))
        raise _fail(6, f"{at}.image_type {api_type!r} for {d.name}/{arch.name}; known: {known}") from None
    repos = [repository(d, arch, i, raw) for i, raw in enumerate(ir.get("repositories") or [])]
    size = ir.get("size")
    return ComposeRequest(
        distro=d.name, arch=arch.name, image_type=it.name, blueprint=bp,
        size=int(size) if size else None, repositories=repos or None,
        payload_repositories=_payload_repositories(d, arch, payload) or None,
        targets=targets(ir, api_type, it, d, at), channel=channel, origin="cloud", api_request=body)


def _payload_repositories(d: Distro, arch: Arch, payload: list[dict[str, Any]]) -> list[Repository]:
    out = []
    for i, raw in enumerate(payload):
        if not isinstance(raw, dict) or not raw.get("baseurl"):
            raise _fail(24, f"customizations.payload_repositories[{i}]: baseurl must be specified")
        out.append(dataclasses.replace(repository(d, arch, i, raw), id=f"payload-{i}"))
    return out


# the compose service's refusal topics as upstream's error ids
_TOPIC_IDS = {"distro": 4, "arch": 5, "image_type": 6, "repositories": 7, "blueprint": 35, "targets": 38}


def refusal_details(e: ComposeRequestError) -> str:
    """"<field>: <message>", the field named once (a blueprint's own messages start with it)."""
    inner = e.field.removeprefix("blueprint.")
    if inner and e.message.startswith(f"{inner}:"):
        return f"blueprint.{e.message}" if e.field != inner else e.message
    return str(e)


async def submit(compose: ComposeService, config: Config, body: dict[str, Any], channel: str,
                 *, test: int | None = None) -> str:
    """``POST /compose``: translate the (spec-valid) request and enqueue its images as one compose
    under ``channel``; its id. CloudRequestError for every refusal, with upstream's id. ``test`` (the
    image-builder API's ``?test=``): 2 a finished fake compose of the first image, 1 a failed one."""
    if has_password(body):   # hashing a password costs milliseconds of CPU: not on the loop
        reqs = await asyncio.to_thread(compose_requests, body, config, channel)
    else:
        reqs = compose_requests(body, config, channel)
    try:
        if test is not None:
            return await compose.create_fake(reqs[0], finished=test == 2)
        return await compose.enqueue_group(reqs)
    except ComposeRequestError as e:
        raise CloudRequestError(_TOPIC_IDS.get(e.topic, 42), refusal_details(e)) from None


# -- targets -------------------------------------------------------------------------------------


def targets(ir: dict[str, Any], api_type: str, it: ImageType, d: Distro, at: str = "image_request") -> list[UploadTarget]:
    """The build's targets: each ``upload_targets`` entry in order, then the one ``upload_options``
    stands for. Neither given: 42. ``local_save``: the local target alone (OSBUILD_LOCALSAVE)."""
    opts = ir.get("upload_options")
    uploads = ir.get("upload_targets") or []
    if isinstance(opts, dict) and opts.get("local_save"):
        if not os.environ.get(LOCALSAVE_ENV):
            raise _fail(36, f"{at}.upload_options.local_save: set {LOCALSAVE_ENV} for the daemon to allow it")
        return [_target("local", {}, api_type, it, d, f"{at}.upload_options")]
    if opts is None and not uploads:
        raise _fail(42, f"{at}: give upload_options or upload_targets (nowhere to put the image)")
    out = [_target(str(t.get("type", "")), t.get("upload_options") or {}, api_type, it, d,
                   f"{at}.upload_targets[{i}]", check_support=True) for i, t in enumerate(uploads)]
    if opts is not None:
        if not isinstance(opts, dict):
            raise _fail(30, f"{at}.upload_options: must be an object")
        kind = DEFAULT_TARGET.get(api_type)
        if kind is None:
            raise _fail(6, f"{at}.image_type {api_type!r} has no default upload target")
        if not opts and _REQUIRED.get(kind):
            kind = "local"   # {} is the spec's LocalUploadOptions: keep the image here
        out.append(_target(kind, opts, api_type, it, d, f"{at}.upload_options"))
    return out


def _target(kind: str, options: dict[str, Any], api_type: str, it: ImageType, d: Distro, where: str,
            check_support: bool = False) -> UploadTarget:
    if kind in UNSUPPORTED_TARGETS:
        raise _fail(38, f"{where}: the {kind} upload target is not supported by osbuildd")
    if kind not in TARGET_NAMES:
        raise _fail(38, f"{where}: unknown upload target {kind!r}")
    if check_support and api_type not in TARGET_SUPPORT[kind]:
        raise _fail(38, f"{where}: the {kind} upload target does not take {api_type} images")
    missing = [k for k in _REQUIRED.get(kind, ()) if not options.get(k)]
    if missing:
        raise _fail(30, f"{where}: the {kind} upload target needs {', '.join(missing)}")
    key = f"composer-api-{uuid.uuid4()}"
    name = TARGET_NAMES[kind]
    if kind == "aws":
        o: dict[str, Any] = {"region": options["region"], "key": key,
                             "shareWithAccounts": list(options.get("share_with_accounts") or [])}
        boot = {"hybrid": "uefi-preferred", "uefi": "uefi", "legacy": "legacy-bios"}.get(str(it.boot_mode))
        if boot:
            o["bootMode"] = boot
        return UploadTarget(name, str(options.get("snapshot_name") or key), o)
    if kind == "aws.s3":
        return UploadTarget(name, key, {"region": options["region"], "key": key, "public": bool(options.get("public"))})
    if kind == "gcp":
        o = {"region": options["region"], "os": d.name, "object": f"{key}.tar.gz",
             "shareWithAccounts": list(options.get("share_with_accounts") or [])}
        if options.get("bucket"):
            o["bucket"] = options["bucket"]
        return UploadTarget(name, str(options.get("image_name") or key), o)
    if kind == "azure":
        o = {k: options[k] for k in ("tenant_id", "subscription_id", "resource_group")}
        if options.get("location"):
            o["location"] = options["location"]
        o["hyperv_generation"] = "V2" if options.get("hyper_v_generation") == "V2" else "V1"
        return UploadTarget(name, str(options.get("image_name") or key), o)
    return UploadTarget(name, it.filename, {})


# -- the blueprint -------------------------------------------------------------------------------


def blueprint_of(body: dict[str, Any]) -> tuple[Blueprint, list[dict[str, Any]]]:
    """(the initialised blueprint, payload repositories) of the request: its ``blueprint``, else one
    made of its ``customizations`` (upstream's "empty blueprint"). 35 for what it cannot hold."""
    raw = body.get("blueprint")
    try:
        if raw is not None:
            data, where = _from_blueprint(raw), "blueprint"
            payload: list[dict[str, Any]] = []
        else:
            cust = body.get("customizations") or {}
            data, payload, where = from_customizations(cust), list(cust.get("payload_repositories") or []), "customizations"
        bp = Blueprint.from_dict(data)
        if bp.unknown_keys:
            raise _fail(35, f"{where}: {', '.join(bp.unknown_keys)}: not supported by osbuildd")
        bp.initialize()
    except BlueprintError as e:
        raise _fail(35, f"{e.field}: {e.message}" if e.field else str(e)) from None
    return bp, payload


def _containers(raw: list[Any]) -> list[dict[str, Any]]:
    out = []
    for c in raw:
        c = dict(c)
        if "tls_verify" in c:
            c["tls-verify"] = c.pop("tls_verify")
        out.append(c)
    return out


def _from_blueprint(raw: dict[str, Any]) -> dict[str, Any]:
    """The Cloud API's Blueprint is upstream's blueprint JSON but for the containers' ``tls_verify``."""
    data = copy.deepcopy(raw)
    if data.get("containers"):
        data["containers"] = _containers(data["containers"])
    return data


# Cloud Customizations keys a blueprint's customizations have under the same name and shape
_SAME = ("hostname", "kernel", "services", "timezone", "locale", "firewall", "directories", "files",
         "installation_device", "partitioning_mode", "fdo", "ignition", "installer", "rpm", "rhsm", "cacerts",
         "disk", "dnf", "openscap")
_REPO_KEYS = {"baseurl": "baseurls", "gpgkey": "gpgkeys", "check_gpg": "gpgcheck", "check_repo_gpg": "repo_gpgcheck",
              "ssl_verify": "sslverify"}
_NOT_SUPPORTED = {"subscription": "registering the image with Red Hat Subscription Management is not supported "
                                  "by osbuildd (no subscription-manager in its images)"}
_TOP = ("packages", "enabled_modules", "containers", "payload_repositories")


def from_customizations(cust: dict[str, Any]) -> dict[str, Any]:
    """Upstream's GetBlueprintFromCustomizations as blueprint JSON (Blueprint.from_dict's input)."""
    for key, why in _NOT_SUPPORTED.items():
        if cust.get(key) is not None:
            raise _fail(35, f"customizations.{key}: {why}")
    data: dict[str, Any] = {"name": EMPTY_BLUEPRINT, "packages": [{"name": p} for p in cust.get("packages") or []]}
    if cust.get("enabled_modules"):
        data["enabled_modules"] = cust["enabled_modules"]
    if cust.get("containers"):
        data["containers"] = _containers(cust["containers"])
    inner: dict[str, Any] = {k: copy.deepcopy(cust[k]) for k in _SAME if cust.get(k) is not None}
    if cust.get("users"):
        inner["user"] = [{k: u[k] for k in ("name", "key", "password", "groups") if k in u} for u in cust["users"]]
    if cust.get("groups"):
        inner["group"] = [dict(g) for g in cust["groups"]]
    if cust.get("filesystem"):
        inner["filesystem"] = [{"mountpoint": f.get("mountpoint", ""), "minsize": f.get("min_size", 0)}
                               for f in cust["filesystem"]]
    if cust.get("custom_repositories"):
        inner["repositories"] = [{_REPO_KEYS.get(k, k): v for k, v in r.items()} for r in cust["custom_repositories"]]
    if isinstance(cust.get("fips"), dict) and cust["fips"].get("enabled") is not None:
        inner["fips"] = bool(cust["fips"]["enabled"])
    unknown = sorted(set(cust) - set(_SAME) - set(_TOP) - {"users", "groups", "filesystem", "custom_repositories",
                                                            "fips", *_NOT_SUPPORTED})
    if unknown:
        raise _fail(35, f"customizations.{unknown[0]}: not supported by osbuildd")
    if inner:
        data["customizations"] = inner
    return data
