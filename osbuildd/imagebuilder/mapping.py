"""image-builder's requests and answers in the Cloud API's terms, and back (upstream
``internal/v1/handler_compose_image.go``, ``handler.go``, ``handler_blueprints.go``). Pure: no HTTP,
no I/O; the image-builder API calls these around its :class:`~osbuildd.imagebuilder.composer.Composer`.

- :func:`cloud_compose_request`: an IB ``ComposeRequest`` (schema-validated) -> the Cloud
  ``ComposeRequest`` image-builder posts (one ``image_request``, the distribution file's repositories,
  upload options from the upload type x image type table and the server's settings, customizations
  field by field);
- :func:`compose_status`: a Cloud ``ComposeStatus`` -> IB ``ComposeStatus`` (errors unwrapped to the
  root cause);
- :func:`redacted`: a stored IB request as it is read back (passwords out, ``hasPassword`` in);
- :func:`composer_refusal`: a :class:`ComposerError` -> the IB error to answer;
- :func:`blueprint_compose_requests` and :func:`export_blueprint`: a stored blueprint's composes and
  its export.

osbuildd's answers where upstream leans on services osbuildd does not have (content-sources
snapshots and templates, compliance policies, provisioning sources, AAP registration) are 400s
naming the field, never a silent drop.
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Iterable
from typing import Any

from osbuildd.config import ImageBuilderConfig
from osbuildd.errors import ErrorKind
from osbuildd.imagebuilder import ImageBuilderError
from osbuildd.imagebuilder.composer import ComposerError
from osbuildd.imagebuilder.distributions import Architecture, Distribution

__all__ = [
    "FS_MAX_SIZE", "UPLOAD_IMAGE_TYPES", "ComposeRefused", "ComposerFailed", "InvalidComposeRequest",
    "blueprint_compose_requests", "cloud_compose_request", "cloud_customizations", "composer_refusal",
    "compose_status", "export_blueprint", "redacted",
]

JSON = dict[str, Any]

FS_MAX_SIZE = 68719476736   # upstream FSMaxSize: 64 GiB, the AWS and Azure image size limit

# upload type -> {IB image type: the Cloud API image type} (upstream buildUploadOptions)
_S3_TYPES = ("guest-image", "image-installer", "network-installer", "vsphere", "vsphere-ova", "wsl",
             "bootable-container-iso", "pxe-tar-xz")
UPLOAD_IMAGE_TYPES: dict[str, dict[str, str]] = {
    "aws": {"aws": "aws", "ami": "aws"},
    "aws.s3": {"edge-commit": "edge-commit", "rhel-edge-commit": "edge-commit",
               "edge-installer": "edge-installer", "rhel-edge-installer": "edge-installer",
               **{t: t for t in _S3_TYPES}},
    "gcp": {"gcp": "gcp"},
    "azure": {"azure": "azure", "vhd": "azure"},
    "oci.objectstorage": {"oci": "oci"},
}
# osbuildd's "local" upload type (the image stays with the compose for .../download): any image type
# of the distribution, aliases as the other upload types read them; "tar" (osbuildd's) with it only
LOCAL_UPLOAD = "local"
# the Cloud API's local upload target refuses gcp images (upstream's table); its empty upload_options
# (LocalUploadOptions, when the default target lacks its required options) keep them all the same
_LOCAL_BY_OPTIONS = frozenset({"gcp"})
_ALIASES = {"ami": "aws", "vhd": "azure", "rhel-edge-commit": "edge-commit", "rhel-edge-installer": "edge-installer"}

# files image-builder writes for Satellite and AAP registration; never exported (they hold tokens)
_SECRET_FILES = ("/etc/systemd/system/register-satellite.service", "/usr/local/sbin/register-satellite",
                 "/usr/local/sbin/aap-first-boot-reg")
_UNWRAPPED_ERRORS = frozenset({5, 9, 26, 28})   # dependency failures: the cause is in details[0]


class InvalidComposeRequest(ImageBuilderError):
    """A compose request image-builder refuses (400) with upstream's detail."""

    kind = ErrorKind.INVALID
    status = 400
    error_id = "InvalidComposeRequest"


