"""schemathesis against the worker API the daemon serves (``GET <base>/openapi``, loaded from the daemon
itself), over real mTLS with gen-certs' worker certificate: generated requests for every operation,
positive and negative; no answer may be a 5xx, and answers must use statuses, content types and bodies
as the spec says (bar the named spots below). A registered worker's id and a running job's token are
mixed into the generated path parameters, so the 200 answers of those routes are checked too.
``request_job_timeout = 1``: ``POST /jobs`` answers 204 when nothing is queued."""

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

from .wdaemon import BASE, WorkerDaemon, mtls_worker, worker_daemon

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
NEGATIVE_CHECKS = [not_a_server_error, response_schema_conformance]
MAX_EXAMPLES = 25
# Checks left out where the spec and upstream's real answers disagree (the daemon answers as upstream):
# - ``POST /workers`` and ``POST /workers/{worker_id}/status``: the spec lists only their success
#   (201 / 200); upstream answers a bad body 400 id 10, a bad content type 415 id 3, a malformed or
#   unknown worker id 400 id 17 / 18.
# - ``POST /jobs``' 204: HTTP allows no body (nor content type) in a 204; the spec gives it an
#   ObjectReference, which upstream's Go server drops as aiohttp does.
# - ``PUT /jobs/{token}/artifacts/{name}``' 200 has no body, as the spec says, and upstream's 400
#   for disabled artifacts has none either (not the case here: artifacts are enabled).
EXCLUDED: dict[tuple[str, str], list[Any]] = {
    ("POST", "/workers"): [status_code_conformance],
    ("POST", "/workers/{worker_id}/status"): [status_code_conformance],
    ("POST", "/jobs"): [content_type_conformance, response_schema_conformance],
}
# operations without a body whose parameters are any string: no negative case exists
FREE_FORM = {"/openapi", "/status", "/jobs/{token}", "/errors/{id}"}
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _session(wd: WorkerDaemon) -> requests.Session:
    session = requests.Session()
    session.cert = (str(wd.certs / "worker-crt.pem"), str(wd.certs / "worker-key.pem"))
    session.verify = str(wd.certs / "ca-crt.pem")
    return session


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck),
                    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])


def _checks(method: str, path: str, negative: bool) -> list[Any]:
    wanted = NEGATIVE_CHECKS if negative else CHECKS
    excluded = EXCLUDED.get((method.upper(), path), [])
    return [c for c in wanted if c not in excluded]


def _strategy(operation: Any, mode: GenerationMode, known: dict[str, str]) -> Any:
    strategy = operation.as_strategy(generation_mode=mode)
    names = [n for n in known if "{" + n + "}" in operation.path]
    if not names or mode is GenerationMode.NEGATIVE:
        return strategy

    def with_known(case: Any) -> Any:
        case.path_parameters = {**(case.path_parameters or {}), **{n: known[n] for n in names}}
        return case

    return st.one_of(strategy, strategy.map(with_known))


def _run_operation(operation: Any, mode: GenerationMode, known: dict[str, str], base_url: str,
                   session: requests.Session) -> None:
    checks = _checks(operation.method, operation.path, mode is GenerationMode.NEGATIVE)

    @_settings(MAX_EXAMPLES)
    @given(case=_strategy(operation, mode, known))
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base_url, session=session, checks=checks, timeout=60,
                               verify=session.verify, cert=session.cert)

    run()


def _run(wd: WorkerDaemon, known: dict[str, str]) -> list[str]:
    session = _session(wd)
    base_url = wd.url + BASE
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi", cert=session.cert, verify=session.verify,
                                           timeout=60)
    failures: list[str] = []
    seen: set[tuple[str, str]] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        seen.add((operation.method.lower(), operation.path))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _run_operation(operation, mode, known, base_url, session)
            except hypothesis.errors.Unsatisfiable:
                # nothing about the operation can be wrong (no body, free-form string parameters):
                # there is no invalid request to send
                assert mode is GenerationMode.NEGATIVE and operation.path in FREE_FORM, operation.path
            except (Exception, BaseExceptionGroup) as e:   # every operation's failures are collected
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {e}")
    listed = {(m, p) for p, item in schema.raw_schema["paths"].items() for m in item if m in _METHODS}
    assert listed - {("get", "/openapi")} <= seen <= listed and len(listed) == 9, sorted(listed - seen)
    return failures


async def test_schemathesis_every_operation(tmp_path: Path, certs: Path) -> None:
    async with worker_daemon(tmp_path, certs, mtls_worker(certs, request_job_timeout=1)) as wd:
        c = wd.client()
        try:
            worker_id = await c.register()
            async with wd.side_store() as jobs:
                await jobs.enqueue("depsolve", {})
            r = await c.take(["depsolve"], worker_id=worker_id)
            assert r.status == 201, r.body
            token = r.json()["location"].rsplit("/", 1)[1]
        finally:
            await c.close()
        failures = await asyncio.to_thread(_run, wd, {"worker_id": worker_id, "token": token})
        assert "Traceback" not in wd.log_text()
    assert failures == [], "\n\n".join(failures)
