"""The portal's error answers (a branded page, JSON under /api/), the API's index at /api/v1/ read from the URL
configuration, the favicon, and the Content-Security-Policy header: fast, with Django's test client."""
from __future__ import annotations

import re

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import get_resolver, path

from kvmweb import hypervisor as hv
from kvmweb.core.api_views import api_endpoints
from kvmweb.core.csp import csp_allow
from kvmweb.core.errors import PermissionDeniedError
from kvmweb.urls import urlpatterns as portal_urls

pytestmark = pytest.mark.django_db


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug")


def host_gone(request: HttpRequest) -> HttpResponse:
    raise hv.HostUnavailable("The host gone does not answer: no route to host.")


def refused(request: HttpRequest) -> HttpResponse:
    raise PermissionDeniedError("Only staff manage storage pools.")


@csp_allow({"style-src-elem": ["'self'", "'unsafe-inline'"]})
def styled(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<p>a page whose library injects &lt;style&gt;</p>")


# The portal's URLs plus views that fail, under a page path and under /api/, and one that widens the policy.
urlpatterns = [
    *portal_urls,
    path("test-boom/", boom),
    path("api/v1/test-boom/", boom),
    path("test-host-gone/", host_gone),
    path("api/v1/test-host-gone/", host_gone),
    path("test-refused/", refused),
    path("test-styled/", styled),
]
handler400 = "kvmweb.core.handlers.bad_request"
handler403 = "kvmweb.core.handlers.permission_denied"
handler404 = "kvmweb.core.handlers.page_not_found"
handler500 = "kvmweb.core.handlers.server_error"


@pytest.fixture
def alice(owner) -> Client:  # type: ignore[no-untyped-def]
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    return client


def test_unknown_page_is_the_portal_page_with_its_navigation(alice: Client) -> None:
    r = alice.get("/no-such-page/")
    body = r.content.decode()
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in body and 'href="/vms/"' in body  # the heading and the portal's navigation
    assert 'id="error-back"' in body and "/no-such-page/" in body


def test_unknown_api_url_answers_json(alice: Client) -> None:
    for url in ("/api/nope/", "/api/v1/nope/", "/api/v1/vms/not-a-uuid/"):
        r = alice.get(url)
        assert r.status_code == 404 and r["Content-Type"] == "application/json", url
        assert r.json()["error"] == "not_found" and "/api/v1/" in r.json()["detail"], url


@override_settings(ROOT_URLCONF=__name__)
def test_a_bug_is_a_500_page_or_json_under_api(alice: Client) -> None:
    page = alice.get("/test-boom/")
    assert page.status_code == 500 and "<h1>Something went wrong</h1>" in page.content.decode()
    assert 'href="/vms/"' in page.content.decode()
    api = alice.get("/api/v1/test-boom/")
    assert api.status_code == 500 and api.json() == {"error": "server_error", "detail": api.json()["detail"]}


@override_settings(ROOT_URLCONF=__name__)
def test_our_errors_keep_their_words_on_the_same_page(alice: Client) -> None:
    r = alice.get("/test-host-gone/")
    body = r.content.decode()
    assert r.status_code == 503 and "<h1>The host does not answer</h1>" in body and "no route to host" in body
    api = alice.get("/api/v1/test-host-gone/")
    assert api.status_code == 503 and "no route to host" in api.json()["detail"]
    r = alice.get("/test-refused/")
    assert r.status_code == 403 and "<h1>Not allowed</h1>" in r.content.decode()
    assert "Only staff manage storage pools." in r.content.decode()


def test_api_root_lists_every_endpoint_of_the_url_configuration(alice: Client) -> None:
    r = alice.get("/api/v1/")
    assert r.status_code == 200 and r["Content-Type"] == "application/json"
    listed = {e["path"]: e for e in r.json()["endpoints"]}
    # every named route under api/v1/ in the URL configuration, independently walked
    expected = set()

    def walk(patterns, prefix):  # type: ignore[no-untyped-def]
        for p in patterns:
            route = prefix + str(p.pattern)
            if hasattr(p, "url_patterns"):
                walk(p.url_patterns, route)
            elif route.startswith("api/v1/") and route != "api/v1/":
                expected.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))
    walk(get_resolver().url_patterns, "")
    assert set(listed) == expected and len(expected) > 40
    assert listed["/api/v1/vms/"]["methods"] == ["GET", "POST"] and listed["/api/v1/vms/"]["name"] == "api:vm-list"
    assert listed["/api/v1/vms/{uuid}/start/"]["methods"] == ["POST"]
    assert r.json()["docs"] == "/api/docs/" and r.json()["schema"] == "/api/schema/"
    assert [e["path"] for e in api_endpoints()] == sorted(listed)


def test_api_root_refuses_anonymous_in_json() -> None:
    r = Client().get("/api/v1/")
    assert r.status_code in (401, 403) and r.json()["error"] == "not_authenticated"


def test_favicon() -> None:
    r = Client().get("/favicon.ico")
    assert r.status_code == 301 and r["Location"].endswith("/static/favicon.svg")


def test_api_docs_page_is_the_portals_page(alice: Client) -> None:
    r = alice.get("/api/docs/")
    body = r.content.decode()
    assert r.status_code == 200 and 'href="/vms/"' in body and "<h1>API</h1>" in body
    assert 'id="swagger-ui"' in body and "js/api-docs.js" in body and "<script>" not in body
    anonymous = Client().get("/api/docs/")
    assert anonymous.status_code == 403 and 'href="/accounts/login/"' in anonymous.content.decode()


def test_csp_enforced_by_default(alice: Client) -> None:
    r = alice.get("/storage/", HTTP_HOST="localhost:8000")
    policy = r["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe" not in policy
    assert directives["connect-src"] == "'self' ws://localhost:8000 ws://localhost:6080"
    assert "Content-Security-Policy-Report-Only" not in r


def test_csp_enforced_and_console_public_url(alice: Client) -> None:
    csp = {"DIRECTIVES": {"default-src": ["'self'"], "connect-src": ["'self'"]}}
    with override_settings(CONTENT_SECURITY_POLICY=csp, CONTENT_SECURITY_POLICY_REPORT_ONLY=None,
                           KVMWEB_CONSOLE_PUBLIC_URL="wss://console.example/proxy"):
        r = alice.get("/storage/", HTTP_HOST="localhost", secure=True)
    assert "Content-Security-Policy-Report-Only" not in r
    assert "connect-src 'self' wss://localhost wss://localhost:6080 wss://console.example;" in (
        r["Content-Security-Policy"] + ";")


@override_settings(ROOT_URLCONF=__name__)
def test_csp_allow_widens_the_policy_of_one_view_only(alice: Client) -> None:
    widened = alice.get("/test-styled/")["Content-Security-Policy"]
    assert "style-src-elem 'self' 'unsafe-inline'" in widened and "script-src 'self';" in widened
    assert "style-src-elem" not in alice.get("/no-such-page/")["Content-Security-Policy"]