class ComposeRefused(ImageBuilderError):
    """The composer refused the request as bad input (400)."""

    kind = ErrorKind.INVALID
    status = 400
    error_id = "ComposeRefused"


class ComposerFailed(ImageBuilderError):
    """The composer failed or could not be reached (500)."""

    status = 500
    error_id = "ComposerFailed"


def _bad(detail: str, field: str = "") -> InvalidComposeRequest:
    return InvalidComposeRequest(detail, field=field)


def _set(out: JSON, src: JSON, keys: Iterable[str]) -> JSON:
    """Copy ``keys`` of ``src`` that are given (not None) into ``out``."""
    for k in keys:
        if src.get(k) is not None:
            out[k] = copy.deepcopy(src[k])
    return out


# -- POST /compose -------------------------------------------------------------------------------


def cloud_compose_request(ib: JSON, distribution: Distribution, cfg: ImageBuilderConfig, *,
                          blueprint_id: str | None = None, blueprint_version: int | None = None,
                          check_buildable: bool = True, subscription: bool = False) -> JSON:
    """The Cloud ``ComposeRequest`` for the IB ``ComposeRequest`` ``ib`` on ``distribution``.

    ``check_buildable``: refuse image types osbuildd cannot build (the in-process composer; a remote
    composer decides for itself). ``subscription``: send the ``subscription`` customization (a remote
    composer registers images; osbuildd's own images have no subscription-manager, so it is dropped).
    ``blueprint_id``/``blueprint_version`` are the image-builder API's to store with the compose; they
    are not sent (upstream does not send them, and osbuildd's Cloud API refuses ``blueprint_id``).
    Raises :class:`InvalidComposeRequest` (400) with upstream's detail, or the distribution's
    ``ArchitectureNotSupported`` (400)."""
    del blueprint_id, blueprint_version
    irs = ib.get("image_requests") or []
    if len(irs) != 1:
        raise _bad("Exactly one image request should be included", "image_requests")
    ir: JSON = irs[0]
    upload = ir.get("upload_request") or {}
    if not upload.get("type"):
        raise _bad("Exactly one upload request should be included", "image_requests[0].upload_request")
    _check_content(ir)
    arch = distribution.architecture(str(ir.get("architecture") or ""))
    customizations = cloud_customizations(ib.get("customizations"), subscription=subscription)
    image_type = str(ir.get("image_type") or "")
    upload_options, cloud_type = upload_options_for(upload, image_type, cfg)
    _check_size(ib, ir, image_type)
    if check_buildable:
        _check_buildable(distribution, arch, image_type, cloud_type)
    request: JSON = {"architecture": arch.name, "image_type": cloud_type,
                     "repositories": repositories_for(distribution, arch, image_type)}
    if upload["type"] == LOCAL_UPLOAD and cloud_type not in _LOCAL_BY_OPTIONS:   # the Cloud API's local target
        request["upload_targets"] = [{"type": "local", "upload_options": {}}]
    else:
        request["upload_options"] = upload_options
    if ir.get("size") is not None:
        request["size"] = ir["size"]
    if ir.get("ostree") is not None:
        request["ostree"] = _set({}, ir["ostree"], ("url", "contenturl", "ref", "parent", "rhsm"))
    out: JSON = {"distribution": distribution.composer_distribution, "image_request": request}
    if customizations is not None:
        out["customizations"] = customizations
    return out


def _check_content(ir: JSON) -> None:
    if ir.get("snapshot_date") is not None and ir.get("content_template") is not None:
        raise _bad("Either a snapshot date or content template can be specified, but not both",
                   "image_requests[0].snapshot_date")
    # upstream resolves both through the content-sources service, which osbuildd does not have
    for key in ("snapshot_date", "content_template"):
        if ir.get(key) is not None:
            raise _bad(f"image_requests[0].{key}: repository snapshots are not supported by osbuildd",
                       f"image_requests[0].{key}")


