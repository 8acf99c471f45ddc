"""Quotas hold under a race: a user allowed 3 VMs sends 20 create requests at the same moment, from 20 threads, to
two web processes (daphne, as in production) sharing the database, on qemu:///system. Exactly 3 VMs exist
afterwards, and the 17 others got a clear 409 — before the quota lock, every request checked the same usage and
all passed."""
from __future__ import annotations

import json
import secrets
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.test import Client

from kvmweb.accounts.models import Quota
from kvmweb.machines.models import VirtualMachine
from tests.conftest import unique_name, virsh
from tests.live import web_process

pytestmark = [pytest.mark.real, pytest.mark.postgres]  # the PostgreSQL pass runs it too

REQUESTS = 20
LIMIT = 3


def _session_headers(user) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A logged-in browser's headers (session cookie, CSRF cookie and header), without a browser."""
    client = Client()
    client.force_login(user)
    csrf = secrets.token_hex(16)  # a CSRF secret of the right length: the cookie and the header must match
    return {"Cookie": f"sessionid={client.cookies['sessionid'].value}; csrftoken={csrf}", "X-CSRFToken": csrf,
            "Content-Type": "application/json"}


def _post(url: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_creates_make_exactly_three(qemu_host, owner, cleanup_domains) -> None:  # type: ignore[no-untyped-def]
    Quota.objects.create(user=owner, max_vms=LIMIT)
    tag = unique_name("race")
    names = [f"{tag}-{i:02d}" for i in range(REQUESTS)]
    cleanup_domains.extend(names)
    headers = _session_headers(owner)
    results: dict[str, tuple[int, dict[str, Any]]] = {}
    with web_process() as one, web_process() as two:
        start = threading.Barrier(REQUESTS)

        def create(i: int) -> None:
            server = (one, two)[i % 2]
            start.wait()
            results[names[i]] = _post(f"{server.url}/api/v1/vms/", headers, {
                "host": qemu_host.pk, "name": names[i], "vcpus": 1, "memory": "64", "start": False})

        threads = [threading.Thread(target=create, args=(i,)) for i in range(REQUESTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
    statuses = sorted(status for status, _body in results.values())
    assert len(results) == REQUESTS
    assert statuses == [202] * LIMIT + [409] * (REQUESTS - LIMIT), {n: r for n, r in results.items()}
    for status, body in results.values():
        if status == 409:
            assert body["error"] == "quota"
            assert body["detail"] == f"Your quota allows {LIMIT} VMs; you have {LIMIT} and this would make {LIMIT + 1}."
    made = sorted(n for n, (status, _body) in results.items() if status == 202)
    assert sorted(n for n in virsh("list", "--all", "--name").split() if n.startswith(tag)) == made
    assert VirtualMachine.objects.filter(owner=owner).count() == LIMIT
