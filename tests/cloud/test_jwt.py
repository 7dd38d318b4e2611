"""The Cloud API with JWT bearer tokens (upstream's ``[koji] enable_jwt``) on ``osbuildd serve``: keys
from a JWKS served by the test over HTTPS on 127.0.0.1 (verified with ``jwt_ca_file``) or from a file;
refusals 401 (id 401) / 403 (id 2) / 400 (id 28) in the Cloud error shape; /openapi and /errors public;
a rotated key fetched on its first unknown kid, a flood of made-up kids not."""

from __future__ import annotations

from pathlib import Path

from osbuildd.api.jwtauth import REFRESH_INTERVAL

from .tlsutil import (
    JWKSServer,
    SigningKey,
    TLSDaemon,
    cloud_daemon_tls,
    cloud_error,
    get,
    passed_auth,
    token,
)


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


async def test_valid_token_passes(jwt_cloud: TLSDaemon) -> None:
    tok = jwt_cloud.token(tenant="000001")
    async with jwt_cloud.client(headers=bearer(tok)) as session:
        for _ in range(3):
            assert passed_auth(answer := await get(session, f"{jwt_cloud.base}/composes/")), answer
    assert tok not in jwt_cloud.log_text() and tok.split(".")[2] not in jwt_cloud.log_text()


async def test_refusals(jwt_cloud: TLSDaemon) -> None:
    base = jwt_cloud.base
    assert jwt_cloud.jwks is not None
    known = jwt_cloud.jwks.keys[0]
    impostor = SigningKey(known.kid)   # another private key under the known kid
    cases = {
        "no token": ({}, 401, 401),
        "not a JWT": (bearer("abc.def"), 401, 401),
        "not bearer": ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, 401),
        "wrong key": (bearer(token(impostor)), 401, 401),
        "expired": (bearer(jwt_cloud.token(ttl=-60)), 401, 401),
        "no tenant": (bearer(jwt_cloud.token(tenant=None)), 400, 28),
        "empty tenant": (bearer(jwt_cloud.token(tenant="")), 400, 28),
    }
    async with jwt_cloud.client() as session:   # TLS without a client certificate
        for name, (headers, status, error_id) in cases.items():
            body = cloud_error(await get(session, f"{base}/composes/", headers=headers), status, error_id)
            assert body["details"] or body["reason"], name
        # public routes, as upstream's exemptions: no token needed
        for path in ("/openapi", "/errors", "/errors/4"):
            answer = await get(session, base + path)
            assert passed_auth(answer), (path, answer)
    log = jwt_cloud.log_text()
    assert "Traceback" not in log
    for headers, _, _ in cases.values():
        value = headers.get("Authorization", "")
        assert not value or value.split(" ", 1)[1] not in log   # no token ever in the log


async def test_key_rotation_and_kid_flood(jwt_cloud: TLSDaemon) -> None:
    jwks = jwt_cloud.jwks
    assert jwks is not None
    async with jwt_cloud.client() as session:
        assert passed_auth(await get(session, f"{jwt_cloud.base}/composes/", headers=bearer(jwt_cloud.token())))
        assert jwks.hits == 1
        old = jwks.keys[0]
        new = jwks.rotate("key-2")
        # a token under the new kid: unknown, so the JWKS is fetched again and the token accepted
        assert passed_auth(await get(session, f"{jwt_cloud.base}/composes/", headers=bearer(token(new))))
        assert jwks.hits == 2
        # old tokens keep working only while their key is cached: it is gone from the fetched set
        cloud_error(await get(session, f"{jwt_cloud.base}/composes/", headers=bearer(token(old))), 401, 401)
        before = jwks.hits
        for i in range(20):   # made-up kids: at most one fetch per REFRESH_INTERVAL
            tok = token(new, kid=f"bogus-{i}")
            cloud_error(await get(session, f"{jwt_cloud.base}/composes/", headers=bearer(tok)), 401, 401)
        assert jwks.hits <= before + 1, (jwks.hits, before, REFRESH_INTERVAL)
        assert passed_auth(await get(session, f"{jwt_cloud.base}/composes/", headers=bearer(token(new))))


async def test_acl_file_and_jwks_file_over_plain_http(tmp_path: Path, certs: Path) -> None:
    # upstream's own test setup: enable_tls = false, enable_jwt = true; keys from a local JWKS file
    jwks = JWKSServer(certs)   # not started: only its keys and document
    keys_file = jwks.write(tmp_path / "jwks.json")
    acl = tmp_path / "acl.yml"
    acl.write_text("- claim: email\n  pattern: ^.*@example\\.com$\n- claim: sub\n  pattern: ^service-account-\n")
    section = {"enable_tls": False, "enable_mtls": False, "enable_jwt": True,
               "jwt_keys_urls": [f"file://{keys_file}"], "jwt_acl_file": str(acl),
               "jwt_tenant_provider_fields": ["rh-org-id", "account_id"]}
    async with cloud_daemon_tls(tmp_path, section, certs=None, jwks=jwks) as daemon:
        key = jwks.keys[0]
        async with daemon.client() as session:
            url = f"{daemon.base}/composes/"
            ok = token(key, email="alice@example.com")
            assert passed_auth(await get(session, url, headers=bearer(ok)))
            ok = token(key, tenant="42", tenant_claim="account_id", sub="service-account-7")
            assert passed_auth(await get(session, url, headers=bearer(ok)))
            body = cloud_error(await get(session, url, headers=bearer(token(key, email="bob@other.org"))), 403, 2)
            assert "access control list" in body["details"]
            cloud_error(await get(session, url, headers=bearer(token(key, email=None))), 403, 2)
            cloud_error(await get(session, url), 401, 401)


async def test_bad_acl_file_fails_start(tmp_path: Path, certs: Path, jwks: JWKSServer) -> None:
    from foundation.daemon_helpers import free_port

    from .tlsutil import jwt_section, serve, write_config

    acl = tmp_path / "acl.yml"
    acl.write_text("- claim: email\n  pattern: '(unclosed'\n")
    config, _, _ = write_config(tmp_path, {"listen": f"127.0.0.1:{free_port()}", **jwt_section(certs, jwks, jwt_acl_file=str(acl))})
    proc, notify, log = await serve(config, tmp_path)
    rc = await proc.wait()
    notify.close()
    text = log.read_text()
    assert rc == 1 and "jwt_acl_file" in text and str(acl) in text and "Traceback" not in text, text
