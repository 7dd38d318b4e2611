"""X-Rh-Identity parsing (osbuildd/imagebuilder/identity.py) against the behaviour of upstream's
identity library (RedHatInsights/identity at image-builder's pinned revision: its test suite's
cases) and image-builder's own checks (server_identity_test.go, the Associate refusal, the old
ALLOWED_ORG_IDS check). Headers and messages are copied here as upstream's tests spell them."""

from __future__ import annotations

import base64
import json

import pytest

from osbuildd.imagebuilder.identity import (
    Entitlement,
    Identity,
    IdentityError,
    check_allowed,
    parse_identity,
)


def b64(doc: object) -> str:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    return base64.b64encode(text.encode()).decode()


def ib_header(org_id: str, entitlements: bool = True) -> dict[str, object]:
    """image-builder's test header (tutils.completeIdHeader): org id only under "internal"."""
    doc: dict[str, object] = {"identity": {
        "type": "User",
        "user": {"username": "user", "email": "user@user.user", "first_name": "user",
                 "last_name": "user", "is_active": True, "is_org_admin": True, "is_internal": True,
                 "locale": "en-US"},
        "internal": {"org_id": org_id}, "account_number": "000000"}}
    if entitlements:
        doc["entitlements"] = {name: {"is_entitled": True} for name in
                               ("insights", "rhel", "smart_management", "openshift", "hybrid",
                                "migrations", "ansible")}
    return doc


def refused(values: list[str]) -> IdentityError:
    with pytest.raises(IdentityError) as err:
        parse_identity(values)
    return err.value


# -- accepted ---------------------------------------------------------------------------------------

def test_image_builders_test_header() -> None:
    header = b64(ib_header("000000"))
    ident = parse_identity([header])
    assert isinstance(ident, Identity)
    assert (ident.org_id, ident.internal_org_id, ident.account_number, ident.type) == \
        ("000000", "000000", "000000", "User")   # org_id taken from internal.org_id
    assert ident.email == "user@user.user" and ident.user.username == "user"
    assert ident.user.is_org_admin and ident.user.locale == "en-US" and ident.user.user_id == ""
    assert ident.entitlements["rhel"] == Entitlement(is_entitled=True, is_trial=False)
    assert ident.is_entitled("rhel") and ident.header == header


@pytest.mark.parametrize("doc", [   # the identity library's validJson
    {"identity": {"account_number": "540155", "org_id": "1979710", "type": "User",
                  "internal": {"org_id": "1979710"}}},
    {"identity": {"account_number": "540155", "type": "User", "internal": {"org_id": "1979710"}}},
])
def test_the_librarys_valid_headers(doc: dict[str, object]) -> None:
    ident = parse_identity([b64(doc)])
    assert (ident.org_id, ident.internal_org_id, ident.account_number) == ("1979710", "1979710", "540155")


def test_entitlement_falls_back_to_the_account_number() -> None:
    without = parse_identity([b64(ib_header("000000", entitlements=False))])
    assert without.entitlements == {} and without.is_entitled("rhel")   # account number present
    doc = ib_header("000000")
    doc["entitlements"] = {"rhel": {"is_entitled": False, "is_trial": True}}
    ident = parse_identity([b64(doc)])
    assert not ident.is_entitled("rhel") and ident.entitlements["rhel"].is_trial
    assert ident.is_entitled("ansible")   # not in the header: the account number decides


def test_json_is_read_as_gos_encoding_json_reads_it() -> None:
    # keys match case-insensitively, a later duplicate wins, null leaves a field empty, unknown
    # fields are ignored, and standard base64 may carry line breaks
    text = ('{"IDENTITY": {"Account_Number": "1", "ORG_ID": null, "org_id": "7", "Type": "User",'
            ' "internal": {"org_id": "x"}, "internal": {"Org_Id": "7"}, "extra": [1, {"a": null}],'
            ' "system": {"cn": "abc", "n": 1.5}, "associate": {"Role": ["a", null]}}, "other": 1}')
    encoded = b64(text)
    wrapped = encoded[:10] + "\r\n" + encoded[10:]
    ident = parse_identity([wrapped])
    assert (ident.org_id, ident.internal_org_id, ident.account_number, ident.type) == ("7", "7", "1", "User")


# -- refused, with upstream's status and message ------------------------------------------------------

def test_no_header_is_401() -> None:
    err = refused([])
    assert (err.status, err.message, err.plain_text) == (401, "missing identity header", True)
    assert err.body == "Unauthorized: missing identity header\n"   # Go's http.Error text


def test_two_headers_are_refused() -> None:
    header = b64(ib_header("000000"))
    err = refused([header, header])
    assert (err.status, err.message) == (400, "missing x-rh-identity header")
    assert err.body == "Bad Request: missing x-rh-identity header\n"


@pytest.mark.parametrize("value", [
    "notbase64",                                   # image-builder's BogusAuthString
    "=" + b64(ib_header("000000")),                # the library's invalid b64 case
    b64('{"identity": {}}').rstrip("="),           # unpadded: StdEncoding wants the padding
    b64(ib_header("000000"))[:-4] + "*AA=",         # outside the alphabet
    "w6kK==é",                                     # not even ASCII
])
def test_not_base64(value: str) -> None:
    err = refused([value])
    assert (err.status, err.message, err.plain_text) == (400, "unable to b64 decode x-rh-identity header", True)


