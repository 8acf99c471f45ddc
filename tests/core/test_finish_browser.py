"""Finding 5 of issue 11, in Chromium, as a new user meets it: an unknown URL shows the portal's own page (navigation,
a sentence, a way back), not Django's plain "Not Found"; /api/v1/ answers JSON (an index of the endpoints), not an
HTML 404; the first load asks for no favicon that 404s; the "API" link keeps the portal's navigation and a way
back."""
from __future__ import annotations

import json
import time

import pytest

from tests.live import login, screenshot

pytestmark = [pytest.mark.browser]


def test_unknown_url_is_the_portals_page_with_a_way_back(portal, page, owner) -> None:  # type: ignore[no-untyped-def]
    login(page, portal, "alice", "alice-pass-123")
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 860})
        response = page.goto(f"{portal.url}/no-such-page/")
        assert response is not None and response.status == 404
        assert page.locator("h1").inner_text() == "Page not found"
        nav = page.locator("nav[aria-label=Portal]")
        assert nav.get_by_role("link", name="Virtual machines").is_visible()
        assert nav.get_by_role("link", name="Storage").is_visible()
        assert "There is nothing at this address" in page.locator("#error-detail").inner_text()
        screenshot(page, f"finish-404-{width}")
    page.click("#error-back")
    page.wait_for_url(f"{portal.url}/vms/")


def test_api_root_answers_a_json_index_and_unknown_api_urls_json(portal, page, owner) -> None:  # type: ignore[no-untyped-def]
    login(page, portal, "alice", "alice-pass-123")
    response = page.goto(f"{portal.url}/api/v1/")
    assert response is not None and response.status == 200
    assert response.headers["content-type"] == "application/json"
    index = response.json()
    paths = {e["path"]: e for e in index["endpoints"]}
    assert paths["/api/v1/vms/"]["methods"] == ["GET", "POST"]
    assert "/api/v1/hosts/{host_id}/pools/{name}/volumes/{volume}/upload/" in paths
    assert index["docs"] == "/api/docs/"

    missing = page.goto(f"{portal.url}/api/v1/no-such-endpoint/")
    assert missing is not None and missing.status == 404
    assert missing.headers["content-type"] == "application/json"
    assert missing.json()["error"] == "not_found"
    assert json.loads(page.locator("body").inner_text())["error"] == "not_found"


def test_first_load_asks_for_no_favicon_that_404s(portal, page) -> None:  # type: ignore[no-untyped-def]
    """A first visit (empty profile). Chromium fetches the icon itself, outside the page's own requests, so the web
    server's access log is the witness: the icon it asked for was served, nothing 404'd. /favicon.ico (what a browser
    asks for on pages without an icon of their own, such as the API's JSON) answers the icon too."""
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    seen = portal.log.stat().st_size
    page.goto(f"{portal.url}/accounts/login/")
    page.wait_for_load_state("networkidle")
    deadline = time.monotonic() + 10
    while "favicon" not in portal.log.read_bytes()[seen:].decode(errors="replace"):
        assert time.monotonic() < deadline, "the browser asked for no icon at all"
        time.sleep(0.2)
    time.sleep(0.5)  # the icon's redirect, if any, is followed
    requests = [line for line in portal.log.read_bytes()[seen:].decode(errors="replace").splitlines() if '"GET ' in line]
    assert [line for line in requests if '" 404 ' in line] == [] and failed == [], requests
    assert any("favicon" in line and ('" 200 ' in line or '" 304 ' in line) for line in requests), requests
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon and page.request.get(f"{portal.url}{icon}").headers["content-type"] == "image/svg+xml"
    favicon = page.goto(f"{portal.url}/favicon.ico")
    assert favicon is not None and favicon.status == 200 and favicon.headers["content-type"] == "image/svg+xml"


def test_api_docs_keep_the_portal_navigation_and_a_way_back(portal, page, owner) -> None:  # type: ignore[no-untyped-def]
    login(page, portal, "alice", "alice-pass-123")
    page.locator("nav[aria-label=Portal]").get_by_role("link", name="API").click()
    page.wait_for_url(f"{portal.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert page.locator("h1").inner_text() == "API"
    assert page.locator(".opblock-summary-path[data-path='/api/v1/vms/']").count() >= 1
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 860})
        screenshot(page, f"finish-api-docs-{width}")
    page.locator("nav[aria-label=Portal]").get_by_role("link", name="Virtual machines").click()
    page.wait_for_url(f"{portal.url}/vms/")
