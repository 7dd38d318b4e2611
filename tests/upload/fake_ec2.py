"""EC2 shim in front of moto: answers ImportSnapshot / DescribeImportSnapshotTasks, forwards the rest.

Replays upstream's calls ``ec2.ImportSnapshot`` and ``ec2.DescribeImportSnapshotTasks`` (the
``SnapshotImported`` waiter), which moto does not implement. Everything else (CreateTags,
RegisterImage, ModifyImageAttribute, ...) is forwarded to moto unchanged, so it runs on moto's code.
The import checks that the S3 object exists *at import time* and makes a real moto snapshot.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web

NS = "http://ec2.amazonaws.com/doc/2016-11-15/"


@dataclass
class ImportTask:
    bucket: str
    key: str
    object_existed: bool
    snapshot: str = ""
    polls: int = 0


@dataclass
class EC2Shim:
    moto: str
    active_polls: int = 2          # "active" answers before "completed": exercises the polling
    fail_imports: bool = False     # answer status "deleted" (upstream's failure path)
    tasks: dict[str, ImportTask] = field(default_factory=dict)
    registered: list[dict[str, str]] = field(default_factory=list)   # RegisterImage forms (moto drops
                                                                     # Architecture), still forwarded
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        action = form.get("Action")
        if action == "ImportSnapshot":
            return await self.import_snapshot(form)
        if action == "DescribeImportSnapshotTasks":
            return self.describe(form)
        if action == "RegisterImage":
            self.registered.append(form)
        return await self.forward(request, body)

    async def import_snapshot(self, form: dict[str, str]) -> web.Response:
        bucket = form["DiskContainer.UserBucket.S3Bucket"]
        key = form["DiskContainer.UserBucket.S3Key"]
        async with aiohttp.ClientSession() as s, s.head(f"{self.moto}/{bucket}/{key}") as r:
            exists = r.status == 200
        task = ImportTask(bucket, key, exists)
        if exists and not self.fail_imports:
            task.snapshot = await self._moto_snapshot()
        task_id = f"import-snap-{next(self._ids):08x}"
        self.tasks[task_id] = task
        return _xml("ImportSnapshotResponse",
                    f"<importTaskId>{task_id}</importTaskId><snapshotTaskDetail><status>active</status>"
                    f"</snapshotTaskDetail>")

    def describe(self, form: dict[str, str]) -> web.Response:
        task_id = form["ImportTaskId.1"]
        task = self.tasks[task_id]
        task.polls += 1
        if not task.object_existed or self.fail_imports:
            detail = "<status>deleted</status><statusMessage>ClientError: Disk validation failed</statusMessage>"
        elif task.polls <= self.active_polls:
            detail = "<status>active</status><progress>50</progress>"
        else:
            detail = f"<status>completed</status><snapshotId>{task.snapshot}</snapshotId>"
        return _xml("DescribeImportSnapshotTasksResponse",
                    f"<importSnapshotTaskSet><item><importTaskId>{task_id}</importTaskId>"
                    f"<snapshotTaskDetail>{detail}</snapshotTaskDetail></item></importSnapshotTaskSet>")

    async def _moto_snapshot(self) -> str:
        """A real snapshot in moto (CreateVolume + CreateSnapshot), as the import would produce."""
        async with aiohttp.ClientSession() as s:
            vol = await _moto_call(s, self.moto, {"Action": "CreateVolume", "Size": "1",
                                                  "AvailabilityZone": "us-east-1a"}, "volumeId")
            return await _moto_call(s, self.moto, {"Action": "CreateSnapshot", "VolumeId": vol}, "snapshotId")

    async def forward(self, request: web.Request, body: bytes) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with aiohttp.ClientSession() as s, s.request(
                request.method, f"{self.moto}{request.path_qs}", data=body, headers=headers) as r:
            data = await r.read()
            return web.Response(status=r.status, body=data, content_type=r.content_type)


async def _moto_call(session: aiohttp.ClientSession, moto: str, params: dict[str, str], tag: str) -> str:
    form = {"Version": "2016-11-15", **params}
    headers = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, "
                                "SignedHeaders=host, Signature=x"}
    async with session.post(f"{moto}/", data=form, headers=headers) as r:
        text = await r.text()
    start = text.index(f"<{tag}>") + len(tag) + 2
    return text[start:text.index(f"</{tag}>")]


def _xml(root: str, inner: str) -> web.Response:
    return web.Response(text=f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="{NS}">'
                             f"<requestId>shim</requestId>{inner}</{root}>", content_type="text/xml")