@pytest.mark.parametrize("text", [
    "this is definitely not json\n",               # image-builder's BogusBase64AuthString
    json.dumps(ib_header("000000")) + "}",         # the library's invalid JSON case
    "",                                            # empty: unexpected end of input
    '["identity"]',                                # not an object
    '"identity"',
    '{"identity": {"org_id": 1979710, "account_number": "1", "type": "User", "internal": {"org_id": "1"}}}',
    '{"identity": {"account_number": "1", "type": "User", "internal": "1979710"}}',
    '{"identity": {"account_number": "1", "type": "User", "internal": {"org_id": "1"},'
    ' "user": {"is_active": "yes"}}}',
    '{"identity": {"account_number": "1", "type": "User", "internal": {"org_id": "1"}, "system": []}}',
    '{"identity": {"account_number": "1", "type": "User", "internal": {"org_id": "1"},'
    ' "associate": {"Role": "admin"}}}',
    '{"identity": {"account_number": "1", "type": "User", "internal": {"org_id": "1"},'
    ' "system": {"n": 1e400}}}',                   # beyond float64
    '{"identity": {"account_number": NaN}}',
    '{"identity": {}, "entitlements": {"rhel": true}}',
    '{"identity": {}, "entitlements": []}',
    '\ufeff{"identity": {}}',                      # a byte order mark is no JSON
])
def test_not_json(text: str) -> None:
    err = refused([b64(text)])
    assert (err.status, err.message) == (400, "x-rh-identity header is does not contain valid JSON")
    assert err.body == "Bad Request: x-rh-identity header is does not contain valid JSON\n"


@pytest.mark.parametrize("doc", [
    {"type": "User", "org_id": "1979710", "internal": {"org_id": "1979710"}},   # the library's case: no "identity"
    {"identity": {"org_id": "1979710", "type": "User", "internal": {"org_id": "1979710"}}},
    {"identity": {"account_number": "-1", "org_id": "1979710", "type": "User",
                  "internal": {"org_id": "1979710"}}},
    {"identity": {"account_number": "-1", "type": "Associate", "internal": {"org_id": "1979710"}}},
    None,                                          # JSON null: an empty identity
])
def test_missing_or_invalid_account_number(doc: object) -> None:
    err = refused([b64("null" if doc is None else json.dumps(doc))])
    assert (err.status, err.message) == (400, "x-rh-identity header has an invalid or missing account number")


@pytest.mark.parametrize("doc", [
    ib_header(""),                                 # image-builder's EmptyOrgID vector
    {"identity": {"account_number": "540155", "type": "User", "internal": {}}},
    # a top-level org_id without internal.org_id is refused too (the library checks both)
    {"identity": {"account_number": "540155", "org_id": "1979710", "type": "User", "internal": {}}},
    {"identity": {"account_number": "540155", "org_id": "1979710", "type": "User"}},
])
def test_missing_org_id(doc: object) -> None:
    err = refused([b64(doc)])
    assert (err.status, err.message, err.plain_text) == \
        (400, "x-rh-identity header has an invalid or missing org_id", True)


def test_missing_type() -> None:
    doc = {"identity": {"account_number": "540155", "type": "", "org_id": "1979710",
                        "internal": {"org_id": "1979710"}}}
    err = refused([b64(doc)])
    assert (err.status, err.message) == (400, "x-rh-identity header is missing type")


@pytest.mark.parametrize("doc", [
    {"identity": {"type": "Associate"}},           # passes the library (no account number)...
    {"identity": {"account_number": "540155", "org_id": "1979710", "type": "Associate",
                  "internal": {"org_id": "1979710"}}},
    {"identity": {"account_number": "540155", "type": "Associate", "internal": {"org_id": "1979710"}}},
])
def test_associate_accounts_are_refused(doc: object) -> None:
    err = refused([b64(doc)])   # ...and image-builder refuses it, in its JSON error list
    assert (err.status, err.message, err.plain_text) == (400, "unsupported account type: 'Associate'", False)


def test_the_librarys_checks_come_before_the_associate_refusal() -> None:
    doc = {"identity": {"account_number": "540155", "type": "Associate", "internal": {}}}
    err = refused([b64(doc)])
    assert (err.status, err.message, err.plain_text) == \
        (400, "x-rh-identity header has an invalid or missing org_id", True)


# -- allowed_org_ids ----------------------------------------------------------------------------------

def test_allowed_org_ids() -> None:
    ident = parse_identity([b64(ib_header("000000"))])
    check_allowed(ident, None)                     # no list configured: no check
    check_allowed(ident, ["*"])
    check_allowed(ident, ["123", "000000"])
    for allowed in (["000001"], [], ["00000"]):
        with pytest.raises(IdentityError) as err:
            check_allowed(ident, allowed)
        assert (err.value.status, err.value.message, err.value.plain_text) == \
            (404, "Organization or account not allowed", False)
