"""``GET /metrics`` (Prometheus text format) on the Cloud and worker listeners of a real daemon: request
counters by route template and status, latency histograms, composes by state, queue depth by job type;
and /metrics behind the listener's authentication (mTLS names, JWT)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from foundation.daemon_helpers import NotifySocket, start_serve
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from cloud.cloud_daemon import CLOUD, Client, share_cache
from cloud.tlsutil import TLSDaemon, client_context, get, named_client
from osbuildd.queue import Database, JobStore

WORKER = "/api/worker/v1"
BP = {"name": "metrics-bp", "version": "0.0.1", "packages": []}


@asynccontextmanager
async def daemon(repo_root: Path, tmp_path: Path, shared_state_dir: Path) -> AsyncIterator[tuple[Client, Client, Client, Path]]:
    """Weldr, Cloud and worker API on unix sockets (no auth), nothing built: (weldr, cloud, worker, state)."""
    state, run = tmp_path / "state", tmp_path / "run"
    share_cache(state, shared_state_dir)
    run.mkdir()
    config = tmp_path / "osbuildd.toml"
    config.write_text(
        f'state_dir = "{state}"\nlog_format = "json"\n[weldr]\nsocket = "{run}/weldr.socket"\n'
        f'[cloud]\nlisten = "unix:{run}/cloud.sock"\n[worker_api]\nlisten = "unix:{run}/worker.sock"\n'
        '[builder]\nlocal_executor = false\n')
    notify = NotifySocket(tmp_path / "notify.sock")
    proc = await start_serve(repo_root, config, notify, tmp_path / "daemon.log")
    try:
        await notify.wait_for("READY=1", proc)
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(run / "weldr.socket")),
                                         timeout=timeout) as w, \
                aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(run / "cloud.sock")),
                                      timeout=timeout) as c, \
                aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(run / "worker.sock")),
                                      timeout=timeout) as k:
            yield Client(w), Client(c), Client(k), state
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
        notify.close()


async def scrape(client: Client) -> dict[str, list[Sample]]:
    """The samples of each metric family of ``/metrics``, by family name."""
    r = await client.get("/metrics")
    assert r.status == 200, r.body[:300]
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    families = list(text_string_to_metric_families(r.body.decode()))
    return {f.name: list(f.samples) for f in families}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The one sample ``name`` whose labels include ``labels`` (0 when there is none)."""
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else 0.0


async def test_requests_composes_and_queue(repo_root: Path, tmp_path: Path, shared_state_dir: Path) -> None:
    async with daemon(repo_root, tmp_path, shared_state_dir) as (weldr, cloud, worker, state):
        missing = str(uuid.uuid4())
        assert (await cloud.get(f"{CLOUD}/composes/{missing}")).status == 404   # a route, answering 404
        assert (await cloud.get("/no/such/route")).status == 404                  # no route at all
        for _ in range(2):
            assert (await cloud.get(f"{CLOUD}/openapi")).status == 200
        assert (await worker.get(f"{WORKER}/status")).status == 200
        assert (await worker.get(f"{WORKER}/errors/{missing}")).status in (400, 404)

        # composes: one failed, one finished (Weldr's ?test=1|2) and one queued (nothing builds)
        assert (await weldr.post("/api/v1/blueprints/new", BP)).status == 200
        for test in ("?test=1", "?test=2", ""):
            r = await weldr.post(f"/api/v1/compose{test}",
                                 {"blueprint_name": BP["name"], "compose_type": "qcow2", "branch": "master"})
            assert r.status == 200, r.body
        # a job in a tenant's channel, enqueued beside the daemon in its database
        db = await Database.open(state / "osbuildd.db")
        try:
            await JobStore(db, state_dir=state).enqueue("metrics-probe:x86_64", {}, channel="org-42")
        finally:
            await db.close()

        m = await scrape(cloud)
        requests = m["image_builder_composer_request_count"]
        total = "image_builder_composer_request_count_total"
        assert value(requests, total, path=f"{CLOUD}/composes/{{id}}", code="404", method="GET",
                     subsystem="composer") == 1, requests
        assert value(requests, total, path="unmatched", code="404") == 1, requests
        assert value(requests, total, path=f"{CLOUD}/openapi", code="200") == 2, requests
        assert not any(missing in s.labels.get("path", "") for s in requests), "raw path with an id"
        hist = m["image_builder_composer_http_duration_seconds"]
        assert value(hist, "image_builder_composer_http_duration_seconds_count", path=f"{CLOUD}/openapi") == 2
        assert value(hist, "image_builder_composer_http_duration_seconds_bucket",
                     path=f"{CLOUD}/openapi", le="+Inf") == 2, hist
        # the worker API's own counter, in the same daemon registry
        worker_requests = m["image_builder_worker_request_count"]
        assert value(worker_requests, "image_builder_worker_request_count_total", path=f"{WORKER}/status",
                     code="200", subsystem="worker") == 1, worker_requests

        composes = m["osbuildd_composes"]
        assert value(composes, "osbuildd_composes", state="failed") == 1, composes
        assert value(composes, "osbuildd_composes", state="finished") == 1, composes
        assert value(composes, "osbuildd_composes", state="waiting") == 1, composes
        assert value(composes, "osbuildd_composes", state="running") == 0, composes
        pending = m["image_builder_worker_pending_jobs"]
        assert value(pending, "image_builder_worker_pending_jobs", type="metrics-probe", tenant="org-42") == 1
        assert value(pending, "image_builder_worker_pending_jobs", type="osbuild", tenant="") >= 1, pending
        assert "image_builder_worker_running_jobs" in m

        # the worker listener serves the same registry; the first scrape is counted under /metrics
        again = await scrape(worker)
        assert value(again["image_builder_composer_request_count"], total, path="/metrics", code="200") == 1
        assert value(again["image_builder_worker_request_count"], "image_builder_worker_request_count_total",
                     path="/metrics", code="200") == 0   # this scrape is counted once it is answered
        assert value(again["osbuildd_composes"], "osbuildd_composes", state="failed") == 1


async def test_metrics_behind_mtls_names(mtls_cloud: TLSDaemon, tmp_path: Path) -> None:
    assert mtls_cloud.certs is not None
    url = mtls_cloud.base.split("/api/")[0] + "/metrics"
    async with mtls_cloud.client() as session:   # client.osbuild.org: allowed
        answer = await get(session, url)
        assert answer.status == 200 and "osbuildd_composes{" in answer.body, answer
    crt, key = named_client(mtls_cloud.certs, tmp_path, "other.example", ["other.example"], "other")
    async with mtls_cloud.client(client_context(mtls_cloud.certs, cert=crt, key=key)) as session:
        assert (await get(session, url)).status == 403   # the CA's, but not an allowed domain


async def test_metrics_need_a_token_under_jwt(jwt_cloud: TLSDaemon) -> None:
    # upstream serves metrics on a listener of its own; on the API it exempts only /openapi and /errors
    url = jwt_cloud.base.split("/api/")[0] + "/metrics"
    async with jwt_cloud.client() as session:
        assert (await get(session, url)).status == 401
        answer = await get(session, url, headers={"Authorization": f"Bearer {jwt_cloud.token()}"})
        assert answer.status == 200, answer
        families = {f.name: f for f in text_string_to_metric_families(answer.body)}
        samples = families["image_builder_composer_request_count"].samples
        assert value(samples, "image_builder_composer_request_count_total", path="/metrics", code="401",
                     tenant="") == 1, samples
