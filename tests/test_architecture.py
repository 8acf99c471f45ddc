"""The layers' rules that import-linter cannot see (it checks imports; these check names and calls):

- pages, the API and websockets never hold a libvirt handle: no ``*_handle``/``vm_domain`` from selectors or
  services, no handle class and no function of the hypervisor layer that talks to libvirt (by the layer's naming
  rule, those start with the noun they touch: ``domain_``, ``pool_``, ``volume_``, ``network_``, ``host_``);
- selectors only read: no ORM write in any ``selectors.py``;
- every libvirt call of the hypervisor layer goes through ``Connection.call``/``run`` (one place translates libvirt's
  errors), checked by the hypervisor package itself not catching ``libvirt.libvirtError`` elsewhere.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from kvmweb import hypervisor as hv

KVMWEB = Path(__file__).resolve().parent.parent / "kvmweb"
FRONT = ("views.py", "api.py", "consumers.py", "forms.py", "serializers.py", "urls.py", "api_urls.py", "routing.py")
HANDLE_NAMES = {"vm_handle", "pool_handle", "volume_handle", "vm_domain", "vm_checked", "console_domain"}
HANDLE_CLASSES = {"Domain", "Pool", "Volume", "Network", "Connection", "registry", "SerialConsole"}
TALKS_TO_LIBVIRT = ("domain_", "pool_", "volume_", "network_", "host_", "snapshot_")
WRITES = {"save", "delete", "create", "bulk_create", "bulk_update", "get_or_create", "update_or_create"}


def modules(names: tuple[str, ...]) -> list[Path]:
    """The app modules named so, or split by topic (``catalog_views.py``, ``snapshot_api.py``)."""
    return sorted(p for p in KVMWEB.glob("*/*.py") if p.parent.name != "hypervisor"
                  and (p.name in names or any(p.name.endswith("_" + n) for n in names)))


def hv_uses(tree: ast.AST) -> set[str]:
    """Names used as ``hv.<name>``."""
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "hv"}


def handle_violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [f"imports {a.name}" for a in node.names if a.name in HANDLE_NAMES]
        if isinstance(node, ast.Name) and node.id in HANDLE_NAMES:
            found.append(f"uses {node.id}")
    for name in hv_uses(tree):
        if name in HANDLE_CLASSES or (name.startswith(TALKS_TO_LIBVIRT) and callable(getattr(hv, name, None))):
            found.append(f"uses hv.{name}")
    return sorted(set(found))


@pytest.mark.parametrize("path", modules(FRONT), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pages_api_and_websockets_never_touch_libvirt(path: Path) -> None:
    assert handle_violations(path) == []


def write_violations(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, receiver = node.func.attr, ast.unparse(node.func.value)
            if method in WRITES or (method == "update" and "objects" in receiver):
                found.append(f"line {node.lineno}: {receiver}.{method}(...)")
    return found


def handle_returns(path: Path) -> list[str]:
    """Public functions whose return annotation names a libvirt handle."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and node.returns is not None:
            returned = ast.unparse(node.returns)
            if any(re.search(rf"\bhv\.{cls}\b", returned) for cls in HANDLE_CLASSES):
                found.append(f"{node.name} -> {returned}")
    return found


@pytest.mark.parametrize("path", modules(("selectors.py",)), ids=lambda p: p.parent.name)
def test_selectors_only_read_and_return_data(path: Path) -> None:
    assert write_violations(path) == []
    assert handle_returns(path) == []


def test_the_checks_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "views.py"
    bad.write_text("from .selectors import vm_handle\nfrom kvmweb import hypervisor as hv\n"
                   "def v(vm):\n    hv.domain_lookup(None, '')\n    return vm_handle(vm).state(), hv.NAME_RULE\n")
    assert handle_violations(bad) == ["imports vm_handle", "uses hv.domain_lookup", "uses vm_handle"]
    writer = tmp_path / "selectors.py"
    writer.write_text("def s(M, d):\n    d.update(a=1)\n    M.objects.filter(x=1).update(y=2)\n    M(x=1).save()\n")
    assert write_violations(writer) == ["line 3: M.objects.filter(x=1).update(...)", "line 4: M(x=1).save(...)"]
    handing = tmp_path / "selectors.py"
    handing.write_text("def get(vm) -> hv.Domain:\n    ...\ndef _private(vm) -> hv.Pool:\n    ...\n")
    assert handle_returns(handing) == ["get -> hv.Domain"]


def test_only_the_registry_catches_libvirt_errors() -> None:
    """libvirt's errors become ours in one place (errors.translate via Connection.call/run); streams and the event
    thread, which run outside those, are the documented exceptions."""
    allowed = {"registry.py", "errors.py", "console.py", "events.py", "volumes.py"}
    offenders = [p.name for p in (KVMWEB / "hypervisor").glob("*.py")
                 if p.name not in allowed and "libvirt.libvirtError" in p.read_text()]
    assert offenders == []
