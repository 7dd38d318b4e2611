"""Why a compose failed, in one shape for every reader: the Weldr log/logs/info routes, the osbuild
log on disk and ``osbuildd build``.

A build job's error is upstream's ``{"id", "reason", "details"}``. When a dependency failed (depsolve
or manifest) the build's error only says "dependency failed" and nests the real one in
``details.error``: :func:`root_cause` unwraps it. :func:`render` gives the text block appended to
``logs/osbuild.log`` and sent by ``compose/log``; :data:`MARK` starts it, so a reader can tell
whether the log on disk already has it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from osbuildd.queue import errors

MARK = "=== osbuildd: compose failed ==="
TAIL_LINES = 20
_TAIL_BYTES = 64 * 1024

# upstream's names of the worker client errors (clienterrors), for people reading the id
NAMES = {
    errors.NO_DYNAMIC_ARGS: "ErrorNoDynamicArgs", errors.INVALID_TARGET_CONFIG: "ErrorInvalidTargetConfig",
    errors.SHARING_TARGET: "ErrorSharingTarget", errors.INVALID_TARGET: "ErrorInvalidTarget",
    errors.DEPSOLVE_DEPENDENCY: "ErrorDepsolveDependency", errors.READING_JOB_STATUS: "ErrorReadingJobStatus",
    errors.PARSING_DYNAMIC_ARGS: "ErrorParsingDynamicArgs", errors.MANIFEST_GENERATION: "ErrorManifestGeneration",
    errors.MANIFEST_DEPENDENCY: "ErrorManifestDependency", errors.BUILD_JOB: "ErrorBuildJob",
    errors.UPLOADING_IMAGE: "ErrorUploadingImage", errors.IMPORTING_IMAGE: "ErrorImportingImage",
    errors.INVALID_CONFIG: "ErrorInvalidConfig", errors.EMPTY_MANIFEST: "ErrorEmptyManifest",
    errors.DNF_DEPSOLVE_ERROR: "ErrorDNFDepsolveError", errors.DNF_MARKING_ERRORS: "ErrorDNFMarkingErrors",
    errors.DNF_OTHER_ERROR: "ErrorDNFOtherError", errors.RPMMD_ERROR: "ErrorRPMMDError",
    errors.EMPTY_PACKAGE_SPECS: "ErrorEmptyPackageSpecs", errors.DNF_REPO_ERROR: "ErrorDNFRepoError",
    errors.JOB_DEPENDENCY: "ErrorJobDependency", errors.JOB_MISSING_HEARTBEAT: "ErrorJobMissingHeartbeat",
    errors.TARGET_ERROR: "ErrorTargetError",
}

# signed-URL and connection-string secrets a provider's message may quote
_SECRET_PARAM = re.compile(r"(?i)\b(sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|"
                           r"accountkey|sharedaccesssignature|access_token|client_secret)=[^&\s;\"']+")

CANCELED_BY_USER = "canceled by user"
# what each of the daemon's own reasons means for the user
EXPLAIN = {
    errors.REASON_SHUTTING_DOWN: "the daemon was stopped while this compose was building; the build was "
                                 "stopped and is not restarted when the daemon starts again: start the "
                                 "compose again",
    errors.REASON_INTERRUPTED: "the daemon died while this compose was building; the next start failed "
                               "the build and removed what it left: start the compose again",
    errors.REASON_MISSING_HEARTBEAT: "the worker building this compose stopped reporting",
    CANCELED_BY_USER: "the compose was canceled (compose cancel) before it finished",
}


def scrub(value: Any, secrets: tuple[str, ...] = (), depth: int = 0) -> Any:
    """``value`` with the given secret strings and signed-URL parameters replaced by ``***``."""
    if isinstance(value, str):
        for secret in secrets:
            if secret:
                value = value.replace(secret, "***")
        return _SECRET_PARAM.sub(lambda m: m.group(1) + "=***", value)
    if depth > 8:
        return value
    if isinstance(value, dict):
        return {k: scrub(v, secrets, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets, depth + 1) for v in value]
    return value


def _unwrap(error: dict[str, Any] | None) -> tuple[dict[str, Any] | None, int]:
    depth = 0
    for _ in range(8):   # a chain is depsolve -> manifest -> build: a few levels at most
        if not isinstance(error, dict) or error.get("id") not in errors.DEPENDENCY_ERRORS:
            break
        inner = (error.get("details") or {}).get("error") if isinstance(error.get("details"), dict) else None
        if not isinstance(inner, dict):
            break
        error, depth = inner, depth + 1
    return error, depth


def root_cause(error: dict[str, Any] | None) -> dict[str, Any] | None:
    """The error of the job that really failed: "dependency failed" errors nest it in details.error."""
    return _unwrap(error)[0]


# how far up the compose's chain (depsolve -> manifest -> build) the root cause is
FAILED_JOB = {1: "manifest", 2: "depsolve"}


def _name(error_id: Any) -> str:
    return NAMES.get(error_id, "") if isinstance(error_id, int) else ""


def summary(error: dict[str, Any] | None) -> dict[str, Any] | None:
    """``{"id", "name", "reason", "details", "stage"?, "lines"?, "explanation"?}`` of the root cause:
    the extra field of Weldr's compose/info and the content of the logs tar's ``error.json``."""
    scrubbed = scrub(error)
    root, depth = _unwrap(scrubbed)
    if not isinstance(root, dict):
        return None
    out: dict[str, Any] = {"id": root.get("id"), "name": _name(root.get("id")),
                           "reason": str(root.get("reason") or "")}
    details = root.get("details")
    if details is not None:
        out["details"] = details
    if isinstance(details, dict):
        if details.get("stage"):
            out["stage"] = details["stage"]
        text = details.get("output") or details.get("stderr") or ""
        if text:
            out["lines"] = str(text).rstrip("\n").splitlines()[-TAIL_LINES:]
    if out["reason"] in EXPLAIN:
        out["explanation"] = EXPLAIN[out["reason"]]
    if depth and isinstance(scrubbed, dict):   # the build did not run: say which job failed
        out["via"] = {"id": scrubbed.get("id"), "reason": scrubbed.get("reason")}
        out["failed_job"] = FAILED_JOB.get(depth, "a dependency")
    return out


def _target_lines(details: Any) -> list[str]:
    """One line per failed upload target: which target, and the provider's message."""
    out = []
    for t in details if isinstance(details, list) else []:
        if not isinstance(t, dict):
            continue
        where = t.get("target") or "target"
        more = t.get("details")
        more_text = f" ({more})" if isinstance(more, str) and more else (
            f" ({json.dumps(more, sort_keys=True)})" if isinstance(more, dict | list) and more else "")
        out.append(f"upload to {where} failed: {t.get('reason', '')}{more_text}")
    return out


