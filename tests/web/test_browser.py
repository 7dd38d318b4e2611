"""The web UI in headless Debian chromium against a real daemon (tests/web/conftest.py): the wizard,
blueprints, composes with live progress, downloads, failures, tenants, accessibility.

Every step is photographed at 1280x800 and 390x844 under the screenshots folder the README names.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import time
import uuid
from typing import Any

import pytest

from .conftest import DESKTOP, IB, PHONE, Shots, UIDaemon, axe_violations

STEPS = ["Image output", "Target environments", "File system", "Repositories and packages", "Users",
         "Timezone", "Locale", "Hostname", "Kernel", "Firewall", "Services", "First boot script", "Details",
         "Review"]
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqDHpSQEIQczXkVx9q alice@example"


def step(page: Any, name: str) -> None:
    page.get_by_role("navigation", name="Wizard steps").get_by_role("button", name=name, exact=True).click()


def with_test(page: Any, test: str) -> None:
    """Make the page's compose requests ``?test=<test>`` fakes (the daemon has test_composes on)."""
    def handler(route: Any) -> None:
        url = route.request.url
        route.continue_(url=url + ("&" if "?" in url else "?") + f"test={test}")
    page.route(re.compile(r".*/api/image-builder/v1/(compose|blueprints/[^/]+/compose)$"), handler)


def fill_wizard(page: Any, shots: Shots, name: str, hostname: str, image_type: str) -> None:
    """Every step in order, the fields a user fills, a screenshot of each."""
    page.goto("/wizard")
    page.get_by_role("heading", name="Create image", level=1).wait_for()
    page.get_by_label("Distribution").select_option("debian-12")
    page.get_by_label("Architecture").select_option("x86_64")
    page.get_by_label(image_type, exact=True).check()
    shots(page, "01-image-output")
    for i, title in enumerate(STEPS[1:], start=2):
        page.get_by_role("button", name="Next", exact=True).click()
        page.get_by_role("button", name=title, exact=True).and_(page.locator("[aria-current=step]")).wait_for()
        if title == "Target environments":
            page.get_by_label("Local download").first.check()
        elif title == "Repositories and packages":
            page.get_by_label("Search packages").fill("tmux")
            page.get_by_role("button", name="Add package tmux", exact=True).click()
            page.get_by_role("group", name=re.compile("Chosen packages")).get_by_text("tmux").wait_for()
        elif title == "Users":
            page.get_by_role("button", name="Add user").click()
            page.get_by_label("User name").fill("alice")
            page.get_by_label("Password").fill("correct horse battery")
            page.get_by_label("SSH public key").fill(SSH_KEY)
            page.get_by_label("Groups").fill("sudo")
        elif title == "Hostname":
            page.get_by_label("Hostname").fill(hostname)
        elif title == "Details":
            page.get_by_label("Blueprint name").fill(name)
            page.get_by_label("Description").fill("made in the browser test")
        shots(page, f"{i:02d}-{title.lower().replace(' ', '-')}")


def blueprint_by_name(d: UIDaemon, name: str) -> dict[str, Any]:
    found = d.json("GET", f"/blueprints?name={name}")["data"]
    assert [b["name"] for b in found] == [name], found
    return dict(d.json("GET", f"/blueprints/{found[0]['id']}"))


def wait_status(page: Any, cid: str, want: set[str], seconds: float = 60) -> str:
    loc = page.get_by_test_id(f"compose-status-{cid}")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if loc.count() and (got := loc.first.get_attribute("data-status")) in want:
            return str(got)
        page.wait_for_timeout(200)
    raise AssertionError(f"compose {cid} never showed {want}: {loc.first.inner_text() if loc.count() else None}")


def test_wizard_creates_a_blueprint_and_builds_a_fake(page: Any, ui_daemon: UIDaemon, shots: Shots) -> None:
    name, hostname = f"web-{uuid.uuid4().hex[:8]}", "web-test-host"
    fill_wizard(page, shots, name, hostname, "guest-image")
    page.get_by_role("tab", name="TOML").click()
    toml = page.get_by_label("Blueprint as TOML").inner_text()
    assert f'name = "{name}"' in toml and f'hostname = "{hostname}"' in toml and "tmux" in toml, toml
    shots(page, "15-review-toml")
    with_test(page, "2")
    page.get_by_role("button", name=re.compile("Create blueprint and build")).click()
    page.wait_for_url(re.compile(r"/$"))
    # what the browser made is what the API stores
    bp = blueprint_by_name(ui_daemon, name)
    c = bp["customizations"]
    assert c["hostname"] == hostname
    assert {"name": "tmux"} in c["packages"] or "tmux" in c["packages"], c["packages"]
    user = c["users"][0]
    assert (user["name"], user["ssh_key"], user["groups"]) == ("alice", SSH_KEY, ["sudo"]), user
    assert user["hasPassword"] is True and "password" not in user or user.get("password") in (None, ""), user
    composes = ui_daemon.json("GET", f"/blueprints/{bp['id']}/composes")["data"]
    assert len(composes) == 1, composes
    cid = composes[0]["id"]
    assert wait_status(page, cid, {"success", "failure"}) == "success"
    assert ui_daemon.json("GET", f"/composes/{cid}")["image_status"]["status"] == "success"
    shots(page, "16-composes-after-build")


