"""A person in Chromium picks a template on the Templates page, fills the wizard's "From a template / image" tab
(host name, user, a key of their profile, an isolated network with DHCP) and lands on the VM page, which — without a
reload — shows the job to the end, then the guest's host name and IP address as its guest agent reports them."""
from __future__ import annotations

import pytest

from kvmweb import hypervisor as hv
from kvmweb.accounts.sshkeys import ssh_key_add
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.services import vm_delete
from kvmweb.networks.models import AllowedNetwork
from tests.conftest import PREFIX, SYSTEM, unique_name, virsh
from tests.live import login, screenshot
from tests.machines.test_vm_page_browser import check_widths
from tests.networks.conftest import short_bridge, system_networks  # noqa: F401  (fixture)
from tests.provisioning.test_create_browser import event_listener  # noqa: F401  (fixture)
from tests.provisioning.test_template_real import KEY_A

pytestmark = [pytest.mark.browser, pytest.mark.real]


def test_wizard_template_path_to_the_guests_hostname_and_ip(
    portal, page, cloud_template, owner, staff, test_pool, open_test_pool, celery_worker_proc,
    event_listener, system_networks, cleanup_domains,  # noqa: F811
) -> None:  # type: ignore[no-untyped-def]
    net = f"{PREFIX}tplnet"
    conn = hv.registry.connection(SYSTEM)
    hv.network_define(conn, hv.NetworkSpec(name=net, bridge=short_bridge(), subnet="10.213.78.0/24",
                                           gateway="10.213.78.1", dhcp_start="10.213.78.100",
                                           dhcp_end="10.213.78.200")).start()
    AllowedNetwork.objects.create(host=cloud_template.image.host, name=net)
    ssh_key_add(actor=owner, name="laptop", public_key=KEY_A)
    name = unique_name("wtp")
    cleanup_domains.append(name)
    try:
        login(page, portal, "alice", "alice-pass-123")
        page.goto(f"{portal.url}/templates/")
        page.click(f"tr[data-template-id='{cloud_template.pk}'] .create-vm")
        assert page.locator("#source-template").get_attribute("aria-current") == "page"
        assert page.locator("#id_template").input_value() == str(cloud_template.pk)
        page.fill("#id_name", name)
        page.select_option("#id_disk_pool", test_pool["name"])
        page.select_option("#id_network", net)
        page.fill("#id_hostname", "web-from-browser")
        page.fill("#id_user", "alice")
        assert page.locator("#id_ssh_keys_0").is_checked()  # the profile's keys are offered, chosen by default
        screenshot(page, "wizard-from-template")
        page.click("#create-submit")
        page.wait_for_url(f"{portal.url}/vms/*/")
        page.wait_for_function("() => document.getElementById('vm-state').textContent === 'running'", timeout=120000)
        # the Guest section asks again by itself until the agent answers (a TCG boot: up to minutes when busy)
        page.wait_for_function("() => (document.getElementById('guest-hostname') || {}).textContent"
                               " === 'web-from-browser'", timeout=420000)
        page.wait_for_function("() => [...document.querySelectorAll('#guest-interfaces code')]"
                               ".some((c) => c.textContent.startsWith('10.213.78.'))", timeout=120000)
        page.locator("#vm-guest").scroll_into_view_if_needed()
        screenshot(page, "vm-page-from-template-guest")
        check_widths(page, "vm-page-from-template")
    finally:
        vm = VirtualMachine.objects.filter(name=name).first()
        if vm is not None:
            virsh("destroy", name, check=False)
            vm_delete(actor=staff, vm=vm, delete_volumes=True)
