"""Every page of the dashboard, the VM list, a VM's page and its delete page, storage, networks, the ISO library, jobs, hosts, the New VM wizard, login, the error pages and the
API docs, in Chromium at 1366 px and at 390 px (a phone): axe-core finds no violation of any impact, nothing
scrolls sideways at 390 px, no inline event handler or inline script is in the page, the Content-Security-Policy
header is sent and the page breaks none of it. Screenshots at both widths land in test-artifacts/pages-*.png."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from kvmweb import hypervisor as hv
from kvmweb.jobs.models import Job, JobLogLine
from kvmweb.media.services import iso_register
from kvmweb.networks import services as net_services
from tests.conftest import MEMTEST_ISO, memtest_spec, unique_name, virsh
from tests.live import axe_violations, login, screenshot
from tests.networks.conftest import net_name, short_bridge, system_networks  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.real, pytest.mark.usefixtures("system_networks")]

WIDTHS = {"wide": (1366, 860), "phone": (390, 844)}

# Records every CSP violation the page reports (report-only or enforced alike), before any script of the page runs.
CSP_RECORDER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.effectiveDirective} ${e.blockedURI || "inline"} ${e.sourceFile || ""}:${e.lineNumber}`);
});
"""

# Inline event handlers (on* attributes) and inline <script> elements left in the page: a CSP without
# 'unsafe-inline' forbids both.
INLINE_CODE = """() => {
  const found = [];
  for (const el of document.querySelectorAll("*")) {
    for (const attr of el.attributes) if (/^on/i.test(attr.name)) found.push(`<${el.localName} ${attr.name}>`);
  }
  for (const s of document.scripts) if (!s.src) found.push(`inline <script> ${s.textContent.trim().slice(0, 60)}`);
  return found;
}"""

OVERFLOW = """() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
  wide: [...document.querySelectorAll("body *")].filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1
          && !el.closest(".table-scroll, .overflow-auto, pre")).slice(0, 5)
          .map((el) => `${el.localName}${el.id ? "#" + el.id : ""}${el.className ? "." + String(el.className).split(" ").join(".") : ""}`)})"""


@pytest.fixture
def objects(qemu_host, staff, test_pool, make_volume, real_vm):  # type: ignore[no-untyped-def]
    """What the pages show: a pool with a volume, an isolated network (inactive), an ISO, a finished job with a long
    log line, a VM (defined, not started)."""
    make_volume(unique_name("page"))
    network = net_name("page")
    net_services.network_define(actor=staff, host=qemu_host, spec=hv.NetworkSpec(
        name=network, bridge=short_bridge(), subnet="10.231.77.0/24", gateway="10.231.77.1",
        dhcp_start="10.231.77.100", dhcp_end="10.231.77.200"))
    iso = iso_register(actor=staff, host=qemu_host, path=MEMTEST_ISO, name=f"{unique_name('page')}.iso")
    job = Job.objects.create(kind="vm.create", title="Create VM a-rather-long-virtual-machine-name-for-a-phone",
                             actor=staff, state="succeeded", progress=100)
    JobLogLine.objects.create(job=job, message="Creating the disk /var/lib/libvirt/images/" + "x" * 60 + ".qcow2")
    vm = real_vm(memtest_spec())
    return {"host": qemu_host, "pool": test_pool["name"], "network": network, "iso": iso, "job": job, "vm": vm}


def page_urls(o: dict[str, Any]) -> dict[str, str]:
    h = o["host"].pk
    return {
        "dashboard": "/",
        "vms": "/vms/",
        "vm": f"/vms/{o['vm'].uuid}/",
        "vm-delete": f"/vms/{o['vm'].uuid}/delete/",
        "storage": "/storage/",
        "pool": f"/storage/hosts/{h}/pools/{o['pool']}/",
        "networks": "/networks/",
        "network": f"/networks/{h}/{o['network']}/",
        "network-new": "/networks/new/",
        "isos": "/media-library/",
        "jobs": "/jobs/",
        "job": f"/jobs/{o['job'].pk}/",
        "hosts": "/hosts/",
        "new-vm": "/vms/new/",
        "new-vm-template": "/vms/new/?source=template",
        "templates": "/templates/",
        "template-new": "/templates/new/",
        "flavor-new": "/templates/flavors/new/",
        "template-from-vm": f"/templates/from-vm/{o['vm'].uuid}/",
        "images": "/media-library/images/",
        "vm-snapshots": f"/protection/vms/{o['vm'].uuid}/snapshots/",
        "vm-backups": f"/protection/vms/{o['vm'].uuid}/backups/",
        "vm-disks": f"/storage/vms/{o['vm'].uuid}/disks/",
        "vm-nics": f"/networks/vm/{o['vm'].uuid}/nics/",
        "vm-clone": f"/storage/vms/{o['vm'].uuid}/clone/",
        "not-found": "/no-such-page/",
        "api-docs": "/api/docs/",
    }


