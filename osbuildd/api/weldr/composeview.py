"""How a compose looks in the Weldr API: ComposeEntry, upload statuses, and upload requests → targets."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from osbuildd.api.weldr.context import WeldrCompose
from osbuildd.api.weldr.util import integral

# Compose service states → upstream's ComposeState names (a cancelled compose shows as FAILED).
STATES = {"waiting": "WAITING", "running": "RUNNING", "finished": "FINISHED", "failed": "FAILED",
          "canceled": "FAILED", "cancelled": "FAILED"}

# Weldr upload provider names → upstream target names.
PROVIDER_TARGETS = {
    "aws": "org.osbuild.aws", "aws.s3": "org.osbuild.aws.s3", "generic.s3": "org.osbuild.generic.s3",
    "gcp": "org.osbuild.gcp", "azure": "org.osbuild.azure.image", "vmware": "org.osbuild.vmware",
    "oci": "org.osbuild.oci", "container": "org.osbuild.container",
}
TARGET_PROVIDERS = {v: k for k, v in PROVIDER_TARGETS.items()}
# Settings each provider accepts; the PUBLIC ones are the only ones ever shown back.
SETTINGS = {
    "aws": {"region", "accessKeyID", "secretAccessKey", "sessionToken", "bucket", "key"},
    "aws.s3": {"region", "accessKeyID", "secretAccessKey", "sessionToken", "bucket", "key", "endpoint",
               "ca_bundle", "skip_ssl_verification"},
    "azure": {"storageAccount", "storageAccessKey", "container"},
    "gcp": {"region", "bucket", "object", "credentials"},
    "vmware": {"host", "username", "password", "datacenter", "cluster", "datastore"},
    "oci": {"tenancy", "region", "user", "bucket", "namespace", "private_key", "fingerprint", "compartment"},
    "container": {"username", "password", "tls_verify"},
}
SETTINGS["generic.s3"] = SETTINGS["aws.s3"]
PUBLIC = {
    "aws": ("region", "bucket", "key"),
    "aws.s3": ("region", "bucket", "key", "endpoint", "skip_ssl_verification"),
    "generic.s3": ("region", "bucket", "key", "endpoint", "skip_ssl_verification"),
    "azure": ("storageAccount", "container"),
    "gcp": ("region", "bucket", "object"),
    "vmware": ("host", "datacenter", "cluster", "datastore"),
}
LISTED = ("aws", "aws.s3", "azure", "gcp", "vmware")  # upstream lists only these in compose entries


def state(compose: WeldrCompose) -> str:
    return STATES.get(str(compose.state).lower(), "FAILED")


def upload_status(u: dict[str, Any], compose_state: str) -> dict[str, Any] | None:
    """An uploadResponse, or None for targets upstream does not list. Secrets are never copied."""
    provider = u.get("provider_name") or TARGET_PROVIDERS.get(u.get("name", ""), "")
    if provider not in LISTED:
        return None
    settings = u.get("settings") or u.get("options") or {}
    return {
        "uuid": u.get("uuid", ""), "status": u.get("status") or compose_state, "provider_name": provider,
        "image_name": u.get("image_name", ""), "creation_time": integral(u.get("creation_time", 0)),
        # "***": a value the compose service redacted when it stored the request
        "settings": {k: settings[k] for k in PUBLIC.get(provider, ())
                     if k in settings and settings[k] not in ("", None, "***")},
    }


# The compose service's upload states → upstream's upload status names.
UPLOAD_STATES = {"pending": "WAITING", "running": "RUNNING", "success": "FINISHED", "failure": "FAILED"}


def _service_uploads(compose: WeldrCompose) -> list[dict[str, Any]]:
    """The compose service's ``{"type","status","options"}`` entries joined with the request's targets
    (image name, settings) into upstream's uploadResponse input."""
    req = compose.request if isinstance(compose.request, dict) else {}
    targets = [t for t in req.get("targets") or [] if t.get("name") in TARGET_PROVIDERS]
    out = []
    for i, u in enumerate(compose.upload_statuses or []):
        target: dict[str, Any] = next((t for t in targets if t.get("name") == u.get("type")), {})
        if target in targets:
            targets.remove(target)
        out.append({
            "uuid": str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"{compose.id}/upload/{i}")),
            "name": u.get("type", ""), "status": UPLOAD_STATES.get(u.get("status", ""), "WAITING"),
            "image_name": target.get("image_name", ""), "creation_time": compose.created,
            "settings": {**(target.get("options") or {}), **(u.get("options") or {})},
        })
    return out


def uploads(compose: WeldrCompose) -> list[dict[str, Any]]:
    st = state(compose)
    raw = compose.upload_statuses or []
    if raw and "type" in raw[0]:
        raw = _service_uploads(compose)
    out = [upload_status(u, st) for u in raw]
    return [u for u in out if u is not None]


def entry(compose: WeldrCompose, v: int) -> dict[str, Any]:
    """ComposeEntry (compose.go): times only for the states that have them, ``uploads`` in v1."""
    st = state(compose)
    out: dict[str, Any] = {
        "id": compose.id, "blueprint": compose.blueprint_name, "version": compose.blueprint_version,
        "compose_type": compose.image_type, "image_size": int(compose.size or 0), "queue_status": st,
        "job_created": integral(compose.created),
    }
    if st != "WAITING" and compose.started:
        out["job_started"] = integral(compose.started)
    if st in ("FINISHED", "FAILED") and compose.finished:
        out["job_finished"] = integral(compose.finished)
    if v >= 1:
        ups = uploads(compose)
        if ups:
            out["uploads"] = ups
    progress = compose.progress
    if st == "RUNNING" and progress:
        out["progress"] = progress  # osbuildd extra: live build progress (clients ignore unknown keys)
    return out


def error_field(compose: WeldrCompose) -> dict[str, Any] | None:
    """A FAILED compose's error (osbuildd extra in compose/info and the logs tar's error.json): the
    root cause's upstream id, its name, reason, details, and the failing stage with its last lines.
    None for other states. Built from the compose's own data, so a cached rendering keeps it."""
    if state(compose) != "FAILED":
        return None
    from osbuildd.compose import failure
    return failure.summary(compose.error) or {"id": None, "name": "", "reason": "unknown"}
