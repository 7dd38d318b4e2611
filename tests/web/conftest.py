"""The browser tests' session: one ``osbuildd serve`` with the web UI on two listeners and one
headless Debian chromium driven by Playwright.

- ``[web] listen`` in local mode (the built-in organisation, no identity header): ``web.local``;
- the image-builder listener with ``web = true`` in hosted mode (identity from ``X-Rh-Identity``, as a
  gateway sets it): ``web.hosted``;
- ``[image_builder] test_composes = true`` so ``?test=1/2`` fakes exist, and the local executor on,
  sharing the run's engine store, so one real Debian ``tar`` build runs.

Screenshots go to ``$OSBUILDD_TEST_SCREENSHOTS`` (default ``/var/tmp/osbuildd-test/screenshots``),
``<test>/<step>-<desktop|phone>.png``, replaced on every run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cloud.cloud_daemon import share_cache
from foundation.daemon_helpers import free_port
from imagebuilder.ib_daemon import ORG_A, identity

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "osbuildd" / "web" / "static" / "index.html"
AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("OSBUILDD_TEST_SCREENSHOTS", "/var/tmp/osbuildd-test/screenshots"))
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
IB = "/api/image-builder/v1"


@dataclass
class UIDaemon:
    local: str         # http://127.0.0.1:P — the [web] listener, local mode
    hosted: str        # http://127.0.0.1:Q — the image-builder listener serving the UI, hosted mode
    state: Path
    log: Path

    def api(self, method: str, path: str, body: Any = None, *, org: str | None = None,
            timeout: float = 60) -> tuple[int, bytes]:
        """An API call outside the browser: through the local listener, or the hosted one as ``org``."""
        base = self.hosted if org else self.local
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if org:
            headers["X-Rh-Identity"] = identity(org)
        req = urllib.request.Request(base + IB + path, method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, data = self.api(method, path, body, **kw)
        assert 200 <= status < 300, (method, path, status, data[:2000])
        return json.loads(data)


def _wait_ready(notify: socket.socket, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"osbuildd serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if b"READY=1" in notify.recv(4096):
                return
        except TimeoutError:
            continue
    pytest.fail(f"osbuildd serve not ready after 120 s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def ui_daemon(tmp_path_factory: pytest.TempPathFactory, shared_state_dir: Path) -> Iterator[UIDaemon]:
    if not STATIC.exists():
        pytest.fail("the web UI is not built (osbuildd/web/static): run scripts/setup.sh --test")
    root = tmp_path_factory.mktemp("web")
    state, run = root / "state", root / "run"
    share_cache(state, shared_state_dir)
    run.mkdir()
    local, hosted = free_port(), free_port()
    config = root / "osbuildd.toml"
    config.write_text(
        f'state_dir = "{state}"\nlog_format = "json"\n[weldr]\nsocket = "{run}/weldr.socket"\n'
        f'[image_builder]\nlisten = "127.0.0.1:{hosted}"\nweb = true\ntest_composes = true\n'
        f'[web]\nlisten = "127.0.0.1:{local}"\nmode = "local"\norg_id = "{ORG_A}"\n')
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(root / "notify.sock"))
    notify.settimeout(1)
    log = root / "daemon.log"
    env = dict(os.environ, PYTHONPATH=str(REPO), NOTIFY_SOCKET=str(root / "notify.sock"))
    env.pop("OSBUILDD_CONFIG", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(config)],
                                cwd=REPO, env=env, stdout=out, stderr=out)
    try:
        _wait_ready(notify, proc, log)
        yield UIDaemon(f"http://127.0.0.1:{local}", f"http://127.0.0.1:{hosted}", state, log)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        notify.close()


# Module scope, not session: sync Playwright keeps an event loop running in this thread while it is
# open, and the asyncio tests of the next modules could not start theirs.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed: run scripts/setup.sh --test")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield b
        b.close()


class Shots:
    """Screenshots of a test's steps, at desktop and phone width, under SCREENSHOTS/<test>/."""

    def __init__(self, test: str) -> None:
        self.dir = SCREENSHOTS / test
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.taken: list[Path] = []

    def __call__(self, page: Any, step: str) -> None:
        for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.wait_for_timeout(150)       # let the responsive layout settle
            path = self.dir / f"{step}-{name}.png"
            page.screenshot(path=str(path), full_page=True)
            self.taken.append(path)
        page.set_viewport_size(DESKTOP)


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(request.node.name.replace("[", "-").replace("]", ""))


@pytest.fixture
def page(browser: Any, ui_daemon: UIDaemon) -> Iterator[Any]:
    """A fresh page on the local-mode listener (CSP bypassed only so axe-core can be injected)."""
    context = browser.new_context(base_url=ui_daemon.local, viewport=DESKTOP, bypass_csp=True,
                                  accept_downloads=True)
    context.set_default_timeout(20_000)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document)).violations")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result if v["impact"] in ("serious", "critical")]
