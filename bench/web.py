"""The web UI in headless Debian chromium: first-load weight, time to interactive, and the composes page
beside 10,000 composes.

Starts the real ``osbuildd serve`` (no local executor; ``?test=2`` fakes allowed) with the UI on the
image-builder listener in hosted mode, so two organisations share one daemon:
- organisation A: ``--big`` finished fake composes (default 10,000), made through the API;
- organisation B: one page of them (50), the baseline.
Measured in one run (medians of ``--rounds`` cold loads, a fresh browser context each):
- first load of ``/``: the JS and CSS the page fetched, raw and gzip-compressed (level 6, what the
  daemon's gzip sends), against the whole built bundle (every asset under static/assets) — how much of
  the app the first page needs;
- time to interactive: navigation start until the composes page's heading and its "Create image" link
  are visible and every row's status has arrived, against loading the API's openapi.json (a
  document with no script) from the same listener;
- the composes page as A (10,000) against B (50): navigation start until the 50 rows of page one show
  their statuses (bar: <= 1 s), and the ratio A/B.

    .venv/bin/python bench/web.py [--big 10000] [--rounds 5]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import base64  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import aiohttp  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
STATIC = REPO / "osbuildd" / "web" / "static"
CHROMIUM = "/usr/bin/chromium"
IB = "/api/image-builder/v1"
ORG_A, ORG_B = "100001", "100002"
BAR_S = 1.0
COMPOSE = {"image_name": "bench", "distribution": "debian-12",
           "image_requests": [{"architecture": "x86_64", "image_type": "guest-image",
                               "upload_request": {"type": "local", "options": {}}}]}


def identity(org: str) -> str:
    doc = {"identity": {"type": "User", "org_id": org, "account_number": f"acct-{org}",
                        "internal": {"org_id": org}, "user": {"username": "bench", "email": "bench@example.com"}},
           "entitlements": {"rhel": {"is_entitled": True}}}
    return base64.b64encode(json.dumps(doc).encode()).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_daemon(state: Path, port: int) -> subprocess.Popen[bytes]:
    conf = state / "osbuildd.toml"
    conf.write_text(
        f'state_dir = "{state}"\nlog_level = "warning"\nlog_format = "json"\n'
        f'[weldr]\nsocket = "{state}/weldr.socket"\n[builder]\nlocal_executor = false\n'
        f'[image_builder]\nlisten = "127.0.0.1:{port}"\nweb = true\ntest_composes = true\n')
    with (state / "daemon.log").open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(conf)],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)


async def wait_ready(base: str, proc: subprocess.Popen[bytes], state: Path) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit(f"daemon exited: {(state / 'daemon.log').read_text()[-2000:]}")
            try:
                async with s.get(base + "/ready") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"daemon did not become ready: {(state / 'daemon.log').read_text()[-2000:]}")


async def make_composes(base: str, org: str, n: int, clients: int = 8) -> float:
    """``n`` finished fakes for ``org`` through the API; returns composes per second."""
    headers = {"X-Rh-Identity": identity(org)}
    left = n
    started = time.perf_counter()

    async def client(s: aiohttp.ClientSession) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with s.post(base + IB + "/compose?test=2", json=COMPOSE, headers=headers) as r:
                if r.status != 201:
                    raise SystemExit(f"POST /compose?test=2: {r.status} {await r.text()}")

    async with aiohttp.ClientSession() as s:
        await asyncio.gather(*(client(s) for _ in range(clients)))
    return n / (time.perf_counter() - started)


def bundle_weight() -> tuple[int, int]:
    raw = gz = 0
    for f in (STATIC / "assets").iterdir():
        if f.suffix in (".js", ".css"):
            data = f.read_bytes()
            raw += len(data)
            gz += len(gzip.compress(data, 6))
    return raw, gz


ROWS_READY = """() => {
  const h = document.querySelector('h1');
  const create = [...document.querySelectorAll('a,button')].some(e => /create image/i.test(e.textContent || ''));
  const rows = [...document.querySelectorAll('[data-testid^="compose-status-"]')];
  return !!h && create && rows.length > 0 && rows.every(r => r.hasAttribute('data-status'));
}"""


def load(browser: Any, base: str, path: str, org: str, ready: str | None) -> tuple[float, list[tuple[str, bytes]]]:
    """Seconds from navigation start until ``ready`` holds (or the load event), and the JS/CSS fetched."""
    context = browser.new_context(base_url=base, extra_http_headers={"X-Rh-Identity": identity(org)},
                                  viewport={"width": 1280, "height": 800})
    page = context.new_page()
    assets: list[tuple[str, bytes]] = []
    page.on("response", lambda r: assets.append((r.url, r.body())) if r.request.resource_type in ("script", "stylesheet")
            and r.ok else None)
    page.goto(path, wait_until="load" if ready is None else "commit")
    if ready is not None:
        page.wait_for_function(ready, timeout=60_000, polling="raf")
    seconds = page.evaluate("() => performance.now() / 1000")
    rows = page.locator('[data-testid^="compose-status-"]').count()
    context.close()
    if ready is not None and rows == 0:
        raise SystemExit(f"{path}: no compose rows rendered")
    return seconds, assets


def measure_browser(base: str, rounds: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        load(browser, base, "/", ORG_B, ROWS_READY)    # warm the daemon's caches, not the browser's
        tti, plain, big, small = [], [], [], []
        first: list[tuple[str, bytes]] = []
        for _ in range(rounds):
            t, first = load(browser, base, "/", ORG_B, ROWS_READY)
            tti.append(t)
            plain.append(load(browser, base, IB + "/openapi.json", ORG_B, None)[0])
            big.append(load(browser, base, "/composes", ORG_A, ROWS_READY)[0])
            small.append(load(browser, base, "/composes", ORG_B, ROWS_READY)[0])
        browser.close()
    out["first_raw"] = sum(len(b) for _, b in first)
    out["first_gz"] = sum(len(gzip.compress(b, 6)) for _, b in first)
    out["first_files"] = len(first)
    for name, xs in (("tti", tti), ("plain", plain), ("big", big), ("small", small)):
        out[name] = statistics.median(xs)
        out[name + "_max"] = max(xs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if not (STATIC / "index.html").exists():
        raise SystemExit("the web UI is not built: run scripts/setup.sh (npm ci && npm run build in web/)")
    with tempfile.TemporaryDirectory(prefix="osbuildd-bench-web-", dir="/var/tmp") as tmp:
        state = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_daemon(state, port)
        try:
            asyncio.run(wait_ready(base, proc, state))
            rate = asyncio.run(make_composes(base, ORG_A, args.big))
            asyncio.run(make_composes(base, ORG_B, 50))
            print(f"made {args.big} fake composes for A at {rate:.0f}/s, 50 for B")
            m = measure_browser(base, args.rounds)
        finally:
            proc.terminate()
            proc.wait(30)
    raw, gz = bundle_weight()
    print(f"first load of /: {m['first_files']} JS/CSS files, {m['first_raw'] / 1024:.0f} KiB raw, "
          f"{m['first_gz'] / 1024:.0f} KiB gzip; whole bundle {raw / 1024:.0f} KiB raw, {gz / 1024:.0f} KiB gzip "
          f"(first load = {m['first_gz'] / gz:.2f}x of the bundle)")
    print(f"time to interactive of /: {m['tti'] * 1000:.0f} ms median (max {m['tti_max'] * 1000:.0f}); "
          f"baseline openapi.json {m['plain'] * 1000:.0f} ms; ratio {m['tti'] / m['plain']:.1f}x")
    verdict = "met" if m["big_max"] <= BAR_S else "NOT met"
    print(f"/composes with {args.big} composes: {m['big'] * 1000:.0f} ms median (max {m['big_max'] * 1000:.0f}); "
          f"with 50: {m['small'] * 1000:.0f} ms; ratio {m['big'] / m['small']:.2f}x; bar <= {BAR_S:.0f} s {verdict}")


if __name__ == "__main__":
    main()