def _check_size(ib: JSON, ir: JSON, image_type: str) -> None:
    """Upstream validateComposeRequest: the larger of size and the filesystems' total."""
    fs = (ib.get("customizations") or {}).get("filesystem") or []
    total = sum(int(f.get("min_size") or 0) for f in fs)
    total = max(total, int(ir.get("size") or 0))
    if total <= FS_MAX_SIZE:
        return
    if image_type in ("aws", "ami"):
        raise _bad(f"Total AWS image size cannot exceed {FS_MAX_SIZE} bytes", "image_requests[0].size")
    if image_type in ("azure", "vhd"):
        raise _bad(f"Total Azure image size cannot exceed {FS_MAX_SIZE} bytes", "image_requests[0].size")


def _check_buildable(d: Distribution, arch: Architecture, image_type: str, cloud_type: str) -> None:
    if not d.buildable:
        raise _bad(f"osbuildd cannot build {d.name} images", "distribution")
    if d.osbuildd_image_type(arch.name, cloud_type) is None:
        can = ", ".join(d.buildable_image_types(arch.name)) or "none"
        raise _bad(f"Image type {image_type} of {d.name} on {arch.name} cannot be built by osbuildd "
                   f"(it can build: {can})", "image_requests[0].image_type")


def repositories_for(d: Distribution, arch: Architecture, image_type: str) -> list[JSON]:
    """Upstream buildRepositories: the file's repositories for ``arch``, filtered by image type tags.

    Debian: none. A Cloud ``Repository`` has no suite or components, and osbuildd's Cloud API reads
    each baseurl as a mirror of the distribution's first repository's suite, so sending the file's
    ``-updates``/``-security`` lines would turn them into copies of the main suite. With none the
    distribution's own repositories (the same archives, with their suites) are used."""
    repos = arch.repositories_for(image_type)
    od = d.osbuildd_distro()
    if (od is not None and od.family == "debian") or any(r.extra.get("suite") for r in repos):
        return []
    return [r.to_composer() for r in repos]


def upload_options_for(upload: JSON, image_type: str, cfg: ImageBuilderConfig) -> tuple[JSON, str]:
    """(the Cloud ``upload_options``, the Cloud image type) for the IB ``upload_request``."""
    kind = str(upload.get("type") or "")
    if kind == LOCAL_UPLOAD:
        return {}, _ALIASES.get(image_type, image_type)
    table = UPLOAD_IMAGE_TYPES.get(kind)
    if table is None:
        raise _bad(f"Unknown UploadRequest type {kind}", "image_requests[0].upload_request.type")
    cloud_type = table.get(image_type)
    if cloud_type is None and image_type == "tar":
        raise _bad("image_requests[0].image_type: tar images are kept on the daemon: only the local "
                   "upload type takes them", "image_requests[0].image_type")
    if cloud_type is None:
        raise _bad("Invalid image type for upload target", "image_requests[0].image_type")
    opts: JSON = upload.get("options") or {}
    where = "image_requests[0].upload_request.options"
    if kind == "aws":
        if opts.get("share_with_sources"):
            # upstream resolves sources through the provisioning service, which osbuildd does not have
            raise _bad(f"{where}.share_with_sources: provisioning sources are not supported by osbuildd; "
                       "give share_with_accounts", f"{where}.share_with_sources")
        accounts = list(opts.get("share_with_accounts") or [])
        if not accounts:
            raise _bad("Expected at least one source or account to share the image with", where)
        return {"region": _setting(cfg.aws_region, "aws", "aws_region"), "share_with_accounts": accounts}, cloud_type
    if kind == "aws.s3":
        # no region configured: {} is the Cloud API's local upload (the image stays with the compose)
        return ({"region": cfg.aws_region} if cfg.aws_region else {}), cloud_type
    if kind == "gcp":
        out: JSON = {"region": _setting(cfg.gcp_region, "gcp", "gcp_region")}
        if cfg.gcp_bucket:
            out["bucket"] = cfg.gcp_bucket
        if opts.get("share_with_accounts") is not None:
            out["share_with_accounts"] = list(opts["share_with_accounts"])
        return out, cloud_type
    if kind == "azure":
        return _azure(opts, cfg, where), cloud_type
    return {}, cloud_type   # oci.objectstorage


