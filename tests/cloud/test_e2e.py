"""A real Debian 12 qcow2 composed through the Cloud API over HTTPS with mTLS, end to end.

One module fixture starts ``osbuildd serve`` (gen-certs' server certificate, the local executor, the
run's shared engine store and cache, ``[aws]`` with a credentials file and a bucket; S3 is moto
through the SDK's ``AWS_ENDPOINT_URL_S3``), posts a compose with an ``aws.s3`` and a ``local`` upload
target, polls ``GET /composes/{id}`` every 0.2 s recording every answer until it is no longer pending,
then reads the compose's download, SBOMs, manifests and metadata and the daemon's job store. The tests
below only look at what was recorded.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import pytest_asyncio
import yaml
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from osbuildd.upload.awsclient import create_client

from .cloud_daemon import SPEC, conforms, share_cache
from .tlsutil import TLSDaemon, cloud_daemon_tls, mtls_section

pytestmark = pytest.mark.build

KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"
BODY: dict[str, Any] = {
    "distribution": "debian-12",
    "image_request": {
        "architecture": "x86_64", "image_type": "guest-image",
        "repositories": [{"baseurl": "http://deb.debian.org/debian"}],
        "upload_targets": [{"type": "aws.s3", "upload_options": {"region": REGION}},
                           {"type": "local", "upload_options": {}}],
    },
    "customizations": {"packages": ["tmux"]},
}
BUILD_LIMIT = 3600.0   # a hang guard, not a timing assertion
POLL = 0.2


@dataclass
class Run:
    daemon: TLSDaemon
    bucket: str
    id: str = ""
    answers: list[dict[str, Any]] = field(default_factory=list)
    download: Path | None = None
    download_headers: dict[str, str] = field(default_factory=dict)
    s3_objects: list[dict[str, Any]] = field(default_factory=list)
    s3_sha256: str = ""
    sboms: dict[str, Any] = field(default_factory=dict)
    manifests: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    logs: dict[str, Any] = field(default_factory=dict)
    db_manifest: Any = None
    built_manifest: Any = None   # what the executor handed to osbuild (results/<id>/manifest.json)

    @property
    def final(self) -> dict[str, Any]:
        return self.answers[-1]

    def uploads(self) -> dict[str, dict[str, Any]]:
        return {u["type"]: u for u in self.final["image_status"].get("upload_statuses", [])}


@functools.cache
def _status_validator() -> jsonschema.Draft4Validator:
    components = yaml.safe_load(SPEC.read_text())["components"]
    options = components["schemas"]["UploadStatus"]["properties"]["options"]
    options["anyOf"] = options.pop("oneOf")
    return jsonschema.Draft4Validator({"$ref": "#/components/schemas/ComposeStatus", "components": components})


def conforms_status(body: Any) -> None:
    """``conforms(body, "ComposeStatus")`` but for one defect of the spec (upstream's too): an
    UploadStatus' options are ``oneOf`` eight schemas of which AWSS3UploadStatus and OCIUploadStatus
    are the same ({url} required), so no aws.s3 status can match exactly one. Checked here as
    ``anyOf``; test_upload_statuses checks the aws.s3 options against AWSS3UploadStatus itself. The
    validator is compiled once: a build is polled every 0.2 s, a thousand answers and more."""
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _status_validator().iter_errors(body)]
    assert errors == [], errors[:5]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _manifest_job_result(state: Path, build_id: str) -> Any:
    """The manifest the build ran: the result of the build job's manifest dependency, read-only."""
    db = sqlite3.connect(f"file:{state / 'osbuildd.db'}?mode=ro", uri=True)
    try:
        row = db.execute(
            "SELECT j.result FROM job_dependencies d JOIN jobs j ON j.id = d.dependency_id"
            " WHERE d.job_id = ? AND j.type = 'manifest-id-only'", (build_id,)).fetchone()
    finally:
        db.close()
    assert row is not None and row[0], f"no manifest job result for build {build_id}"
    return json.loads(row[0])["manifest"]


async def _poll(run: Run, session: Any) -> None:
    base = run.daemon.base
    async with asyncio.timeout(BUILD_LIMIT):
        while True:
            async with session.get(f"{base}/composes/{run.id}") as r:
                assert r.status == 200, await r.text()
                answer = await r.json()
            run.answers.append(answer)
            if answer["status"] != "pending":
                return
            await asyncio.sleep(POLL)


async def _s3(run: Run, moto: str) -> None:
    async with create_client("s3", region=REGION, endpoint=moto, creds=KEYS, path_style=True) as s3:
        listed = await s3.list_objects_v2(Bucket=run.bucket)
        run.s3_objects = listed.get("Contents", [])
        if len(run.s3_objects) == 1:
            obj = await s3.get_object(Bucket=run.bucket, Key=run.s3_objects[0]["Key"])
            h = hashlib.sha256()
            async with obj["Body"] as stream:
                while chunk := await stream.read(1 << 20):
                    h.update(chunk)
            run.s3_sha256 = h.hexdigest()
        for o in run.s3_objects:   # moto keeps objects in memory
            await s3.delete_object(Bucket=run.bucket, Key=o["Key"])
        await s3.delete_bucket(Bucket=run.bucket)


async def _reads(run: Run, session: Any, scratch: Path) -> None:
    base = f"{run.daemon.base}/composes/{run.id}"
    async with session.get(f"{base}/download") as r:
        assert r.status == 200, await r.text()
        run.download_headers = dict(r.headers)
        run.download = scratch / "downloaded.qcow2"
        with await asyncio.to_thread(run.download.open, "wb") as f:
            async for chunk in r.content.iter_chunked(1 << 20):
                await asyncio.to_thread(f.write, chunk)
    for name in ("sboms", "manifests", "metadata", "logs"):
        async with session.get(f"{base}/{name}") as r:
            assert r.status == 200, await r.text()
            setattr(run, name, await r.json())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory, certs: Path, shared_state_dir: Path,
              require_root: None, moto_url: str) -> AsyncIterator[Run]:
    moto = moto_url
    tmp = tmp_path_factory.mktemp("cloud-e2e")
    share_cache(tmp / "state", shared_state_dir)
    creds = tmp / "aws-credentials"
    creds.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    bucket = f"osbuildd-e2e-{uuid.uuid4().hex[:12]}"
    async with create_client("s3", region=REGION, endpoint=moto, creds=KEYS, path_style=True) as s3:
        await s3.create_bucket(Bucket=bucket)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AWS_ENDPOINT_URL_S3", moto)   # the daemon inherits it (its S3 client's endpoint)
            async with cloud_daemon_tls(tmp, mtls_section(certs), certs=certs, builder={"local_executor": True},
                                        aws={"credentials": str(creds), "region": REGION,
                                             "bucket": bucket}) as daemon:
                out = Run(daemon, bucket)
                async with daemon.client() as session:
                    async with session.post(f"{daemon.base}/compose", json=BODY) as r:
                        made = await r.json()
                        assert r.status == 201, made
                    out.id = made["id"]
                    await _poll(out, session)
                    if out.final["status"] == "success":
                        await _reads(out, session, tmp)
                out.db_manifest = await asyncio.to_thread(_manifest_job_result, daemon.state, out.id)
                built = daemon.state / "results" / out.id / "manifest.json"
                out.built_manifest = json.loads(await asyncio.to_thread(built.read_text))
        await _s3(out, moto)
        yield out
    finally:
        await asyncio.to_thread(shutil.rmtree, tmp / "state" / "results", True)
        await asyncio.to_thread((tmp / "downloaded.qcow2").unlink, True)


