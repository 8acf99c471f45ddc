"""Placement on libvirt's test driver: test:///default (16 CPUs, 3 GiB, its running guest "test" has 2 vCPUs and
2 GiB; a pool and a network) and a host of our own (2 CPUs, 1.5 GiB, nothing on it). Each filter rejects with its
reason; the weight is the memory left."""
from __future__ import annotations

import pytest

from kvmweb.fleet.placement import Need, place

MiB = 1024


def _reasons(placement) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {v.host.name: v.reason for v in placement.verdicts if not v.fits}


def test_the_host_with_the_most_memory_left_wins(test_host, small_host) -> None:  # type: ignore[no-untyped-def]
    placement = place(need=Need(memory_kib=512 * MiB, vcpus=1))
    assert placement.host == small_host  # 1 GiB left there, 512 MiB on test:///default
    assert all(v.fits for v in placement.verdicts)
    assert placement.reason.startswith("Placed on small: it fits with the most memory left (1 GiB)")
    assert "testdrv: fits" in placement.reason


def test_a_pool_or_network_only_one_host_has(test_host, small_host) -> None:  # type: ignore[no-untyped-def]
    placement = place(need=Need(memory_kib=64 * MiB, vcpus=1, pool="default-pool"))
    assert placement.host == test_host
    assert _reasons(placement) == {"small": "no pool default-pool"}
    placement = place(need=Need(memory_kib=64 * MiB, vcpus=1, network="default"))
    assert placement.host == test_host and _reasons(placement) == {"small": "no network default"}
    placement = place(need=Need(memory_kib=64 * MiB, vcpus=1, iso="/default-pool/nothing.iso"))
    assert placement.host is None
    assert _reasons(placement) == {"small": "no file /default-pool/nothing.iso",
                                   "testdrv": "no file /default-pool/nothing.iso"}


def test_memory_and_cpu_under_the_overcommit_ratios(test_host, small_host, settings) -> None:  # type: ignore[no-untyped-def]
    placement = place(need=Need(memory_kib=2048 * MiB, vcpus=1))
    assert placement.host is None
    reasons = _reasons(placement)
    assert reasons["small"] == "not enough memory: 1.5 GiB free of 1.5 GiB x 1, needs 2 GiB"
    assert reasons["testdrv"] == "not enough memory: 1 GiB free of 3 GiB x 1, needs 2 GiB"
    assert placement.reason.startswith("No host fits: ")
    settings.KVMWEB_MEMORY_OVERCOMMIT = 2.0
    placement = place(need=Need(memory_kib=2048 * MiB, vcpus=1))  # both fit now; 6 - 2 - 2 GiB beats 3 - 2 GiB
    assert placement.host == test_host and all(v.fits for v in placement.verdicts)
    settings.KVMWEB_MEMORY_OVERCOMMIT = 1.0
    placement = place(need=Need(memory_kib=64 * MiB, vcpus=9))  # small: 2 CPUs x 4 = 8 vCPUs
    assert placement.host == test_host
    assert _reasons(placement) == {"small": "not enough CPU: 8 vCPUs free of 2 CPUs x 4, needs 9"}
    settings.KVMWEB_CPU_OVERCOMMIT = 1.0
    placement = place(need=Need(memory_kib=64 * MiB, vcpus=15))  # test:///default: 16 - 2 for its guest
    assert placement.host is None and _reasons(placement)["testdrv"] == \
        "not enough CPU: 14 vCPUs free of 16 CPUs x 1, needs 15"


@pytest.mark.parametrize("change, reason", [({"maintenance": True}, "in maintenance"),
                                            ({"enabled": False}, "disabled")])
def test_maintenance_and_disabled_hosts_get_nothing(test_host, small_host, change, reason) -> None:  # type: ignore[no-untyped-def]
    for key, value in change.items():
        setattr(small_host, key, value)
    small_host.save()
    placement = place(need=Need(memory_kib=64 * MiB, vcpus=1))
    assert placement.host == test_host and _reasons(placement) == {"small": reason}


def test_a_host_that_does_not_answer(test_host) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.hosts.models import Host

    Host.objects.create(name="gone", uri="qemu+tcp://127.0.0.1:1/system")
    placement = place(need=Need(memory_kib=64 * MiB, vcpus=1))
    assert placement.host == test_host
    assert _reasons(placement)["gone"].startswith("unavailable (")


def test_the_source_is_excluded(test_host, small_host) -> None:  # type: ignore[no-untyped-def]
    placement = place(need=Need(memory_kib=64 * MiB, vcpus=1), exclude=small_host)
    assert placement.host == test_host and _reasons(placement) == {"small": "the VM is there"}
