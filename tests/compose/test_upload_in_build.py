"""Upload targets run inside the build job (issue 7 §3-4): the tiny image goes to moto S3 and is
downloaded back through the presigned URL; a failing target fails the compose with error 28."""

from __future__ import annotations

import json
import os

import aiohttp
import pytest
from testdata import data_file

from osbuildd.compose import UploadTarget

from .helpers import enqueue_manifest, wait_state
from .test_executor import open_services


@pytest.fixture(scope="module")
def moto() -> str:
    url = os.environ.get("OSBUILDD_TEST_MOTO")
    if not url:
        pytest.fail("OSBUILDD_TEST_MOTO is not set: run the suite with `make test` (scripts/test-servers.sh)")
    import boto3
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="s3cr3t-compose-key")
    s3.create_bucket(Bucket="osbuildd-compose-test")
    return url


def s3_target(moto: str, bucket: str) -> UploadTarget:
    return UploadTarget("org.osbuild.aws.s3", "tiny", {
        "endpoint": moto, "region": "us-east-1", "bucket": bucket, "key": "compose-test",
        "accessKeyID": "testing", "secretAccessKey": "s3cr3t-compose-key"})


async def test_s3_target_then_download(tmp_path, moto, require_root):
    tiny = json.loads(data_file("osbuild", "tiny-tar.manifest.json").read_text())
    s = await open_services(tmp_path)
    try:
        cid = await enqueue_manifest(s, tiny, exports=["archive"], filename="tree.tar",
                                     targets=[s3_target(moto, "osbuildd-compose-test")])
        c = await wait_state(s, cid, {"finished", "failed", "canceled"}, 180)
        assert c.state == "finished", c.error
        assert c.upload_statuses and c.upload_statuses[0]["status"] == "success"
        url = c.result["target_results"][0]["options"]["url"]
        async with aiohttp.ClientSession() as http, http.get(url) as r:
            assert r.status == 200
            body = await r.read()
        assert body == c.image_path.read_bytes()
        # secrets of the request never show in the result
        assert "s3cr3t-compose-key" not in json.dumps(c.result)
        assert "s3cr3t-compose-key" not in json.dumps(c.request)
    finally:
        await s.close()


async def test_failing_target_fails_the_compose(tmp_path, moto, require_root):
    tiny = json.loads(data_file("osbuild", "tiny-tar.manifest.json").read_text())
    s = await open_services(tmp_path)
    try:
        cid = await enqueue_manifest(s, tiny, exports=["archive"], filename="tree.tar", targets=[
            s3_target(moto, "no-such-bucket-here"), UploadTarget("org.osbuild.worker.server")])
        c = await wait_state(s, cid, {"finished", "failed", "canceled"}, 180)
        assert c.state == "failed" and c.error["id"] == 28
        assert [u["status"] for u in c.upload_statuses] == ["failure"]
        local = [t for t in c.result["target_results"] if t["name"] == "org.osbuild.worker.server"]
        assert local and local[0]["options"]["artifact_path"] == str(c.image_path or
                                                                     tmp_path / "results" / cid / "tree.tar")
        assert (tmp_path / "results" / cid / "tree.tar").is_file()   # the artifact stays, as upstream
    finally:
        await s.close()
