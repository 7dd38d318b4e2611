"""[image_builder] configuration keys and image-builder's environment variables over them."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

from osbuildd.config import (
    IMAGE_BUILDER_ENV,
    Config,
    ConfigError,
    ImageBuilderConfig,
    ListenerConfig,
    apply_image_builder_env,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "etc" / "osbuildd.toml"
FIELDS = [f.name for f in dataclasses.fields(ImageBuilderConfig)]
OSBUILDD_ONLY = {"web", "test_composes"}   # osbuildd's extensions: no image-builder variable


def test_defaults() -> None:
    c = Config()
    ib = c.image_builder
    assert isinstance(ib, ImageBuilderConfig) and isinstance(ib, ListenerConfig)
    assert ib.address is None and ib.allowed_org_ids == ["*"]
    assert ib.osbuild_url == "" and ib.distributions_dir == "" and ib.quota_file == "" and ib.allow_file == ""
    assert (ib.pg_host, ib.pg_port, ib.pg_database, ib.pg_user, ib.pg_sslmode) == ("", 5432, "imagebuilder",
                                                                                   "postgres", "prefer")


def test_example_file_documents_every_key_and_variable() -> None:
    text = EXAMPLE.read_text()
    section = text.split("\n[image_builder]\n", 1)[1].split("\n[", 1)[0]
    keys = tomllib.loads(section)
    assert sorted(keys) == sorted(FIELDS)
    assert Config.load(EXAMPLE).image_builder == ImageBuilderConfig()
    for var in IMAGE_BUILDER_ENV:
        assert var in section, var
    assert set(IMAGE_BUILDER_ENV.values()) == set(FIELDS) - OSBUILDD_ONLY


def test_keys_from_the_file() -> None:
    c = Config.from_toml("""
