"""The identity middleware and request validation on the real daemon: every identity error case with
identity.py's (upstream's) status and message (plain text from the identity library, JSON for the
Associate and allowed_org_ids refusals), the routes that need no identity, and the router's and
validator's answers (404, 405, 400 with kin-openapi's wording, 415)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from osbuildd.imagebuilder import identity as ident

from .ib_daemon import IB, ORG_A, ORG_B, IBDaemon, ib_daemon, identity

pytestmark = pytest.mark.asyncio(loop_scope="module")
ALLOWED = [ORG_A, ORG_B]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ib(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[IBDaemon]:
    async with ib_daemon(tmp_path_factory.mktemp("identity"), allowed_org_ids=ALLOWED) as d:
        yield d


def b64(doc: object) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def _ident(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"type": "User", "account_number": "000000", "org_id": ORG_A,
                               "internal": {"org_id": ORG_A}}
    base.update(fields)
    return {"identity": {k: v for k, v in base.items() if v is not None}}


PLAIN = [
    ("missing", None, 401, ident.MISSING),
    ("not base64", "notbase64", 400, ident.NOT_BASE64),
    ("not json", base64.b64encode(b"this is not json").decode(), 400, ident.NOT_JSON),
    ("wrong type", b64({"identity": {"org_id": 5}}), 400, ident.NOT_JSON),
    ("no account", b64(_ident(account_number=None)), 400, ident.BAD_ACCOUNT),
    ("account -1", b64(_ident(account_number="-1")), 400, ident.BAD_ACCOUNT),
    ("no org_id", b64(_ident(org_id=None, internal={"org_id": ""})), 400, ident.BAD_ORG),
    ("no type", b64(_ident(type=None)), 400, ident.NO_TYPE),
]


@pytest.mark.parametrize(("header", "status", "message"), [p[1:] for p in PLAIN], ids=[p[0] for p in PLAIN])
@pytest.mark.parametrize("path", ["version", "composes", "blueprints", "no-such-route"])
async def test_identity_library_refusals_are_plain_text(ib: IBDaemon, path: str, header: str | None,
                                                         status: int, message: str) -> None:
    r = await ib.call("GET", path, org=None, headers={"X-Rh-Identity": header} if header else {})
    assert r.status == status, r.text
    assert r.text == ident.IdentityError(status, message).body
    assert r.headers["Content-Type"].startswith("text/plain")


async def test_two_identity_headers_are_refused(ib: IBDaemon) -> None:
    url = f"http://localhost{IB}/version"
    headers = [("X-Rh-Identity", identity(ORG_A)), ("X-Rh-Identity", identity(ORG_A))]
    async with ib.session.get(url, headers=headers) as r:
        assert r.status == 400
        assert await r.text() == ident.IdentityError(400, ident.NOT_ONE).body


async def test_associate_is_refused_in_json(ib: IBDaemon) -> None:
    header = b64({"identity": {"type": "Associate", "associate": {"email": "a@redhat.com"}}})
    r = await ib.call("GET", "composes", org=None, headers={"X-Rh-Identity": header})
    assert r.status == 400
    assert r.error() == ("400", ident.ASSOCIATE)


async def test_an_org_outside_allowed_org_ids_is_refused(ib: IBDaemon) -> None:
    for path in ("version", "composes", "distributions"):
        r = await ib.call("GET", path, org="999999")
        assert r.status == 404, r.text
        assert r.error() == ("404", ident.NOT_ALLOWED)
    r = await ib.call("POST", "blueprints", {"name": "x", "image_requests": [], "customizations": {}}, org="999999")
    assert (r.status, r.error()[1]) == (404, ident.NOT_ALLOWED)
    # whose internal org id is allowed does not matter: the org every query is scoped by is checked
    header = b64(_ident(org_id="999999", internal={"org_id": ORG_A}))
    assert (await ib.call("GET", "composes", org=None, headers={"X-Rh-Identity": header})).status == 404
    assert (await ib.call("GET", "composes", org=ORG_B)).status == 200


@pytest.mark.parametrize("path", ["/openapi.json", f"{IB}/openapi.json", "/api/image-builder/v1.0/openapi.json",
                                  "/status", "/ready"])
async def test_routes_without_identity(ib: IBDaemon, path: str) -> None:
    r = await ib.call("GET", path, org=None)
    assert r.status == 200, r.text
    if path.endswith("openapi.json"):
        spec = r.json()
        assert spec["info"]["version"] == "1.0"
        enum = spec["components"]["schemas"]["Distributions"]["enum"]
        assert {"debian-12", "debian-13", "rhel-9", "centos-9", "fedora-42"} <= set(enum)


async def test_both_prefixes_serve_every_route(ib: IBDaemon) -> None:
    for prefix in (IB, "/api/image-builder/v1.0"):
        for path in ("version", "ready", "distributions", "composes", "blueprints", "architectures/debian-12"):
            r = await ib.call("GET", f"{prefix}/{path}")
            assert r.status == 200, (prefix, path, r.text)


async def test_router_answers(ib: IBDaemon) -> None:
    r = await ib.call("GET", "no-such-route")
    assert (r.status, r.error()[0]) == (404, "404")
    r = await ib.call("GET", "/nothing-here", org=None)
    assert r.status == 404
    r = await ib.call("PATCH", "composes")
    assert (r.status, r.error()[0]) == (405, "405")
    r = await ib.call("DELETE", "distributions")
    assert r.status == 405


VALIDATION = [
    ("GET", "composes?limit=0", None, 'parameter "limit" in query has an error: number must be at least 1'),
    ("GET", "composes?limit=101", None, 'parameter "limit" in query has an error: number must be at most 100'),
    ("GET", "composes?offset=-1", None, 'parameter "offset" in query has an error: number must be at least 0'),
    ("GET", "composes?limit=abc", None, 'parameter "limit" in query has an error: value abc: an invalid integer'),
    ("GET", "composes?ignoreImageTypes=nope", None, 'parameter "ignoreImageTypes" in query has an error: '
                                                    'Error at "/0": value is not one of the allowed values'),
    ("GET", "composes/not-a-uuid", None, "Invalid format for parameter composeId"),
    ("GET", "blueprints/not-a-uuid", None, "Invalid format for parameter id"),
    ("GET", "architectures/no-such-distro", None,
     'parameter "distribution" in path has an error: value is not one of the allowed values'),
    ("GET", "packages?distribution=debian-12&architecture=x86_64", None,
     'parameter "search" in query has an error: value is required but missing'),
    ("POST", "compose", {"image_requests": [IMAGE := {"architecture": "x86_64", "image_type": "guest-image",
                                                       "upload_request": {"type": "aws.s3", "options": {}}}],
                         "distribution": "debian-12", "extra": 1},
     'Error at "/extra": property "extra" is unsupported'),
    ("POST", "compose", {"distribution": "debian-12"}, 'Error at "/image_requests": property "image_requests" is missing'),
    ("POST", "compose", {"distribution": "debian-12", "image_requests": [{**IMAGE, "architecture": "s390x"}]},
     'Error at "/image_requests/0/architecture": value is not one of the allowed values'),
    ("POST", "compose", {"distribution": "debian-12", "image_requests": [IMAGE], "image_name": "x" * 101},
     'Error at "/image_name": maximum string length is 100'),
    ("POST", "blueprints", {"name": "n", "image_requests": [IMAGE]}, 'property "customizations" is missing'),
]


@pytest.mark.parametrize(("method", "path", "body", "detail"), VALIDATION, ids=[f"{v[0]} {v[1]} {i}"
                                                                               for i, v in enumerate(VALIDATION)])
async def test_validation_answers_400_naming_the_field(ib: IBDaemon, method: str, path: str, body: object,
                                                       detail: str) -> None:
    r = await ib.call(method, path, body)
    assert r.status == 400, r.text
    title, text = r.error()
    assert title == "400" and detail in text, text
    if body is not None:
        assert text.startswith("request body has an error: doesn't match schema #/components/schemas/"), text


async def test_bodies_that_are_not_json(ib: IBDaemon) -> None:
    r = await ib.call("POST", "compose", raw=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status == 415 and r.error() == ("415", "request must be json-encoded")
    r = await ib.call("POST", "compose", raw=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400 and "failed to decode request body" in r.error()[1]
    r = await ib.call("POST", "compose", raw=b"", headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.error()[1] == "request body has an error: value is required but missing"
    # nothing was stored by any of it
    assert ib.rows("SELECT COUNT(*) FROM ib_composes") == [(0,)]