def _setting(value: str, kind: str, key: str) -> str:
    if not value:
        # the server's setting, not the request: still the request cannot be served here
        raise _bad(f"Uploads to {kind} are not configured on this server ([image_builder] {key} is empty)",
                   "image_requests[0].upload_request.type")
    return value


def _azure(opts: JSON, cfg: ImageBuilderConfig, where: str) -> JSON:
    if opts.get("source_id") is not None:
        raise _bad(f"{where}.source_id: provisioning sources are not supported by osbuildd; "
                   "give tenant_id and subscription_id", f"{where}.source_id")
    if not opts.get("tenant_id") or not opts.get("subscription_id"):
        raise _bad("Request must contain tenant and subscription ids.", where)
    out = _set({}, opts, ("tenant_id", "subscription_id", "resource_group"))
    if cfg.azure_location:
        out["location"] = cfg.azure_location
    return _set(out, opts, ("image_name", "hyper_v_generation"))


# -- customizations ------------------------------------------------------------------------------

# IB keys the Cloud Customizations have under the same name and shape
_SAME = ("packages", "enabled_modules", "containers", "services", "hostname", "kernel", "groups", "timezone",
         "locale", "firewall", "installation_device", "fdo", "ignition", "partitioning_mode", "fips",
         "installer", "cacerts", "disk")
_PAYLOAD_KEYS = ("rhsm", "baseurl", "mirrorlist", "metalink", "gpgkey", "check_gpg", "check_repo_gpg",
                 "ignore_ssl", "module_hotfixes")
_CUSTOM_KEYS = ("id", "name", "filename", "baseurl", "mirrorlist", "metalink", "enabled", "gpgkey", "check_gpg",
                "check_repo_gpg", "ssl_verify", "priority", "module_hotfixes")
_NODE_KEYS = ("path", "mode", "user", "group", "ensure_parents")


def cloud_customizations(cust: JSON | None, *, subscription: bool = False) -> JSON | None:
    """Upstream buildCustomizations: the Cloud ``Customizations`` for the IB ones (None for None)."""
    if cust is None:
        return None
    if cust.get("aap_registration") is not None:
        raise _bad("customizations.aap_registration: AAP registration is not supported by osbuildd",
                   "customizations.aap_registration")
    out = _set({}, cust, _SAME)
    if cust.get("users") is not None:
        out["users"] = [_user(u) for u in cust["users"]]
    if cust.get("filesystem"):
        out["filesystem"] = [{"mountpoint": f["mountpoint"], "min_size": f["min_size"]} for f in cust["filesystem"]]
    if cust.get("payload_repositories"):
        out["payload_repositories"] = [_payload(i, r) for i, r in enumerate(cust["payload_repositories"])]
    if cust.get("custom_repositories"):
        out["custom_repositories"] = [_set({}, r, _CUSTOM_KEYS) for r in cust["custom_repositories"]]
    if cust.get("directories") is not None:
        out["directories"] = [_set({}, d, _NODE_KEYS) for d in cust["directories"]]
    if cust.get("files") is not None:
        out["files"] = [_file(i, f) for i, f in enumerate(cust["files"])]
    if cust.get("openscap") is not None:
        _openscap(cust["openscap"], out)
    if subscription and cust.get("subscription") is not None:
        _subscription(cust, out)
    return out


def _user(u: JSON) -> JSON:
    out: JSON = {"name": u["name"]}
    if u.get("ssh_key"):
        out["key"] = u["ssh_key"]
    if u.get("password"):   # "" removes a password on a blueprint update: nothing to set
        out["password"] = u["password"]
    return _set(out, u, ("groups",))


def _payload(i: int, r: JSON) -> JSON:
    if r.get("id") is not None and not (r.get("baseurl") or r.get("mirrorlist") or r.get("metalink")):
        where = f"customizations.payload_repositories[{i}]"
        raise _bad(f"{where}.id: content-sources repositories are not supported by osbuildd; give a baseurl",
                   f"{where}.id")
    return _set({}, r, _PAYLOAD_KEYS)