[image_builder]
listen = "127.0.0.1:8086"
allowed_org_ids = ["000001", "000002"]
distributions_dir = "/srv/distributions"
quota_file = "/etc/ib/quotas.json"
osbuild_url = "https://composer.example.com"
osbuild_cert_path = "/etc/ib/client.crt"
osbuild_key_path = "/etc/ib/client.key"
composer_token_url = "https://sso.example.com/token"
composer_offline_token = "sekrit-offline"
pg_port = 6543
""")
    ib = c.image_builder
    assert ib.address is not None and (ib.address.host, ib.address.port) == ("127.0.0.1", 8086)
    assert ib.allowed_org_ids == ["000001", "000002"] and ib.pg_port == 6543
    assert "sekrit-offline" not in repr(ib) and "sekrit-offline" not in repr(c)


@pytest.mark.parametrize("body, message", [
    ('nope = 1', "image_builder.nope: unknown key"),
    ('pg_port = "x"', "image_builder.pg_port: must be an integer"),
    ('pg_port = 0', "image_builder.pg_port: must be a port number"),
    ('log_level = "trace"', "image_builder.log_level: must be"),
    ('allowed_org_ids = ["a", ""]', "image_builder.allowed_org_ids: must not contain empty strings"),
    ('quota_file = "quotas.json"', "image_builder.quota_file: must be an absolute path"),
    ('distributions_dir = "d"', "image_builder.distributions_dir: must be an absolute path"),
    ('osbuild_url = "composer:443"', "image_builder.osbuild_url: must be an http(s):// URL"),
    ('osbuild_cert_path = "/c.pem"', "image_builder.osbuild_cert_path: osbuild_cert_path and osbuild_key_path"),
    ('composer_offline_token = "t"', "image_builder.composer_token_url: must be set"),
    ('composer_client_secret = "s"', "image_builder.composer_client_id: must be set"),
    ('listen = "nonsense"', "image_builder.listen: expected"),
])
def test_bad_keys(body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^<config>: " + message.replace("(", r"\(").replace(")", r"\)")):
        Config.from_toml(f"[image_builder]\n{body}\n")


def _value(key: str) -> Any:
    return {"listen": "0.0.0.0:8086", "log_level": "debug", "allowed_org_ids": "a;b", "pg_port": "5433",
            "composer_token_url": "https://sso.example.com/token", "composer_client_id": "client",
            "osbuild_url": "https://composer.example.com"}.get(key, f"/abs/{key}")


@pytest.mark.parametrize("var", sorted(IMAGE_BUILDER_ENV))
def test_each_variable_overrides_its_key(var: str) -> None:
    key = IMAGE_BUILDER_ENV[var]
    env = {var: _value(key)}
    if key in ("composer_offline_token", "composer_client_secret", "composer_client_id"):   # need companions
        env |= {"COMPOSER_TOKEN_URL": "https://sso.example.com/token", "COMPOSER_CLIENT_ID": "client"}
    if key in ("osbuild_cert_path", "osbuild_key_path"):
        env |= {"OSBUILD_CERT_PATH": "/abs/c", "OSBUILD_KEY_PATH": "/abs/k"}
    base = ImageBuilderConfig()
    out, applied = apply_image_builder_env(base, env)
    assert var in applied and sorted(applied) == sorted(env)
    got = getattr(out, key)
    expected = {"allowed_org_ids": ["a", "b"], "pg_port": 5433}.get(key, env.get(var))
    if key in ("osbuild_cert_path", "osbuild_key_path"):
        expected = env["OSBUILD_CERT_PATH" if key == "osbuild_cert_path" else "OSBUILD_KEY_PATH"]
    assert got == expected
    assert base == ImageBuilderConfig()        # the given config is not changed


def test_unset_variables_keep_the_files_keys() -> None:
    base = dataclasses.replace(ImageBuilderConfig(), quota_file="/etc/q.json", aws_region="eu-west-1")
    out, applied = apply_image_builder_env(base, {"OSBUILD_GCP_REGION": "europe-west3", "UNRELATED": "x"})
    assert applied == ["OSBUILD_GCP_REGION"]
    assert (out.quota_file, out.aws_region, out.gcp_region) == ("/etc/q.json", "eu-west-1", "europe-west3")


def test_set_but_empty_variable_wins() -> None:
    base = dataclasses.replace(ImageBuilderConfig(), listen="127.0.0.1:8086", quota_file="/etc/q.json")
    out, _ = apply_image_builder_env(base, {"LISTEN_ADDRESS": "", "QUOTA_FILE": "", "ALLOWED_ORG_IDS": ""})
    assert out.address is None and out.quota_file == "" and out.allowed_org_ids == []


def test_upstream_value_forms() -> None:
    out, _ = apply_image_builder_env(ImageBuilderConfig(), {"LISTEN_ADDRESS": ":8086", "LOG_LEVEL": "WARN"})
    assert out.address is not None and (out.address.host, out.address.port) == ("0.0.0.0", 8086)
    assert out.log_level == "warning"
    for upstream, ours in (("TRACE", "debug"), ("Debug", "debug"), ("INFO", "info"), ("error", "error")):
        assert apply_image_builder_env(ImageBuilderConfig(), {"LOG_LEVEL": upstream})[0].log_level == ours
    assert apply_image_builder_env(ImageBuilderConfig(), {"ALLOWED_ORG_IDS": "*"})[0].allowed_org_ids == ["*"]


def test_current_and_earlier_names_of_one_setting() -> None:
    out, _ = apply_image_builder_env(ImageBuilderConfig(), {"COMPOSER_URL": "https://new.example.com",
                                                            "COMPOSER_CA_PATH": "/abs/new-ca.pem"})
    assert (out.osbuild_url, out.osbuild_ca_path) == ("https://new.example.com", "/abs/new-ca.pem")
    out, _ = apply_image_builder_env(ImageBuilderConfig(), {"COMPOSER_URL": "https://new.example.com",
                                                            "OSBUILD_URL": "https://old.example.com"})
    assert out.osbuild_url == "https://old.example.com"


@pytest.mark.parametrize("env, message", [
    ({"PGPORT": "x"}, "<environment>: PGPORT: must be a port number"),
    ({"PGPORT": "70000"}, "<environment>: PGPORT: must be a port number"),
    ({"LOG_LEVEL": "loud"}, "<environment>: LOG_LEVEL: must be one of"),
    ({"LISTEN_ADDRESS": "nonsense"}, "<environment>: LISTEN_ADDRESS: expected"),
    ({"QUOTA_FILE": "relative.json"}, "<environment>: QUOTA_FILE: must be an absolute path"),
    ({"OSBUILD_URL": "composer"}, "<environment>: OSBUILD_URL: must be an http"),
    ({"COMPOSER_OFFLINE_TOKEN": "t"}, "<config>: image_builder.composer_token_url (COMPOSER_TOKEN_URL): must be set"),
])
def test_bad_variables(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        apply_image_builder_env(ImageBuilderConfig(), env)
    assert str(exc.value).startswith(message)
