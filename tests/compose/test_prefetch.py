"""Prefetch (osbuildd/prefetch.py): a waiting build's curl sources are downloaded into the store,
verified, before its build starts. A loopback HTTP server stands in for the mirror."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from osbuildd.prefetch import Prefetcher, curl_items, prefetch, sources_dir

from .helpers import enqueue_manifest, until, wait_state

FILES = {f"/pkg/{n}.deb": (n * 1000).encode() for n in ("a", "b", "c")}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Mirror:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.hold = asyncio.Event()     # /slow/* answers only once this is set
        self.arrived = asyncio.Event()  # a /slow/* request came in
        self.base = ""
        self.down = False               # every request answers 503
        self.extra: dict[str, bytes] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests[request.path] += 1
        if self.down:
            return web.Response(status=503)
        if request.path.startswith("/slow/"):
            self.arrived.set()
            await self.hold.wait()
            return web.Response(body=b"slow")
        body = FILES.get(request.path) or self.extra.get(request.path)
        return web.Response(status=404) if body is None else web.Response(body=body)

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
async def mirror() -> AsyncIterator[Mirror]:
    m = Mirror()
    app = web.Application()
    app.router.add_get("/{tail:.*}", m.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    m.base = f"http://127.0.0.1:{port}"
    try:
        yield m
    finally:
        m.hold.set()
        await runner.cleanup()


def manifest(items: dict[str, Any]) -> dict[str, Any]:
    return {"version": "2", "pipelines": [], "sources": {"org.osbuild.curl": {"items": items}}}


def blobs(store: Path) -> dict[str, bytes]:
    d = sources_dir(store)
    return {p.name: p.read_bytes() for p in d.iterdir()} if d.is_dir() else {}


async def test_fetches_verified_blobs_and_skips_items_with_secrets_or_options(tmp_path, mirror):
    a, b, c = (FILES[f"/pkg/{n}.deb"] for n in "abc")
    items = {
        sha(a): mirror.url("/pkg/a.deb"),
        sha(b): {"url": mirror.url("/pkg/b.deb")},
        # left to the build: a client certificate, TLS checks off, credentials in the URL or query
        sha(c): {"url": mirror.url("/pkg/c.deb"), "secrets": {"name": "org.osbuild.rhsm"}},
        sha(b"x1"): {"url": mirror.url("/pkg/x1"), "insecure": True},
        sha(b"x2"): mirror.url("/pkg/x2").replace("http://", "http://user:pw@"),
        sha(b"x3"): mirror.url("/pkg/x3?token=abc"),
    }
    r = await prefetch(tmp_path, manifest(items), asyncio.Semaphore(2))
    assert (r.fetched, r.cached, r.failed, r.skipped) == (2, 0, 0, 4)
    assert r.bytes == len(a) + len(b)
    assert blobs(tmp_path) == {sha(a): a, sha(b): b}
    assert set(mirror.requests) == {"/pkg/a.deb", "/pkg/b.deb"}
    # the same items again: all in the store, no request at all
    before = sum(mirror.requests.values())
    r = await prefetch(tmp_path, manifest(items), asyncio.Semaphore(2))
    assert (r.fetched, r.cached, r.bytes) == (0, 2, 0)
    assert sum(mirror.requests.values()) == before


async def test_wrong_checksum_leaves_no_blob_and_the_rest_is_fetched(tmp_path, mirror):
    a = FILES["/pkg/a.deb"]
    wrong = sha(b"not what the server sends")
    log = _Log()
    p = Prefetcher(tmp_path, log)  # type: ignore[arg-type]
    assert p.start("c1", manifest({wrong: mirror.url("/pkg/b.deb"), sha(a): mirror.url("/pkg/a.deb"),
                                   sha(b"gone"): mirror.url("/pkg/missing")}))
    task = p.task("c1")
    assert task is not None
    r = await task   # no exception: a prefetch never fails anything
    assert r is not None and (r.fetched, r.failed) == (1, 2)
    assert "checksum mismatch" in r.error or "HTTP 404" in r.error
    assert blobs(tmp_path) == {sha(a): a}   # neither the wrong blob nor any temp file
    assert p.running() == set()
    # one line per prefetch, with what it did
    [(event, kw)] = log.lines
    assert event == "prefetch finished" and kw["compose_id"] == "c1"
    assert (kw["fetched"], kw["cached"], kw["failed"], kw["bytes"]) == (1, 0, 2, len(a))
    assert kw["seconds"] >= 0 and kw["first_error"] == r.error


async def test_cancel_stops_the_download_and_leaves_nothing(tmp_path, mirror):
    p = Prefetcher(tmp_path, _Log())
    assert p.start("c1", manifest({sha(b"slow"): mirror.url("/slow/x")}))
    assert not p.start("c1", manifest({}))   # one prefetch per compose
    async with asyncio.timeout(10):
        await mirror.arrived.wait()
    task = p.task("c1")
    assert task is not None
    p.cancel("c1")
    with pytest.raises(asyncio.CancelledError):
        await task
    assert p.running() == set() and blobs(tmp_path) == {}
    # close() cancels the rest the same way
    mirror.arrived.clear()
    assert p.start("c2", manifest({sha(b"slow"): mirror.url("/slow/y")}))
    async with asyncio.timeout(10):
        await mirror.arrived.wait()
    await p.close()
    assert p.running() == set() and blobs(tmp_path) == {}


def test_curl_items_takes_plain_http_urls_with_valid_checksums_only():
    good = "sha256:" + "0" * 64
    items, skipped = curl_items(manifest({
        good: "https://deb.example/pool/a.deb",
        "sha256:../../etc/passwd": "https://deb.example/x",   # not a blob name
        "crc32:1234": "https://deb.example/y",
        "sha1:" + "1" * 40: "file:///srv/repo/z.deb",         # local: the engine copies it
        "md5:" + "2" * 32: "https://deb.example/z?X-Amz-Signature=abc",      # presigned: a secret
        "sha512:" + "3" * 128: "ftp://deb.example/w",
    }))
    assert items == {good: "https://deb.example/pool/a.deb"} and skipped == 5
    assert curl_items({"version": "2", "pipelines": []}) == ({}, 0)
    assert curl_items({"sources": {"org.osbuild.curl": {"items": "junk"}}}) == ({}, 0)


class _Log:
    """A logger that keeps what it was told."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.lines.append((event, kw))

    warning = info