# -- the status answers ----------------------------------------------------------------------------


def test_every_answer_conforms(run: Run) -> None:
    conforms(run.answers[0], "ComposeStatus")   # the spec as it is, for an answer without uploads
    for answer in run.answers:
        conforms_status(answer)
        assert answer["id"] == run.id


def test_image_status_sequence(run: Run) -> None:
    seq = [a["image_status"]["status"] for a in run.answers]
    assert run.final["status"] == "success", run.final
    assert seq[0] == "pending" and seq[-1] == "success", seq
    assert "building" in seq, seq
    assert "uploading" in seq, sorted(set(seq))
    # never back to building once the uploads started
    first_upload = seq.index("uploading")
    assert "building" not in seq[first_upload:], seq


def test_progress_advances_while_building(run: Run) -> None:
    done = [a["image_status"]["progress"]["done"] for a in run.answers
            if a["image_status"]["status"] == "building"]
    assert any(b > a for a, b in zip(done, done[1:], strict=False)), done


# -- the uploads -----------------------------------------------------------------------------------


def test_upload_statuses(run: Run) -> None:
    ups = run.uploads()
    assert set(ups) == {"aws.s3", "local"}, ups
    assert ups["aws.s3"]["status"] == "success" and ups["aws.s3"]["options"]["url"], ups
    conforms(ups["aws.s3"]["options"], "AWSS3UploadStatus")
    conforms(ups["local"]["options"], "LocalUploadStatus")
    assert ups["local"]["status"] == "success", ups
    artifact = Path(ups["local"]["options"]["artifact_path"])
    assert artifact.is_file(), artifact