def check_page(page, name: str, open_page: Callable[[], Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Open the page at each width; what is wrong with it (empty when nothing is)."""
    problems: dict[str, Any] = {}
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        response = open_page()
        page.wait_for_load_state("networkidle")
        headers = response.headers if response is not None else {}
        if not ({"content-security-policy", "content-security-policy-report-only"} & set(headers)):
            problems["csp header"] = "missing"
        if violations := axe_violations(page):
            problems[f"axe {label}"] = violations
        if label == "phone":
            size = page.evaluate(OVERFLOW)
            if size["scroll"] > size["inner"]:
                problems["overflow at 390 px"] = size
        if inline := page.evaluate(INLINE_CODE):
            problems["inline code"] = inline
        if csp := page.evaluate("() => window.__csp"):
            problems["csp violations"] = csp
        screenshot(page, f"pages-{name}-{width}")
    return problems


def test_pages_pass_axe_fit_a_phone_and_keep_to_the_csp(portal, page, staff, objects) -> None:  # type: ignore[no-untyped-def]
    page.add_init_script(CSP_RECORDER)
    report: dict[str, Any] = {}

    report["login"] = check_page(page, "login", lambda: page.goto(f"{portal.url}/accounts/login/"))

    def bad_login() -> Any:
        page.goto(f"{portal.url}/accounts/login/")
        page.fill("#id_username", "nobody")
        page.fill("#id_password", "wrong-password")
        with page.expect_navigation() as nav:
            page.click("button[type=submit]")
        return nav.value
    report["login-error"] = check_page(page, "login-error", bad_login)

    login(page, portal, "root-admin", "admin-pass-123")
    for name, url in page_urls(objects).items():
        def open_page(url: str = url, name: str = name) -> Any:
            response = page.goto(f"{portal.url}{url}")
            if name == "api-docs":
                page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
            if name in ("vm-disks", "vm-nics"):
                page.wait_for_selector("table")
            return response
        report[name] = check_page(page, name, open_page)

    def network_errors() -> Any:
        page.goto(f"{portal.url}/networks/new/")
        page.fill("#id_name", "bad name!")
        page.fill("#id_subnet", "300.1.2.0/24")
        with page.expect_navigation() as nav:
            page.click("#define-network")
        return nav.value
    report["network-new-errors"] = check_page(page, "network-new-errors", network_errors)

    def wizard_errors() -> Any:
        page.goto(f"{portal.url}/vms/new/")
        page.fill("#id_name", "bad name!")
        page.fill("#id_vcpus", "0")
        with page.expect_navigation() as nav:
            page.click("#create-submit")
        return nav.value
    report["new-vm-errors"] = check_page(page, "new-vm-errors", wizard_errors)

    problems = {name: found for name, found in report.items() if found}
    assert not problems, json.dumps(problems, indent=1)


def test_form_errors_are_tied_to_their_fields(portal, page, staff, qemu_host) -> None:  # type: ignore[no-untyped-def]
    """A field with an error says so (aria-invalid) and points at its message (aria-describedby), on the network
    form and the New VM wizard."""
    login(page, portal, "root-admin", "admin-pass-123")
    tied = """(id) => { const field = document.getElementById(id);
        const ids = (field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
        return {invalid: field.getAttribute("aria-invalid"),
                described: ids.map((i) => (document.getElementById(i) || {}).textContent || "").join(" ").trim()}; }"""

    page.goto(f"{portal.url}/networks/new/")
    page.fill("#id_name", "bad name!")
    page.click("#define-network")
    page.wait_for_selector(".field-error")
    name = page.evaluate(tied, "id_name")
    assert name["invalid"] == "true" and name["described"], name
    assert page.evaluate("() => document.getElementById('id_gateway').getAttribute('aria-invalid')") is None

    page.goto(f"{portal.url}/vms/new/")
    page.fill("#id_name", "bad name!")
    page.click("#create-submit")
    page.wait_for_selector("small.error")
    name = page.evaluate(tied, "id_name")
    assert name["invalid"] == "true" and name["described"], name
    screenshot(page, "pages-new-vm-field-errors")


def test_confirmations_work_without_inline_handlers(portal, page, staff, qemu_host) -> None:  # type: ignore[no-untyped-def]
    """Finding 12: the question before a destructive action comes from data-confirm (static/js/confirm.js), not an
    inline onsubmit: "Cancel" leaves the network defined, "OK" deletes it."""
    name = net_name("confirm")
    net_services.network_define(actor=staff, host=qemu_host, spec=hv.NetworkSpec(name=name, bridge=short_bridge()))
    question = f"Delete the network {name}? VMs keep their NICs but cannot start while the network is missing."
    login(page, portal, "root-admin", "admin-pass-123")
    page.goto(f"{portal.url}/networks/{qemu_host.pk}/{name}/")
    form = page.locator("form:has(#net-delete)")
    assert form.get_attribute("onsubmit") is None and form.get_attribute("data-confirm") == question
    asked: list[str] = []

    def answer(dialog, accept: bool) -> None:  # type: ignore[no-untyped-def]
        asked.append(dialog.message)
        if accept:
            dialog.accept()
        else:
            dialog.dismiss()

    page.once("dialog", lambda d: answer(d, False))
    page.click("#net-delete")
    page.wait_for_timeout(500)
    assert page.url == f"{portal.url}/networks/{qemu_host.pk}/{name}/"
    assert name in virsh("net-list", "--all", "--name").split()
    page.once("dialog", lambda d: answer(d, True))
    page.click("#net-delete")
    page.wait_for_url(f"{portal.url}/networks/")
    assert asked == [question, question]
    assert name not in virsh("net-list", "--all", "--name").split()
    # the host filter submits itself when it changes (data-autosubmit, no inline onchange)
    page.select_option("select[name=host]", str(qemu_host.pk))
    page.wait_for_url(f"{portal.url}/networks/?host={qemu_host.pk}")