async def test_executor_prefetches_a_build_that_waits_for_a_slot(tmp_path, mirror, fake):
    """Through the executor: one build holds the only slot (the fake osbuild hangs), so the
    second compose waits in the queue, and its sources arrive in the store meanwhile."""
    from .test_executor import open_services

    s = await open_services(tmp_path, osbuild=fake("hang"), max_parallel=1)
    try:
        first = await enqueue_manifest(s, {"version": "2", "pipelines": []}, exports=["archive"], filename="x")
        await wait_state(s, first, {"running"}, 30)
        a, b = FILES["/pkg/a.deb"], FILES["/pkg/b.deb"]
        waiting = await enqueue_manifest(s, manifest({sha(a): mirror.url("/pkg/a.deb"),
                                                      sha(b): mirror.url("/pkg/b.deb")}),
                                         exports=["archive"], filename="x")
        store = s.config.store_dir
        await until(lambda: blobs(store).keys() >= {sha(a), sha(b)}, 30)
        assert blobs(store)[sha(a)] == a and blobs(store)[sha(b)] == b
        assert (await s.compose.get(waiting)).state == "waiting"   # the prefetch changed nothing of it
        # cancelling the waiting compose ends its prefetch; the store keeps the verified blobs
        mirror.arrived.clear()
        third = await enqueue_manifest(s, manifest({sha(b"slow"): mirror.url("/slow/z")}),
                                       exports=["archive"], filename="x")
        async with asyncio.timeout(30):
            await mirror.arrived.wait()
        executor = s.executor
        prefetcher = executor.prefetcher  # type: ignore[union-attr]
        assert third in prefetcher.running()
        await s.compose.cancel(third)
        await until(lambda: third not in prefetcher.running(), 30)
        assert sha(b"slow") not in blobs(store)
    finally:
        await s.close()
    assert prefetcher.running() == set()