def render(error: dict[str, Any] | None) -> str:
    """The failure as text: the block ``compose/log``, the logs tar and ``osbuildd build`` show."""
    s = summary(error)
    if s is None:
        return f"{MARK}\nreason: unknown (no error was recorded)\n"
    name = f" ({s['name']})" if s.get("name") else ""
    lines = [MARK, f"error id: {s['id']}{name}", f"reason: {s['reason']}"]
    if "via" in s:
        lines.append(f"failed job: {s['failed_job']} (the build did not run: {s['via']['reason']})")
    if s.get("explanation"):
        lines.append(f"what happened: {s['explanation']}")
    if s.get("stage"):
        lines.append(f"stage: {s['stage']}")
    details = s.get("details")
    lines += _target_lines(details)
    if isinstance(details, dict):
        for key in ("timeout", "returncode", "dependency"):
            if details.get(key) is not None:
                lines.append(f"{key}: {details[key]}")
    if s.get("lines"):
        lines.append("last lines:")
        lines += ["  " + ln for ln in s["lines"]]
    return "\n".join(lines) + "\n"


def log_tail(path: Path, n: int = TAIL_LINES) -> list[str]:
    """The last ``n`` lines of a log file (blocking: call in a thread); [] when there is none."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - _TAIL_BYTES))
            data = f.read()
    except OSError:
        return []
    return data.decode("utf-8", "replace").rstrip("\n").splitlines()[-n:]


def has_block(path: Path) -> bool:
    """Whether the log on disk already ends with a failure block (blocking: call in a thread)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - _TAIL_BYTES))
            return MARK.encode() in f.read()
    except OSError:
        return False


def append_block(path: Path, error: dict[str, Any] | None) -> None:
    """Append the failure block to the osbuild log (blocking: call in a thread)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n" + render(error))