def _file(i: int, f: JSON) -> JSON:
    out = _set({}, f, _NODE_KEYS)
    data = f.get("data")
    if data is not None and f.get("data_encoding") == "base64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as e:
            raise _bad(f"customizations.files[{i}].data: not base64 of UTF-8 text ({e})",
                       f"customizations.files[{i}].data") from None
    if data is not None:
        out["data"] = data
    return out


def _openscap(oscap: JSON, out: JSON) -> None:
    if oscap.get("policy_id"):
        # compliance policies come from the Insights Compliance service, which osbuildd does not have
        raise _bad("customizations.openscap.policy_id: compliance policies are not supported by osbuildd; "
                   "give a profile_id", "customizations.openscap.policy_id")
    if oscap.get("profile_id"):
        out["openscap"] = {"profile_id": oscap["profile_id"]}


def _subscription(cust: JSON, out: JSON) -> None:
    s = cust["subscription"]
    sub: JSON = {"organization": str(s["organization"]), "activation_key": s["activation-key"],
                 "server_url": s["server-url"], "base_url": s["base-url"], "insights": bool(s["insights"])}
    _set(sub, s, ("rhc", "insights_client_proxy"))
    out["subscription"] = sub
    # upstream: insights-client registers only with rhcd running when OpenSCAP is applied as well
    if s.get("insights") and cust.get("openscap") is not None:
        services = out.setdefault("services", {})
        enabled = services.setdefault("enabled", [])
        if "rhcd" not in enabled:
            enabled.append("rhcd")


# -- GET /composes/{id} --------------------------------------------------------------------------


def compose_status(cloud_status: JSON, request: JSON | None = None) -> JSON:
    """IB ``ComposeStatus`` of the Cloud one: status and progress as they are, the upload status per
    type, the error unwrapped to its root cause; ``request`` (the stored IB request) redacted."""
    cs: JSON = cloud_status.get("image_status") or {}
    image: JSON = {"status": cs.get("status")}
    if cs.get("upload_status") is not None:
        image["upload_status"] = _upload_status(cs["upload_status"], cloud_status.get("id"))
    if cs.get("error") is not None:
        image["error"] = status_error(cs["error"])
    if cs.get("progress") is not None:
        p = cs["progress"]
        progress: JSON = {"done": p.get("done"), "total": p.get("total")}
        sub = p.get("subprogress")
        if sub is not None:
            progress["subprogress"] = {"done": sub.get("done"), "total": sub.get("total")}
        image["progress"] = progress
    out: JSON = {"image_status": image}
    if request is not None:
        out["request"] = redacted(request)
    return out


DOWNLOAD_BASE = "/api/image-builder/v1"
_UPLOAD_STATUS_KEYS = {"aws": ("ami", "region"), "aws.s3": ("url",), "azure": ("image_name",),
                       "gcp": ("image_name", "project_id"), "oci.objectstorage": ("url",)}


def _upload_status(us: JSON, compose_id: str | None) -> JSON:
    kind = us.get("type")
    opts = us.get("options") or {}
    if kind == LOCAL_UPLOAD:   # where the image is on the daemon is not the client's business
        return {"status": us.get("status"), "type": kind,
                "options": {"download_path": f"{DOWNLOAD_BASE}/composes/{compose_id}/download"}}
    return {"status": us.get("status"), "type": kind,
            "options": {k: opts.get(k, "") for k in _UPLOAD_STATUS_KEYS.get(str(kind), ())}}


def status_error(err: JSON) -> JSON:
    """Upstream parseComposeStatusError: a dependency failure (5, 9, 26, 28) is replaced by the
    first of its ``details``, recursively; anything else as it is."""
    out: JSON = {"id": err.get("id"), "reason": err.get("reason")}
    if err.get("details") is not None:
        out["details"] = err["details"]
    details = err.get("details")
    try:
        unwrap = int(err.get("id") or 0) in _UNWRAPPED_ERRORS
    except (TypeError, ValueError):
        unwrap = False
    if unwrap and isinstance(details, list) and details and isinstance(details[0], dict):
        inner = details[0]
        return status_error({"id": inner.get("id", 0), "reason": inner.get("reason", ""),
                             "details": inner.get("details")})
    return out