def test_wizard_shows_the_apis_message_beside_the_field(page: Any, ui_daemon: UIDaemon, shots: Shots) -> None:
    name = f"web-{uuid.uuid4().hex[:8]}"
    request = {"name": name, "distribution": "debian-12", "customizations": {},
               "image_requests": [{"architecture": "x86_64", "image_type": "guest-image",
                                   "upload_request": {"type": "local", "options": {}}}]}
    ui_daemon.json("POST", "/blueprints", request)
    fill_wizard(page, shots, name, "second-host", "guest-image")
    page.get_by_role("button", name="Create blueprint", exact=True).click()
    # the name is taken: the API's detail is shown on the Details step, beside the name field
    status, body = ui_daemon.api("POST", "/blueprints", request)
    assert 400 <= status < 500, (status, body)
    detail = json.loads(body)["errors"][0]["detail"]
    group = page.locator(".pf-v6-c-form__group").filter(has=page.get_by_label("Blueprint name"))
    group.get_by_text(detail, exact=False).wait_for()
    shots(page, "16-name-taken")


def test_a_failing_compose_shows_its_reason(page: Any, ui_daemon: UIDaemon, shots: Shots) -> None:
    name = f"web-fail-{uuid.uuid4().hex[:8]}"
    bp = ui_daemon.json("POST", "/blueprints", {
        "name": name, "distribution": "debian-12", "customizations": {},
        "image_requests": [{"architecture": "x86_64", "image_type": "guest-image",
                            "upload_request": {"type": "local", "options": {}}}]})
    page.goto("/blueprints")
    with_test(page, "1")
    page.get_by_label("Search blueprints").fill(name)
    page.get_by_role("button", name=f"Build images of {name}").click()
    cid = ""
    for _ in range(100):
        composes = ui_daemon.json("GET", f"/blueprints/{bp['id']}/composes")["data"]
        if composes:
            cid = composes[0]["id"]
            break
        page.wait_for_timeout(100)
    assert cid
    page.goto("/composes")
    assert wait_status(page, cid, {"success", "failure"}) == "failure"
    reason = ui_daemon.json("GET", f"/composes/{cid}")["image_status"]["error"]["reason"]
    assert reason
    row = page.get_by_role("row").filter(has=page.get_by_test_id(f"compose-status-{cid}"))
    row.get_by_text(reason).wait_for()
    shots(page, "01-composes-failure")
    page.goto(f"/composes/{cid}")
    page.get_by_text(reason).first.wait_for()
    shots(page, "02-compose-detail-failure")


def test_hosted_tenants_never_see_each_other(browser: Any, ui_daemon: UIDaemon, shots: Shots) -> None:
    from imagebuilder.ib_daemon import identity

    mine, theirs = f"tenant-a-{uuid.uuid4().hex[:6]}", f"tenant-b-{uuid.uuid4().hex[:6]}"
    body = {"distribution": "debian-12", "customizations": {},
            "image_requests": [{"architecture": "x86_64", "image_type": "guest-image",
                                "upload_request": {"type": "local", "options": {}}}]}
    ui_daemon.json("POST", "/blueprints", dict(body, name=mine), org="200001")
    b = ui_daemon.json("POST", "/blueprints", dict(body, name=theirs), org="200002")
    context = browser.new_context(base_url=ui_daemon.hosted, viewport=DESKTOP, bypass_csp=True,
                                  extra_http_headers={"X-Rh-Identity": identity("200001")})
    try:
        page = context.new_page()
        page.goto("/blueprints")
        page.get_by_role("link", name=mine).wait_for()
        assert page.get_by_text(theirs).count() == 0
        shots(page, "01-tenant-a-blueprints")
        page.goto(f"/blueprints/{b['id']}")
        page.get_by_text(re.compile("not found", re.I)).first.wait_for()
        assert page.get_by_text(theirs).count() == 0
        shots(page, "02-tenant-b-blueprint-from-a")
    finally:
        context.close()
    # without the gateway's header the hosted UI is refused, and says so
    context = browser.new_context(base_url=ui_daemon.hosted, viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto("/blueprints")
        page.get_by_role("heading", name="Not authorised", level=1).wait_for()
        shots(page, "03-no-identity")
    finally:
        context.close()


def test_phone_navigation_by_keyboard(page: Any, ui_daemon: UIDaemon, shots: Shots) -> None:
    page.set_viewport_size(PHONE)
    page.goto("/")
    toggle = page.get_by_role("button", name="Main navigation")
    toggle.focus()
    page.keyboard.press("Enter")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Blueprints").wait_for()
    shots(page, "01-phone-nav-open")
    page.set_viewport_size(PHONE)
    link = page.get_by_role("navigation", name="Main").get_by_role("link", name="Blueprints")
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/blueprints$"))
    page.get_by_role("heading", name="Blueprints", level=1).wait_for()
    # nothing wider than the screen: no sideways scrolling on a phone
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]


