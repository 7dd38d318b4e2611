"""The Cloud API's ComposeMetadata (``GET /composes/{id}/metadata``, upstream ``handler.go``) of a
compose's images: the packages of the finished ones and the ostree commit, keys in the order
upstream's generated types marshal them (alphabetical), and the request as osbuildd keeps it.
"""

from __future__ import annotations

from typing import Any

from osbuildd.compose import Compose, ComposeState

from .errors import BASE, CloudRequestError
from .packages import package_metadata

MALFORMED_RESULT = 1012


def _rpm_entry(md: dict[str, Any]) -> dict[str, Any]:
    """PackageMetadata from an ``org.osbuild.rpm`` stage's metadata (upstream's source of the list)."""
    out: dict[str, Any] = {"arch": md.get("arch") or ""}
    if md.get("epoch") not in (None, "", 0, "0"):
        out["epoch"] = str(md["epoch"])
    out["name"] = md.get("name") or ""
    out["release"] = md.get("release") or ""
    sig = md.get("sigpgp") or md.get("siggpg")
    if sig:
        out["signature"] = sig
    out.update({"type": "rpm", "version": md.get("version") or "", "sigmd5": md.get("sigmd5") or ""})
    return out


def _payload_pipelines(image: Compose) -> list[str]:
    names = (image.result or {}).get("pipeline_names") or {}
    payload = names.get("payload") if isinstance(names, dict) else None
    if payload:
        return [str(n) for n in payload]
    return [p.get("name", "") for p in (image.manifest or {}).get("pipelines", []) if p.get("name") != "build"]


def _stage_metadata(image: Compose, output: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """(rpm stage packages, ostree commit) from the payload pipelines' stage metadata."""
    raw = output.get("metadata")
    metadata: dict[str, Any] = raw if isinstance(raw, dict) else {}
    rpms: list[dict[str, Any]] = []
    commit = None
    for name in _payload_pipelines(image):
        found = metadata.get(name)
        stages: dict[str, Any] = found if isinstance(found, dict) else {}
        for stage, md in stages.items():
            if not isinstance(md, dict):
                continue
            if stage == "org.osbuild.rpm":
                rpms += [p for p in md.get("packages") or [] if isinstance(p, dict)]
            elif stage == "org.osbuild.ostree.commit":
                commit = ((md.get("compose") or {}).get("ostree-commit")) or commit
    return rpms, commit


def _metadata_fields(image: Compose) -> dict[str, Any]:
    """ostree_commit/packages of one image: none while it is not finished (or failed, canceled), 1012
    for a finished build without osbuild output; the packages from the build's rpm stage metadata when
    it has some (upstream), else from the depsolve result (Debian, the bundled engine)."""
    if image.state != ComposeState.FINISHED:
        return {}
    output = (image.result or {}).get("osbuild_output")
    if not isinstance(output, dict) or not output.get("log"):
        raise CloudRequestError(MALFORMED_RESULT, f"the build of compose {image.id} recorded no osbuild output")
    rpms, commit = _stage_metadata(image, output)
    out: dict[str, Any] = {}
    if commit:
        out["ostree_commit"] = commit
    out["packages"] = [_rpm_entry(m) for m in rpms] if rpms else [package_metadata(p) for p in image.packages]
    return out


def compose_metadata(cid: str, images: list[Compose]) -> dict[str, Any]:
    """The ComposeMetadata of compose ``cid`` made of ``images`` (whole: with packages and result)."""
    body: dict[str, Any] = {"href": f"{BASE}/composes/{cid}/metadata", "id": cid, "kind": "ComposeMetadata"}
    fields: dict[str, Any] = {}
    for image in images:
        for key, value in _metadata_fields(image).items():
            if key == "packages":
                fields.setdefault("packages", []).extend(value)
            else:
                fields.setdefault(key, value)
    body.update(sorted(fields.items()))
    api_request = images[0].request.get("api_request") if images else None
    if api_request is not None:
        body["request"] = api_request
    return body
