"""Issue 14: schemathesis against the Cloud API the daemon serves (``GET .../v2/openapi``, loaded from the
daemon itself, not from the file). Every operation gets generated requests over real mTLS; each answer
must not be a 5xx, must use a status the spec lists, a declared content type, and a body the spec's
response schema accepts. Then schemathesis' stateful run (links it infers between operations) with the
same checks. One real compose is made first (``local_executor = false``: it stays queued, nothing builds)
and the ``{id}`` routes get its id as well as generated ones, so their 200 answers are checked too."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .cloud_daemon import share_cache
from .tlsutil import TLSDaemon, cloud_daemon_tls, mtls_section

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
NEGATIVE_CHECKS = [not_a_server_error, response_schema_conformance]
MAX_EXAMPLES = 15
STATEFUL_EXAMPLES = 20
# POST /depsolve/blueprint and /search/packages run the depsolver against the Debian mirror for any
# valid body: few examples there.
SLOW = {"/depsolve/blueprint", "/search/packages"}
SLOW_EXAMPLES = 5
# Checks left out where the spec and upstream's real answers disagree (the daemon answers as upstream):
# - ``GET /composes/``: upstream answers a bare JSON array of compose statuses (recorded), not the
#   spec's ``ComposeList`` object.
# - ``GET /distributions``: upstream nests distro -> arch -> image type -> [repository] (its handler,
#   recorded 078); the spec's ``DistributionList`` stops one level higher.
# - ``GET /distributions/{distro}``: upstream's answer carries ``href``/``id``/``kind`` (recorded 079);
#   the spec's ``DistributionDetails`` is ``allOf`` ObjectReference and an object with
#   ``additionalProperties: false``, which no answer with those three fields satisfies.
# - ``/composes/{id}/logs|manifests|sboms`` and ``POST /composes/{id}/clone``: the spec lists their
#   400/404 as ``text/plain``; upstream answers every error as its JSON ``Error`` (recorded 077).
# - ``GET /composes/{id}/manifests`` of a compose whose manifest is not made yet (queued here): upstream
#   appends the manifest job's still-empty result, ``"manifests": [null]`` (its handler); the spec's
#   items are objects. (Its 400/404 content type: as the routes above.)
# - ``GET /errors/{id}`` and ``GET /errors``: a non-integer id / page / size is upstream's 400 (ids 16,
#   18, 19 of its error list, recorded 074), a status the spec does not list for them.
EXCLUDED: dict[tuple[str, str], list[Any]] = {
    ("GET", "/composes/"): [response_schema_conformance],
    ("GET", "/distributions"): [response_schema_conformance],
    ("GET", "/distributions/{distro}"): [response_schema_conformance],
    **{("GET", f"/composes/{{id}}/{p}"): [content_type_conformance] for p in ("logs", "sboms")},
    ("GET", "/composes/{id}/manifests"): [content_type_conformance, response_schema_conformance],
    ("POST", "/composes/{id}/clone"): [content_type_conformance],
    ("GET", "/errors/{id}"): [status_code_conformance],
    ("GET", "/errors"): [status_code_conformance],
}
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _session(daemon: TLSDaemon) -> requests.Session:
    assert daemon.certs is not None
    session = requests.Session()
    session.cert = (str(daemon.certs / "client-crt.pem"), str(daemon.certs / "client-key.pem"))
    session.verify = str(daemon.certs / "ca-crt.pem")
    return session


def _load(daemon: TLSDaemon, session: requests.Session) -> Any:
    assert daemon.certs is not None
    return schemathesis.openapi.from_url(f"{daemon.base}/openapi", cert=session.cert, verify=session.verify,
                                         timeout=60)


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck),
                    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])


def _checks(method: str, path: str, negative: bool = False) -> list[Any]:
    """Invalid requests may be refused with any 4xx (upstream's own choice of status): then only no 5xx
    and, for statuses the spec does list, a conforming body."""
    wanted = NEGATIVE_CHECKS if negative else CHECKS
    excluded = EXCLUDED.get((method.upper(), path), [])
    return [c for c in wanted if c not in excluded]


def _compose(daemon: TLSDaemon, session: requests.Session) -> str:
    """A real (queued) compose, so generated requests also reach the per-compose routes' 200 answers."""
    body = {"distribution": "debian-12",
            "image_request": {"architecture": "x86_64", "image_type": "guest-image",
                              "repositories": [{"baseurl": "http://deb.debian.org/debian"}],
                              "upload_targets": [{"type": "local", "upload_options": {}}]}}
    r = session.post(f"{daemon.base}/compose", json=body, timeout=600, verify=session.verify)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _strategy(operation: Any, mode: GenerationMode, compose_id: str) -> Any:
    strategy = operation.as_strategy(generation_mode=mode)
    if "{id}" not in operation.path or mode is GenerationMode.NEGATIVE:
        return strategy

    def known(case: Any) -> Any:
        case.path_parameters = {**(case.path_parameters or {}), "id": compose_id}
        return case

    return st.one_of(strategy, strategy.map(known))


def _run_operation(operation: Any, daemon: TLSDaemon, session: requests.Session, mode: GenerationMode,
                   compose_id: str) -> None:
    examples = SLOW_EXAMPLES if operation.path in SLOW else MAX_EXAMPLES
    checks = _checks(operation.method, operation.path, mode is GenerationMode.NEGATIVE)

    @_settings(examples)
    @given(case=_strategy(operation, mode, compose_id))
    def run(case: Any) -> None:
        case.call_and_validate(base_url=daemon.base, session=session, checks=checks, timeout=120,
                               verify=session.verify, cert=session.cert)

    run()


def _run_all(daemon: TLSDaemon, schema: Any, session: requests.Session) -> list[str]:
    compose_id = _compose(daemon, session)
    failures: list[str] = []
    seen: set[tuple[str, str]] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        seen.add((operation.method.lower(), operation.path))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _run_operation(operation, daemon, session, mode, compose_id)
            except (Exception, BaseExceptionGroup) as e:  # every operation's failures are collected
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {e}")
    # schemathesis leaves out the operation its schema was loaded from (GET /openapi: fetched above).
    listed = {(m, p) for p, item in schema.raw_schema["paths"].items() for m in item if m in _METHODS}
    assert seen == listed - {("get", "/openapi")} and len(seen) >= 15, sorted(listed - seen)
    return failures


def _run_stateful(daemon: TLSDaemon, schema: Any, session: requests.Session) -> list[str]:
    """schemathesis' state machine over the links it finds or infers (e.g. ``POST /compose`` -> the
    per-compose routes): same checks as the positive run."""
    base = schema.as_state_machine()
    calls: list[str] = []

    class Machine(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": daemon.base, "session": session, "verify": session.verify,
                    "cert": session.cert, "timeout": 120}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None,
                              **kwargs: Any) -> None:
            calls.append(f"{case.method} {case.path}")
            case.validate_response(response, checks=_checks(case.method, case.path),
                                   transport_kwargs=kwargs)

    try:
        Machine.run(settings=settings(_settings(STATEFUL_EXAMPLES), stateful_step_count=6))
    except (Exception, BaseExceptionGroup) as e:
        return [f"stateful: {e}"]
    assert calls, "the state machine made no call"
    return []


def _run(daemon: TLSDaemon) -> list[str]:
    session = _session(daemon)
    schema = _load(daemon, session)
    return _run_all(daemon, schema, session) + _run_stateful(daemon, schema, session)


async def test_schemathesis_every_operation(tmp_path: Path, certs: Path, shared_state_dir: Path) -> None:
    share_cache(tmp_path / "state", shared_state_dir)
    async with cloud_daemon_tls(tmp_path, mtls_section(certs), certs=certs) as daemon:
        failures = await asyncio.to_thread(_run, daemon)
    assert failures == [], "\n\n".join(failures)
