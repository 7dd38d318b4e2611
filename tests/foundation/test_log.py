"""Logging: JSON lines off a terminal, bound context, secrets masked at any depth."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from osbuildd import log


@pytest.fixture(autouse=True)
def _restore_structlog():
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = []


def test_json_lines_with_bound_ids_and_masked_secrets() -> None:
    out = io.StringIO()  # not a tty: "auto" renders JSON
    log.setup("info", "auto", stream=out)
    logger = log.get_logger("osbuildd.test", compose_id="c-1")
    logger.info("upload", job_id="j-1", password="hunter2", target={
        "name": "org.osbuild.aws", "options": {"accessKeyID": "AKIA", "secretAccessKey": "shh", "region": "eu"}},
        aws_secret_key="s3cr3t", token="tok", keys=["ssh-ed25519 AAAA"], image_name="disk.qcow2")
    logger.debug("hidden at info level")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["event"] == "upload" and event["compose_id"] == "c-1" and event["job_id"] == "j-1"
    assert event["level"] == "info" and event["image_name"] == "disk.qcow2"
    assert event["password"] == event["aws_secret_key"] == event["token"] == log.REDACTED
    assert event["keys"] == ["ssh-ed25519 AAAA"]  # public keys are not secrets
    assert event["target"]["options"] == {"accessKeyID": log.REDACTED, "secretAccessKey": log.REDACTED,
                                          "region": "eu"}
    for secret in ("hunter2", "s3cr3t", "shh", "AKIA", "tok\""):
        assert secret not in lines[0]


def test_stdlib_loggers_go_through_the_same_pipeline() -> None:
    out = io.StringIO()
    log.setup("debug", "json", stream=out)
    logging.getLogger("aiohttp.server").error("boom %s", "x")
    event = json.loads(out.getvalue().splitlines()[-1])
    assert event["event"] == "boom x" and event["level"] == "error"


def test_console_format() -> None:
    out = io.StringIO()
    log.setup("info", "console", stream=out)
    log.get_logger().info("hello", credentials="/etc/secret.json")
    text = out.getvalue()
    assert "hello" in text and "/etc/secret.json" not in text and not text.startswith("{")


@pytest.mark.parametrize("key, secret", [
    ("password", True), ("client_secret", True), ("sas-token", True), ("private_key", True),
    ("accessKeyId", True), ("credentials", True), ("key", True),
    ("keyboard", False), ("image_type", False), ("tokenizer", False), ("monkey", False),
])
def test_is_secret_key(key: str, secret: bool) -> None:
    assert log.is_secret_key(key) is secret
