"""schemathesis against the image-builder API the daemon serves (its own ``/openapi.json``, not the
file): every operation gets generated requests (valid ones, then invalid ones) over a real socket,
each with a valid ``X-Rh-Identity``. Every answer must not be a 5xx; answers to valid requests must use
a status the spec lists, a declared content type and a body the spec's schema accepts; answers to
invalid ones, a conforming body where the status is one the spec lists. A real (queued: nothing is
built) compose and blueprint are made first and the id routes get their ids as well as generated
ones, so their 200 answers are checked too. Bounded: few examples per operation."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .ib_daemon import IB, IBDaemon, ib_daemon, identity

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
NEGATIVE_CHECKS = [not_a_server_error, response_schema_conformance]
# few per operation keep the run short (CI's budget); every operation still gets positive and negative cases
MAX_EXAMPLES = 6
# /packages of a Debian distribution runs the depsolver's search for any valid query: few examples
SLOW = {"/packages"}
SLOW_EXAMPLES = 3
RUN_LIMIT = 240.0   # seconds for the whole run (it takes well under that)
# Checks left out where upstream's spec lists fewer statuses than upstream's handlers answer (spec
# defects; the daemon answers as the handlers do, each case asserted in test_api_*.py):
# - 404 for an id the organisation does not have: GET/DELETE /composes/{composeId}, .../metadata,
#   POST /blueprints/{id}/compose (the spec lists 200/201/403 only);
# - 400 for a distribution of the spec's enum that the distributions directory lacks (getDistro's
#   DistributionNotFound): GET /architectures/{distribution}, GET /packages;
# - 400 "Invalid version number" for GET /blueprints/{id}?version=0 or < -1;
# - 422 for an invalid name or user on PUT /blueprints/{id} (the spec lists it for POST only);
# - the OpenSCAP routes without profiles or a compliance service: 400 / 400 / 404 (the spec lists 200).
_STATUS_DEFECTS = [("GET", "/composes/{composeId}"), ("DELETE", "/composes/{composeId}"),
                   ("GET", "/composes/{composeId}/metadata"), ("POST", "/blueprints/{id}/compose"),
                   ("GET", "/architectures/{distribution}"), ("GET", "/packages"), ("GET", "/blueprints/{id}"),
                   ("PUT", "/blueprints/{id}"), ("GET", "/oscap/{distribution}/profiles"),
                   ("GET", "/oscap/{distribution}/{profile}/customizations"),
                   ("GET", "/oscap/{policy}/{distribution}/policy_customizations")]
EXCLUDED: dict[tuple[str, str], list[Any]] = {op: [status_code_conformance] for op in _STATUS_DEFECTS}
_METHODS = {"get", "put", "post", "delete", "patch"}
# osbuildd's event stream of a compose lasts until the compose is done: the queued one here never is
# (tests/web/test_api_extensions.py checks the stream)
STREAMS = {("get", "/composes/{composeId}/events")}
COMPOSE = {"distribution": "debian-12",
           "image_requests": [{"architecture": "x86_64", "image_type": "guest-image",
                               "upload_request": {"type": "aws.s3", "options": {}}}]}
BLUEPRINT = {"name": "schemathesis", "description": "", "distribution": "debian-12",
             "image_requests": COMPOSE["image_requests"], "customizations": {"packages": ["tmux"]}}


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck),
                    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])


def _checks(method: str, path: str, negative: bool) -> list[Any]:
    wanted = NEGATIVE_CHECKS if negative else CHECKS
    excluded = EXCLUDED.get((method.upper(), path), [])
    return [c for c in wanted if c not in excluded]


def _known(base: str, session: requests.Session) -> dict[str, str]:
    """Real ids for the id routes: a queued compose and a blueprint."""
    r = session.post(f"{base}/compose", json=COMPOSE, timeout=120)
    assert r.status_code == 201, r.text
    b = session.post(f"{base}/blueprints", json=BLUEPRINT, timeout=120)
    assert b.status_code == 201, b.text
    return {"composeId": str(r.json()["id"]), "id": str(b.json()["id"]), "distribution": "debian-12",
            "distro": "debian-12"}


def _strategies(operation: Any, mode: GenerationMode, known: dict[str, str]) -> list[Any]:
    """Generated cases; for a positive run of an id route also cases with the real ids (a run of
    their own, so that few examples still reach them)."""
    strategy = operation.as_strategy(generation_mode=mode)
    names = [k for k in known if "{" + k + "}" in operation.path]
    if not names or mode is GenerationMode.NEGATIVE:
        return [strategy]

    def with_known(case: Any) -> Any:
        case.path_parameters = {**(case.path_parameters or {}), **{k: known[k] for k in names}}
        return case

    return [strategy, strategy.map(with_known)]


def _run_operation(operation: Any, base: str, session: requests.Session, mode: GenerationMode,
                   known: dict[str, str]) -> None:
    examples = SLOW_EXAMPLES if operation.path in SLOW else MAX_EXAMPLES
    checks = _checks(operation.method, operation.path, mode is GenerationMode.NEGATIVE)
    for strategy in _strategies(operation, mode, known):

        @_settings(examples)
        @given(case=strategy)
        def run(case: Any) -> None:
            case.call_and_validate(base_url=base, session=session, checks=checks, timeout=120)

        run()


def _run(daemon: IBDaemon) -> list[str]:
    session = requests.Session()
    session.headers["X-Rh-Identity"] = identity()
    base = daemon.base + IB
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", timeout=60)
    known = _known(base, session)
    failures: list[str] = []
    seen: set[tuple[str, str]] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        seen.add((operation.method.lower(), operation.path))
        if (operation.method.lower(), operation.path) in STREAMS:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _run_operation(operation, base, session, mode, known)
            except hypothesis.errors.Unsatisfiable:
                # nothing to make invalid (no parameters, no body): no negative case
                assert mode is GenerationMode.NEGATIVE, operation.path
            except (Exception, BaseExceptionGroup) as e:  # every operation's failures are collected
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {e}")
    listed = {(m, p) for p, item in schema.raw_schema["paths"].items() for m in item if m in _METHODS}
    # schemathesis leaves out the operation its schema was loaded from
    assert seen == listed - {("get", "/openapi.json")} and len(seen) >= 24, sorted(listed - seen)
    return failures


async def test_schemathesis_every_operation(tmp_path: Path, shared_state_dir: Path) -> None:
    async with ib_daemon(tmp_path, tcp=True, shared_state=shared_state_dir) as daemon:
        started = time.monotonic()
        failures = await asyncio.to_thread(_run, daemon)
        took = time.monotonic() - started
    assert failures == [], "\n\n".join(failures)
    assert took < RUN_LIMIT, took