def test_object_is_in_the_bucket(run: Run) -> None:
    ups = run.uploads()
    artifact = Path(ups["local"]["options"]["artifact_path"])
    assert len(run.s3_objects) == 1, run.s3_objects
    (obj,) = run.s3_objects
    assert obj["Size"] == artifact.stat().st_size
    assert urlsplit(ups["aws.s3"]["options"]["url"]).path.endswith(obj["Key"]), (obj["Key"], ups)


def test_download_is_the_image(run: Run) -> None:
    assert run.download is not None
    artifact = Path(run.uploads()["local"]["options"]["artifact_path"])
    assert run.download.stat().st_size == artifact.stat().st_size == run.s3_objects[0]["Size"]
    assert _sha256(run.download) == _sha256(artifact) == run.s3_sha256
    assert run.download_headers["Content-Type"] == "application/octet-stream"
    assert run.download_headers["Content-Disposition"] == f"attachment; filename={run.id}-{artifact.name}"


# -- the compose's documents -----------------------------------------------------------------------


def test_sboms(run: Run) -> None:
    conforms(run.sboms, "ComposeSBOMs")
    (image,) = run.sboms["items"]
    assert image, run.sboms
    names: set[str] = set()
    for entry in image:
        assert entry["sbom_type"] == "spdx"
        messages = validate_full_spdx_document(JsonLikeDictParser().parse(entry["sbom"]))  # type: ignore[no-untyped-call]
        assert messages == [], [m.validation_message for m in messages[:5]]
        names |= {p["name"] for p in entry["sbom"]["packages"]}
    assert "tmux" in names
    purposes = {e["pipeline_purpose"] for e in image}
    assert "image" in purposes, purposes


def test_manifest_is_the_one_built(run: Run) -> None:
    conforms(run.manifests, "ComposeManifests")
    assert run.manifests["manifests"] == [run.db_manifest] == [run.built_manifest]
    assert run.db_manifest["version"] == "2" and run.db_manifest["pipelines"]
    # the build's own log (osbuild's --json result, in /logs) is of that manifest's pipelines
    conforms(run.logs, "ComposeLogs")
    (build,) = run.logs["image_builds"]
    assert build["success"] is True
    ran = set(build["osbuild_output"]["log"])
    assert ran and ran <= {p["name"] for p in run.built_manifest["pipelines"]}, ran


def test_metadata_request_is_the_posted_body(run: Run) -> None:
    conforms(run.metadata, "ComposeMetadata")
    assert run.metadata["request"] == BODY
    assert "tmux" in {p["name"] for p in run.metadata.get("packages", [])}
