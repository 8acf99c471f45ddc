"""Console reads: the screenshot thumbnail and what a console page needs to know."""
from __future__ import annotations

import uuid as uuid_mod
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmAction, vm_may
from kvmweb.core.errors import ConflictError
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.handles import vm_handle
from kvmweb.machines.selectors import vm_get


@dataclass(frozen=True)
class ConsoleInfo:
    vm: VirtualMachine
    state: hv.DomainState
    has_vnc: bool
    has_serial: bool
    view_only: bool  # may watch its consoles, not type or click


def console_view_only(actor: Actor, vm: VirtualMachine) -> bool:
    """Whether ``actor`` may only watch ``vm``'s consoles: they may see it, not operate it."""
    return not vm_may(actor, vm, VmAction.OPERATE)


def console_info(*, actor: Actor, uuid: str | uuid_mod.UUID) -> ConsoleInfo:
    vm = vm_get(actor=actor, uuid=uuid)
    dom = vm_handle(vm)
    doc = dom.document()
    return ConsoleInfo(vm=vm, state=dom.state(), has_vnc=doc.vnc_display() is not None,
                       has_serial=doc.has_serial_console, view_only=console_view_only(actor, vm))


def console_screenshot(*, actor: Actor, uuid: str | uuid_mod.UUID, max_age: int = 0) -> bytes:
    """A PNG of the VM's screen, taken by libvirt (no console session needed). ``max_age`` > 0: a screenshot taken
    less than that many seconds ago (by anyone allowed to see the VM) is reused — the VM list's thumbnails take at
    most one per VM in that time, however many pages show it."""
    vm = vm_get(actor=actor, uuid=uuid)
    key = f"kvmweb:screenshot:{vm.uuid}"
    if max_age > 0:
        cached = cache.get(key)
        if cached is not None:
            return bytes(cached)
    dom = vm_handle(vm)
    if not dom.state().is_active:
        raise ConflictError(f"{vm.name} is shut off: no screen to show.", code="not_running")
    if dom.document().vnc_display() is None:
        raise ConflictError(f"{vm.name} has no graphical display.", code="no_graphics")
    png = dom.screenshot_png()
    if max_age > 0:
        cache.set(key, png, max_age)
    return png


def console_ws_base(request: HttpRequest) -> str:
    """The websocket URL of the console proxy as the browser must use it (KVMWEB_CONSOLE_PUBLIC_URL, or the
    page's own host on the proxy's port)."""
    public = settings.KVMWEB_CONSOLE_PUBLIC_URL.rstrip("/")
    if public:
        return public
    host = request.get_host().rsplit(":", 1)[0] if not request.get_host().endswith("]") else request.get_host()
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{host}:{settings.KVMWEB_CONSOLE_PORT}"