def redacted(ib_request: JSON) -> JSON:
    """The stored IB request as read back (upstream RedactPassword): each user's ``password`` removed
    and ``hasPassword`` saying whether there was one."""
    out = copy.deepcopy(ib_request)
    _redact_users(out.get("customizations"))
    return out


def _redact_users(cust: JSON | None) -> None:
    for u in (cust or {}).get("users") or []:
        u["hasPassword"] = u.get("password") is not None
        u.pop("password", None)


# -- the composer's refusals ---------------------------------------------------------------------


def composer_refusal(e: ComposerError) -> ImageBuilderError:
    """The IB error for the composer's answer to ``POST /compose`` (upstream handleCommonCompose):
    10 -> 400 "Error resolving OSTree repo"; 24 (payload repository baseurl) and 29 (check_gpg without
    gpgkey) -> 400 with the reason. osbuildd: any other 4xx is the request's fault -> 400
    "<reason>: <details>" (upstream answers 500); 5xx or unreachable -> 500."""
    if e.error_id == 10:
        return ComposeRefused("Error resolving OSTree repo")
    if e.error_id in (24, 29):
        return ComposeRefused(e.reason)
    text = e.reason if e.details in (None, "", [], {}) else f"{e.reason}: {e.details}"
    if 400 <= e.status < 500:
        return ComposeRefused(text)
    return ComposerFailed(f"Failed posting compose request to osbuild-composer. {text}")


# -- blueprints ----------------------------------------------------------------------------------


def blueprint_compose_requests(blueprint_body: JSON, image_types: list[str] | None, *,
                               client_id: str = "api") -> list[JSON]:
    """Upstream ComposeBlueprint: one IB ``ComposeRequest`` per image request of the stored blueprint
    (a ``CreateBlueprintRequest`` body), in order; with ``image_types``, only those of these types
    (upstream skips the others without an error, so a type the blueprint lacks composes nothing)."""
    out = []
    for ir in blueprint_body.get("image_requests") or []:
        if image_types is not None and ir.get("image_type") not in image_types:
            continue
        req: JSON = {"customizations": copy.deepcopy(blueprint_body.get("customizations") or {}),
                     "image_requests": [copy.deepcopy(ir)],
                     "image_name": blueprint_body.get("name", ""),
                     "image_description": blueprint_body.get("description", ""),
                     "client_id": client_id}
        _set(req, blueprint_body, ("distribution", "bootc"))
        out.append(req)
    return out


def export_blueprint(body: JSON, metadata: JSON) -> JSON:
    """``GET /blueprints/{id}/export``: the ``BlueprintExportResponse`` of a stored blueprint body, with
    ``metadata`` (``parent_id``, ``exported_at``; ``is_on_prem`` false unless given). Nothing secret
    leaves (upstream ExportBlueprint): passwords, CA certificates, the subscription, AAP's host config
    key and the registration files are taken out."""
    cust = copy.deepcopy(body.get("customizations") or {})
    _redact_users(cust)
    cust.pop("cacerts", None)
    cust.pop("subscription", None)
    if isinstance(cust.get("aap_registration"), dict):
        cust["aap_registration"]["host_config_key"] = ""
    if cust.get("files") is not None:
        files = [f for f in cust["files"] if f.get("path") not in _SECRET_FILES]
        if files:
            cust["files"] = files
        else:
            cust.pop("files")
    out: JSON = {"name": body.get("name", ""), "description": body.get("description", ""),
                 "customizations": cust, "metadata": {"is_on_prem": False, **metadata}}
    _set(out, body, ("distribution", "bootc"))
    irs = body.get("image_requests") or []
    if irs and irs[0].get("snapshot_date") is not None:
        out["snapshot_date"] = irs[0]["snapshot_date"]
    return out