@pytest.mark.parametrize("path", ["/", "/blueprints", "/wizard", "/composes"])
def test_no_serious_accessibility_violations(page: Any, ui_daemon: UIDaemon, path: str) -> None:
    page.goto(path)
    page.get_by_role("heading", level=1).first.wait_for()
    page.wait_for_load_state("networkidle")
    found = {}
    for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(200)
        found[name] = axe_violations(page)
    assert found == {"desktop": [], "phone": []}


def test_detail_pages_are_accessible(page: Any, ui_daemon: UIDaemon) -> None:
    name = f"web-a11y-{uuid.uuid4().hex[:8]}"
    bp = ui_daemon.json("POST", "/blueprints", {
        "name": name, "distribution": "debian-12", "customizations": {"hostname": "a11y"},
        "image_requests": [{"architecture": "x86_64", "image_type": "guest-image",
                            "upload_request": {"type": "local", "options": {}}}]})
    status, body = ui_daemon.api("POST", f"/blueprints/{bp['id']}/compose?test=2", {})
    assert status == 201, body
    cid = json.loads(body)[0]["id"]
    found = {}
    for path in (f"/blueprints/{bp['id']}", f"/composes/{cid}", f"/wizard/{bp['id']}"):
        page.goto(path)
        try:
            page.get_by_role("heading", level=1).first.wait_for()
        except Exception as e:
            raise AssertionError(f"{path}: no heading: {page.content()[:3000]}") from e
        page.wait_for_load_state("networkidle")
        found[path] = axe_violations(page)
    assert found == {p: [] for p in found}


def progress_of(page: Any, cid: str) -> int | None:
    bar = page.get_by_test_id(f"compose-progress-{cid}").get_by_role("progressbar")
    if not bar.count():
        return None
    value = bar.first.get_attribute("aria-valuenow")
    return int(float(value)) if value is not None else None


def api_sha256(d: UIDaemon, cid: str) -> str:
    import urllib.request

    digest = hashlib.sha256()
    with urllib.request.urlopen(f"{d.local}{IB}/composes/{cid}/download", timeout=120) as r:
        while chunk := r.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.build
def test_a_real_debian_build_shows_live_progress_and_downloads(page: Any, ui_daemon: UIDaemon,
                                                               shots: Shots) -> None:
    name = f"web-real-{uuid.uuid4().hex[:8]}"
    bp = ui_daemon.json("POST", "/blueprints", {
        "name": name, "distribution": "debian-12", "customizations": {"hostname": name},
        "image_requests": [{"architecture": "x86_64", "image_type": "tar",
                            "upload_request": {"type": "local", "options": {}}}]})
    page.goto(f"/blueprints/{bp['id']}")
    page.get_by_role("button", name=f"Build images of {name}").click()
    cid = ""
    for _ in range(100):
        if composes := ui_daemon.json("GET", f"/blueprints/{bp['id']}/composes")["data"]:
            cid = composes[0]["id"]
            break
        page.wait_for_timeout(100)
    assert cid
    page.goto("/composes")
    log_page = page.context.new_page()
    log_page.goto(f"/composes/{cid}")
    seen: list[int] = []
    log_while_running = ""
    deadline = time.monotonic() + 1500
    status = None
    while time.monotonic() < deadline:
        status = page.get_by_test_id(f"compose-status-{cid}").first.get_attribute("data-status")
        if status in ("success", "failure"):
            break
        value = progress_of(page, cid)
        if value is not None and (not seen or value != seen[-1]):
            seen.append(value)
            if len(seen) == 2:
                shots(page, "01-composes-building")
        if not log_while_running and status == "building":
            text = log_page.get_by_label("Build log").first
            if text.count() and (t := text.inner_text()).strip():
                log_while_running = t
        page.wait_for_timeout(250)
    assert status == "success", (status, ui_daemon.json("GET", f"/composes/{cid}"))
    # the progress bar moved forward on its own (server-sent events or polling), then the row turned ready
    assert len(seen) >= 2 and seen == sorted(seen), seen
    assert log_while_running, "the build log was empty while the build ran"
    shots(page, "02-composes-success")
    log_page.get_by_role("button", name="Download image").or_(
        log_page.get_by_role("link", name="Download image")).first.wait_for()
    shots(log_page, "03-compose-detail-success")
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile(f"Download image {name}")).or_(
            page.get_by_role("button", name=re.compile(f"Download image {name}"))).first.click()
    download = info.value
    path = download.path()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == api_sha256(ui_daemon, cid)
    assert re.fullmatch(r"[-\w]+\.tar(\.xz)?", download.suggested_filename), download.suggested_filename
    # and it is the image of this blueprint
    with tarfile.open(path) as tar:
        member = next(m for m in tar.getmembers() if m.name.lstrip("./") == "etc/hostname")
        assert tar.extractfile(member).read().decode().strip() == name  # type: ignore[union-attr]
    print(f"progress seen in the composes list: {seen}")
