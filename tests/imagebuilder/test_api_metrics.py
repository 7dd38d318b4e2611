"""``/metrics`` on the image-builder listener: no identity needed (as upstream's, outside the API's
group), requests counted by route template and status with the caller's organisation as tenant,
latency histograms, and the daemon's composes and queue beside them."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from .ib_daemon import ORG_A, ORG_B, ib_daemon

COMPOSE = {"image_name": "m", "distribution": "debian-12",
           "image_requests": [{"architecture": "x86_64", "image_type": "guest-image",
                               "upload_request": {"type": "aws.s3", "options": {}}}]}


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for fam in text_string_to_metric_families(text) for s in fam.samples]


async def test_metrics_count_image_builder_requests(tmp_path: Path) -> None:
    async with ib_daemon(tmp_path) as d:
        assert (await d.call("GET", "composes", org=ORG_A)).status == 200
        assert (await d.call("GET", "composes/00000000-0000-4000-8000-000000000001", org=ORG_B)).status == 404
        assert (await d.call("GET", "composes", org=None)).status == 401
        made = await d.call("POST", "compose", COMPOSE, org=ORG_A)
        assert made.status == 201, made.text
        r = await d.call("GET", "/metrics", org=None)
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain"), r.text
    got = samples(r.text)
    count = {(lab["path"], lab["code"], lab["tenant"]): v for name, lab, v in got
             if name == "image_builder_crc_request_count_total"}
    assert count[("/api/image-builder/v1/composes", "200", ORG_A)] == 1, count
    assert count[("/api/image-builder/v1/composes/{composeId}", "404", ORG_B)] == 1, count
    assert count[("/api/image-builder/v1/composes", "401", "")] == 1, count   # refused before any org
    assert count[("/api/image-builder/v1/compose", "201", ORG_A)] == 1, count
    assert not any("00000000-0000-4000" in lab["path"] for _, lab, _ in got if "path" in lab)
    assert any(name == "image_builder_crc_http_duration_seconds_bucket" and lab["le"] == "+Inf" and v >= 1
               for name, lab, v in got)
    # the compose is queued (nothing builds here): the daemon's compose and queue gauges see it
    states = {lab["state"]: v for name, lab, v in got if name == "osbuildd_composes"}
    assert sum(states.values()) >= 1, states
    pending = {lab["type"]: v for name, lab, v in got if name == "image_builder_worker_pending_jobs"}
    assert sum(pending.values()) >= 1, pending