async def test_executor_without_prefetch_fetches_nothing(tmp_path, mirror, fake):
    from .test_executor import open_services

    s = await open_services(tmp_path, osbuild=fake("hang"), max_parallel=1, prefetch=False)
    try:
        first = await enqueue_manifest(s, {"version": "2", "pipelines": []}, exports=["archive"], filename="x")
        await wait_state(s, first, {"running"}, 30)
        await enqueue_manifest(s, manifest({sha(FILES["/pkg/a.deb"]): mirror.url("/pkg/a.deb")}),
                               exports=["archive"], filename="x")
        await asyncio.sleep(2)   # long enough for a prefetch to have asked (it would within ~0.5 s)
        assert not mirror.requests and s.executor.prefetcher is None  # type: ignore[union-attr]
    finally:
        await s.close()


async def test_a_build_that_starts_gets_no_prefetch(tmp_path, mirror, fake):
    """A free slot: the build is taken at once, and its engine fetches the sources itself."""
    from .test_executor import open_services

    s = await open_services(tmp_path, osbuild=fake("hang"), max_parallel=1)
    try:
        cid = await enqueue_manifest(s, manifest({sha(b"slow"): mirror.url("/slow/q")}),
                                     exports=["archive"], filename="x")
        await wait_state(s, cid, {"running"}, 30)
        await asyncio.sleep(1.5)   # past the prefetch scan that follows the enqueue
        assert s.executor.prefetcher.running() == set()  # type: ignore[union-attr]
        assert sha(b"slow") not in blobs(s.config.store_dir)
    finally:
        await s.close()


async def test_engine_fetch_still_fails_on_the_first_bad_item_without_failed(tmp_path, mirror):
    """The engine's own use of fetch_curl (no ``failed`` list) is unchanged: the build's source error."""
    from osbuildd.engine.sources import SourceError, SourcesDir, fetch_curl

    d = tmp_path / "files"
    d.mkdir()
    with pytest.raises(SourceError, match="checksum mismatch"):
        await fetch_curl(SourcesDir(d), {sha(b"other"): mirror.url("/pkg/a.deb")})
    assert list(d.iterdir()) == []


async def test_the_engine_finds_the_prefetched_blobs(tmp_path, mirror, require_root):
    """The handoff: after a prefetch the mirror is down, and the bundled engine's build of the same
    manifest on the same store still succeeds, every curl item found cached."""
    import io
    import json
    import subprocess
    import sys
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("etc/hello")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    mirror.extra["/tree.tar"] = tarball = buf.getvalue()
    checksum = sha(tarball)
    m = manifest({checksum: {"url": mirror.url("/tree.tar")}})
    m["pipelines"] = [{"name": "tree", "stages": [{"type": "org.osbuild.untar", "inputs": {"file": {
        "type": "org.osbuild.files", "origin": "org.osbuild.source", "references": [checksum]}}}]}]
    store = tmp_path / "store"
    r = await prefetch(store, m, asyncio.Semaphore(2))
    assert r.fetched == 1
    mirror.down = True
    before = sum(mirror.requests.values())
    # the engine as the runner starts it (tests/engine/helpers.py does the same)
    proc = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "osbuildd.engine.cli", "--store", str(store), "--output-directory",
        str(tmp_path / "out"), "--export", "tree", "--json", "-"], input=json.dumps(m).encode(),
        capture_output=True, timeout=300)
    res = json.loads(proc.stdout or b"{}")
    assert res["success"] is True, proc.stderr.decode()[-2000:]
    assert [i["cached"] for i in res["sources"]["org.osbuild.curl"]] == [True]
    assert (tmp_path / "out" / "tree" / "etc" / "hello").read_bytes() == b"hello"
    assert sum(mirror.requests.values()) == before
